package testredis

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/galleta-go/galleta/internal/testenv"
)

// Cluster is a Redis Cluster of primaries without replicas, each a
// redis-server process on loopback ports with its files in a temporary
// directory. Create it with StartCluster and stop it with Close.
type Cluster struct {
	// Addrs are the nodes' host:port, in start order.
	Addrs []string

	dir   string
	mu    sync.Mutex
	nodes []*node
}

type node struct {
	port, bus int
	cmd       *exec.Cmd
	done      chan struct{} // closed when the process has exited
}

// NodeTimeout is the cluster-node-timeout the nodes run with: how long a
// node may not answer before the others mark it failed.
const NodeTimeout = time.Second

// Binaries reports whether the binaries a cluster needs (redis-server and
// redis-cli) are on PATH, and if not, what to install.
func Binaries() error {
	_, _, err := binaries()
	return err
}

func binaries() (server, cli string, err error) {
	if server, err = exec.LookPath("redis-server"); err != nil {
		return "", "", fmt.Errorf("redis-server not on PATH (install Redis 7.0 or newer, e.g. apt-get install redis-server): %w", err)
	}
	if cli, err = exec.LookPath("redis-cli"); err != nil {
		return "", "", fmt.Errorf("redis-cli not on PATH (install Redis 7.0 or newer, e.g. apt-get install redis-tools): %w", err)
	}
	return server, cli, nil
}

// StartCluster starts n primaries (n >= 3), joins them with
// `redis-cli --cluster create --cluster-yes`, and waits until every node
// reports cluster_state:ok. Nodes run with cluster-require-full-coverage
// yes (the default), no persistence, and cluster-node-timeout NodeTimeout.
func StartCluster(ctx context.Context, n int) (*Cluster, error) {
	if n < 3 {
		return nil, fmt.Errorf("testredis: a cluster needs at least 3 primaries, got %d", n)
	}
	_, cli, err := binaries()
	if err != nil {
		return nil, err
	}
	var lastErr error
	for range 3 { // a free port may be taken between choosing and binding it
		c, err := startCluster(ctx, cli, n)
		if err == nil {
			return c, nil
		}
		lastErr = err
		if ctx.Err() != nil {
			break
		}
	}
	return nil, lastErr
}

func startCluster(ctx context.Context, cli string, n int) (c *Cluster, err error) {
	dir, err := os.MkdirTemp("", "galleta-redis-cluster-")
	if err != nil {
		return nil, fmt.Errorf("testredis: %w", err)
	}
	c = &Cluster{dir: dir}
	defer func() {
		if err != nil {
			c.Close()
		}
	}()
	ports, err := freePorts(2 * n)
	if err != nil {
		return nil, err
	}
	for i := range n {
		nd := &node{port: ports[2*i], bus: ports[2*i+1]}
		c.nodes = append(c.nodes, nd)
		c.Addrs = append(c.Addrs, net.JoinHostPort("127.0.0.1", strconv.Itoa(nd.port)))
		if err := c.start(nd); err != nil {
			return nil, err
		}
	}
	for _, nd := range c.nodes {
		if err := waitPing(ctx, nd); err != nil {
			return nil, err
		}
	}
	args := append([]string{"--cluster", "create"}, c.Addrs...)
	args = append(args, "--cluster-replicas", "0", "--cluster-yes")
	cmd := exec.CommandContext(ctx, cli, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("testredis: redis-cli --cluster create: %v\n%s", err, out.Bytes())
	}
	if err := c.WaitOK(ctx); err != nil {
		return nil, err
	}
	return c, nil
}

