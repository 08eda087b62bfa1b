package redisstore_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/galleta-go/galleta"
	"github.com/galleta-go/galleta/internal/faultproxy"
	"github.com/galleta-go/galleta/internal/storecheck"
	"github.com/galleta-go/galleta/internal/testredis"
	"github.com/galleta-go/galleta/redisstore"
)

// faultApp is a Manager on a redisstore whose client dials Redis through a
// fault proxy (see storecheck.FaultApp).
type faultApp struct {
	*storecheck.FaultApp
	client *redis.Client
}

const poolSize = 16

// proxied returns options for a client of direct's Redis whose
// connections go through a fault proxy, and the proxy.
func proxied(t *testing.T, direct *redis.Client) (*redis.Options, *faultproxy.Proxy) {
	proxy, err := faultproxy.Start(direct.Options().Addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { proxy.Close() })
	opt := direct.Options()
	return &redis.Options{Addr: proxy.Addr(), DB: opt.DB, Username: opt.Username, Password: opt.Password, ContextTimeoutEnabled: true}, proxy
}

func newFaultApp(t *testing.T, timeout time.Duration) (*faultApp, string) {
	direct := testredis.Client(t)
	prefix := testredis.Prefix(t, direct)
	opt, proxy := proxied(t, direct)
	opt.PoolSize = poolSize
	client := redis.NewClient(opt)
	t.Cleanup(func() { client.Close() })
	st, err := redisstore.New(client, redisstore.Options{Prefix: prefix, Logger: storecheck.Quiet})
	if err != nil {
		t.Fatal(err)
	}
	return &faultApp{FaultApp: storecheck.NewFaultApp(t, st, proxy, timeout), client: client}, prefix
}

// TestFaults runs storecheck.RunFaults with Redis cut off and blackholed:
// 503s in time, no session minted, goroutines and the client's
// connections flat, recovery with nothing restarted. The proxy may carry
// one connection more than the pool counts while the client closes it.
func TestFaults(t *testing.T) {
	app, prefix := newFaultApp(t, 300*time.Millisecond)
	direct := testredis.Client(t)
	storecheck.RunFaults(t, storecheck.Faults{
		App: app.FaultApp,
		Sessions: func() int {
			n, err := testredis.CountPrefix(context.Background(), direct, prefix)
			if err != nil {
				t.Fatal(err)
			}
			return n
		},
		Conns:      func() int { return int(app.client.PoolStats().TotalConns) },
		MaxConns:   poolSize,
		ProxySlack: 1,
		Settle:     5 * time.Second,
	})
}

// Redis blackholed from the start: New returns after its probe, and
// concurrent first calls (each would measure the clock offset) still end
// within their own deadlines instead of queueing behind one another.
func TestStalledFromStart(t *testing.T) {
	direct := testredis.Client(t)
	opt, proxy := proxied(t, direct)
	proxy.Set(faultproxy.Stall)
	client := redis.NewClient(opt)
	t.Cleanup(func() { client.Close() })
	start := time.Now()
	st, err := redisstore.New(client, redisstore.Options{Prefix: testredis.Prefix(t, direct), Logger: storecheck.Quiet})
	if err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("New took %v with Redis blackholed, want about its 1 s probe", took)
	}
	var wg sync.WaitGroup
	// A call with a long deadline measures first; the short ones must not
	// wait for it beyond their own deadlines.
	wg.Go(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		st.Get(ctx, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa")
	})
	time.Sleep(50 * time.Millisecond) // let it take the measurement (real Redis, real clock)
	storecheck.GetsFailFast(t, st, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", 300*time.Millisecond)
	wg.Wait()
	proxy.Set(faultproxy.Pass)
	if _, err := st.Get(context.Background(), "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"); err == nil || galleta.IsUnavailable(err) {
		t.Errorf("Get once Redis passes = %v, want ErrNotFound", err)
	}
}
