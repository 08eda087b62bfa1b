// Package faultproxy is a TCP proxy for fault tests: it forwards loopback
// connections to a target, and the test can cut it (close every
// connection and reset new ones), stall it (accept and read, forward
// nothing, as a blackholed network does) or let traffic through again.
package faultproxy

import (
	"errors"
	"fmt"
	"net"
	"sync"
)

// Mode is what the proxy does with traffic.
type Mode int

const (
	// Pass forwards traffic both ways.
	Pass Mode = iota
	// Stall accepts connections and reads from them but forwards nothing;
	// bytes already read are forwarded when the mode returns to Pass.
	Stall
	// Cut closes every open connection and resets new ones right after
	// accepting them.
	Cut
)

func (m Mode) String() string {
	switch m {
	case Pass:
		return "pass"
	case Stall:
		return "stall"
	case Cut:
		return "cut"
	}
	return fmt.Sprintf("Mode(%d)", int(m))
}

// Proxy forwards connections from its loopback address to a target. All
// its goroutines end by Close.
type Proxy struct {
	ln     net.Listener
	target string

	mu     sync.Mutex
	cond   *sync.Cond // signalled on every change of mode, closed or pairs
	mode   Mode
	closed bool
	pairs  map[*pair]struct{}
	wg     sync.WaitGroup
}

type pair struct {
	client, server net.Conn
	closed         bool // guarded by Proxy.mu
}

// Start listens on a free loopback port and forwards to target
// (host:port), in Pass mode.
func Start(target string) (*Proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("faultproxy: listen: %w", err)
	}
	p := &Proxy{ln: ln, target: target, pairs: map[*pair]struct{}{}}
	p.cond = sync.NewCond(&p.mu)
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

// Addr is the proxy's host:port.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Set switches the mode. Cut closes every open connection.
func (p *Proxy) Set(m Mode) {
	p.mu.Lock()
	p.mode = m
	var cut []*pair
	if m == Cut {
		for pr := range p.pairs {
			cut = append(cut, pr)
		}
	}
	p.cond.Broadcast()
	p.mu.Unlock()
	for _, pr := range cut {
		p.closePair(pr)
	}
}

// Conns is the number of proxied connections open now.
func (p *Proxy) Conns() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.pairs)
}

// Close stops accepting, closes every connection and waits for every
// goroutine of the proxy to end.
func (p *Proxy) Close() error {
	p.mu.Lock()
	p.closed = true
	var all []*pair
	for pr := range p.pairs {
		all = append(all, pr)
	}
	p.cond.Broadcast()
	p.mu.Unlock()
	err := p.ln.Close()
	for _, pr := range all {
		p.closePair(pr)
	}
	p.wg.Wait()
	return err
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		p.mu.Lock()
		mode, closed := p.mode, p.closed
		p.mu.Unlock()
		if closed || mode == Cut {
			reset(c)
			continue
		}
		s, err := net.Dial("tcp", p.target)
		if err != nil {
			reset(c)
			continue
		}
		pr := &pair{client: c, server: s}
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			c.Close()
			s.Close()
			continue
		}
		p.pairs[pr] = struct{}{}
		p.wg.Add(2)
		p.mu.Unlock()
		go p.copy(pr, s, c)
		go p.copy(pr, c, s)
	}
}

// reset closes c with an RST, as a refusing server would.
func reset(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetLinger(0)
	}
	c.Close()
}

// copy forwards src to dst, waiting while the proxy is stalled, until
// either side fails or the pair is closed.
func (p *Proxy) copy(pr *pair, dst, src net.Conn) {
	defer p.wg.Done()
	defer p.closePair(pr)
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if !p.gate(pr) {
				return
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// gate waits while the proxy is stalled; it reports whether to forward.
func (p *Proxy) gate(pr *pair) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for p.mode == Stall && !p.closed && !pr.closed {
		p.cond.Wait()
	}
	return p.mode == Pass && !p.closed && !pr.closed
}

func (p *Proxy) closePair(pr *pair) {
	p.mu.Lock()
	if pr.closed {
		p.mu.Unlock()
		return
	}
	pr.closed = true
	delete(p.pairs, pr)
	p.cond.Broadcast()
	p.mu.Unlock()
	pr.client.Close()
	pr.server.Close()
}
