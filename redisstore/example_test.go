package redisstore_test

import (
	"log"
	"net/http"
	"os"

	"github.com/redis/go-redis/v9"

	"github.com/galleta-go/galleta"
	"github.com/galleta-go/galleta/redisstore"
)

// A Manager on Redis, sharing sessions with an Express app that uses
// connect-redis with its default prefix and the same secret.
func Example() {
	st, err := redisstore.Open("redis://127.0.0.1:6379/0", redisstore.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer st.Close() // closes the client Open built
	m, err := galleta.New(galleta.Options{
		CookieName: "connect.sid",
		Secrets:    []string{os.Getenv("SESSION_SECRET")},
		Store:      st,
	})
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close()
	log.Fatal(http.ListenAndServe("127.0.0.1:8080", m.Middleware(http.NotFoundHandler())))
}

// A store on a client the application owns, here a cluster: the store
// never closes it.
func ExampleNew_cluster() {
	client := redis.NewClusterClient(&redis.ClusterOptions{
		Addrs:                 []string{"10.0.0.1:7000", "10.0.0.2:7000", "10.0.0.3:7000"},
		ContextTimeoutEnabled: true, // calls end at the Manager's StoreTimeout
	})
	defer client.Close()
	st, err := redisstore.New(client, redisstore.Options{Prefix: "myapp:sess:"})
	if err != nil {
		log.Fatal(err)
	}
	_ = st // galleta.Options{Store: st, ...}
}