// freePorts returns n distinct loopback ports that were free a moment ago.
func freePorts(n int) ([]int, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("testredis: find a free port: %w", err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// start runs nd's redis-server. Its nodes.conf lives in the cluster's
// directory, so a restart on the same port rejoins the cluster.
func (c *Cluster) start(nd *node) error {
	server, _, err := binaries()
	if err != nil {
		return err
	}
	p := strconv.Itoa(nd.port)
	cmd := exec.Command(server,
		"--port", p,
		"--bind", "127.0.0.1",
		"--cluster-enabled", "yes",
		"--cluster-port", strconv.Itoa(nd.bus),
		"--cluster-config-file", "nodes-"+p+".conf",
		"--cluster-node-timeout", strconv.Itoa(int(NodeTimeout/time.Millisecond)),
		"--cluster-require-full-coverage", "yes",
		"--dir", c.dir,
		"--logfile", "redis-"+p+".log",
		"--save", "",
		"--appendonly", "no",
		"--daemonize", "no",
	)
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("testredis: start redis-server on port %s: %w", p, err)
	}
	nd.cmd = cmd
	nd.done = make(chan struct{})
	go func() { // owned by nd: ends when the process does
		cmd.Wait()
		close(nd.done)
	}()
	return nil
}

// waitPing polls the node until it answers PING (it must come up: a real
// server), for at most 10 seconds.
func waitPing(ctx context.Context, nd *node) error {
	c := redis.NewClient(&redis.Options{Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(nd.port)), MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
	defer c.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		select {
		case <-nd.done:
			return fmt.Errorf("testredis: redis-server on port %d exited at start (port taken?)", nd.port)
		default:
		}
		pctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
		err := c.Ping(pctx).Err()
		cancel()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("testredis: redis-server on port %d does not answer PING: %w", nd.port, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// WaitOK polls every running node until it reports cluster_state:ok and
// knows every primary, for at most 20 seconds.
func (c *Cluster) WaitOK(ctx context.Context) error {
	deadline := time.Now().Add(20 * time.Second)
	c.mu.Lock()
	addrs := append([]string(nil), c.Addrs...)
	c.mu.Unlock()
	for _, addr := range addrs {
		cl := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
		for {
			info, err := cl.ClusterInfo(ctx).Result()
			if err == nil && strings.Contains(info, "cluster_state:ok") && strings.Contains(info, "cluster_known_nodes:"+strconv.Itoa(len(addrs))+"\r") {
				break
			}
			if time.Now().After(deadline) || ctx.Err() != nil {
				cl.Close()
				return fmt.Errorf("testredis: cluster node %s is not ok after 20s: %v\n%s", addr, err, info)
			}
			time.Sleep(20 * time.Millisecond)
		}
		cl.Close()
	}
	return nil
}

// Client returns a new cluster client with ContextTimeoutEnabled; the
// caller closes it.
func (c *Cluster) Client() *redis.ClusterClient {
	return redis.NewClusterClient(&redis.ClusterOptions{Addrs: c.Addrs, ContextTimeoutEnabled: true})
}

// URL returns the cluster in redisstore.Open's redis+cluster form.
func (c *Cluster) URL() string { return "redis+cluster://" + strings.Join(c.Addrs, ",") + "/" }

// Kill sends SIGKILL to node i and waits for it to exit.
func (c *Cluster) Kill(i int) error {
	c.mu.Lock()
	nd := c.nodes[i]
	c.mu.Unlock()
	if nd.cmd == nil {
		return nil
	}
	nd.cmd.Process.Signal(syscall.SIGKILL)
	select {
	case <-nd.done:
		return nil
	case <-time.After(10 * time.Second):
		return fmt.Errorf("testredis: redis-server on port %d did not exit after SIGKILL", nd.port)
	}
}

// Restart starts node i again on the same ports with the same nodes.conf
// (after Kill) and waits until it answers PING. Call WaitOK to wait for
// the cluster.
func (c *Cluster) Restart(ctx context.Context, i int) error {
	c.mu.Lock()
	nd := c.nodes[i]
	c.mu.Unlock()
	select {
	case <-nd.done:
	default:
		return fmt.Errorf("testredis: node %d (port %d) is still running", i, nd.port)
	}
	if err := c.start(nd); err != nil {
		return err
	}
	return waitPing(ctx, nd)
}

// NodeOf returns the index of the node that serves key's slot.
func (c *Cluster) NodeOf(ctx context.Context, key string) (int, error) {
	cl := redis.NewClient(&redis.Options{Addr: c.Addrs[0]})
	defer cl.Close()
	slot, err := cl.ClusterKeySlot(ctx, key).Result()
	if err != nil {
		return 0, err
	}
	shards, err := cl.ClusterShards(ctx).Result()
	if err != nil {
		return 0, err
	}
	for _, sh := range shards {
		for _, r := range sh.Slots {
			if r.Start > slot || slot > r.End {
				continue
			}
			for _, n := range sh.Nodes {
				for i, a := range c.Addrs {
					if n.Role == "master" && a == net.JoinHostPort(n.IP, strconv.FormatInt(n.Port, 10)) {
						return i, nil
					}
				}
			}
		}
	}
	return 0, fmt.Errorf("testredis: no node serves slot %d", slot)
}

// Close stops every node (SIGTERM, then SIGKILL after 5 seconds) and
// removes the cluster's directory.
func (c *Cluster) Close() error {
	c.mu.Lock()
	nodes := c.nodes
	c.mu.Unlock()
	var errs []error
	for _, nd := range nodes {
		if nd.cmd == nil {
			continue
		}
		select {
		case <-nd.done:
			continue
		default:
		}
		nd.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-nd.done:
		case <-time.After(5 * time.Second):
			nd.cmd.Process.Signal(syscall.SIGKILL)
			<-nd.done
		}
	}
	if c.dir != "" {
		if err := os.RemoveAll(c.dir); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Dir is the directory with the nodes' configs and logs.
func (c *Cluster) Dir() string { return c.dir }

// Log returns node i's log file, for failure messages.
func (c *Cluster) Log(i int) string {
	b, _ := os.ReadFile(filepath.Join(c.dir, "redis-"+strconv.Itoa(c.nodes[i].port)+".log"))
	return string(b)
}

var shared struct {
	once sync.Once
	c    *Cluster
	err  error
}

// SharedCluster returns the package's one 3-primary cluster, started on
// first use; the package's TestMain stops it with StopShared. It skips the
// test (fails with CI=true) when the binaries are missing.
func SharedCluster(t testing.TB) *Cluster {
	t.Helper()
	if _, _, err := binaries(); err != nil {
		testenv.Missing(t, "a Redis Cluster test needs the binaries: "+err.Error())
	}
	shared.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		shared.c, shared.err = StartCluster(ctx, 3)
	})
	if shared.err != nil {
		t.Fatalf("start the shared Redis Cluster: %v", shared.err)
	}
	return shared.c
}

// StopShared stops the shared cluster if it was started. Call it from
// TestMain after m.Run.
func StopShared() {
	if shared.c != nil {
		shared.c.Close()
	}
}

// Server is a standalone redis-server started for one test, for settings
// the machine's shared server must not be given (maxmemory, renamed
// commands).
type Server struct {
	Addr string
	dir  string
	nd   *node
}

// StartServer starts redis-server on a free loopback port with extra
// configuration arguments ("--maxmemory", "1mb", ...), without persistence,
// and stops it when the test ends. It skips the test (fails with CI=true)
// when redis-server is missing.
func StartServer(t testing.TB, args ...string) *Server {
	t.Helper()
	server, _, err := binaries()
	if err != nil {
		testenv.Missing(t, "a private Redis server needs the binaries: "+err.Error())
	}
	dir := t.TempDir()
	for try := 0; ; try++ {
		ports, err := freePorts(1)
		if err != nil {
			t.Fatal(err)
		}
		nd := &node{port: ports[0], done: make(chan struct{})}
		p := strconv.Itoa(nd.port)
		all := append([]string{"--port", p, "--bind", "127.0.0.1", "--dir", dir,
			"--logfile", "redis-" + p + ".log", "--save", "", "--appendonly", "no", "--daemonize", "no"}, args...)
		cmd := exec.Command(server, all...)
		cmd.SysProcAttr = sysProcAttr()
		if err := cmd.Start(); err != nil {
			t.Fatalf("testredis: start redis-server: %v", err)
		}
		nd.cmd = cmd
		go func() { // owned by the Server: ends with the process
			cmd.Wait()
			close(nd.done)
		}()
		s := &Server{Addr: net.JoinHostPort("127.0.0.1", p), dir: dir, nd: nd}
		t.Cleanup(s.stop)
		if err := waitPing(context.Background(), nd); err != nil {
			if try < 2 {
				continue // the port was taken meanwhile
			}
			t.Fatal(err)
		}
		return s
	}
}

func (s *Server) stop() {
	select {
	case <-s.nd.done:
		return
	default:
	}
	s.nd.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.nd.done:
	case <-time.After(5 * time.Second):
		s.nd.cmd.Process.Signal(syscall.SIGKILL)
		<-s.nd.done
	}
}
