package pgstore_test

import (
	"context"
	"log"
	"net/http"
	"os"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/galleta-go/galleta"
	"github.com/galleta-go/galleta/pgstore"
)

// A Manager on PostgreSQL, sharing sessions with an Express app that uses
// connect-pg-simple with its default table and the same secret.
func Example() {
	st, err := pgstore.Open("postgres://app@127.0.0.1:5432/app?sslmode=disable", pgstore.Options{})
	if err != nil {
		log.Fatal(err) // a missing table fails here, with the SQL to create it
	}
	defer st.Close() // stops the pruner and closes the pool Open built
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

// A store on a pool the application owns and shares with its own
// queries: the store never closes it. The table lives in its own schema
// and is created when missing.
func ExampleNew() {
	cfg, err := pgstore.ParseConfig(os.Getenv("DATABASE_URL")) // Open's defaults (a 5 s connect timeout)
	if err != nil {
		log.Fatal(err)
	}
	cfg.MaxConns = 20
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		log.Fatal(err)
	}
	defer pool.Close()
	st, err := pgstore.New(pool, pgstore.Options{Schema: "auth", Table: "sessions", CreateTable: true})
	if err != nil {
		log.Fatal(err)
	}
	defer st.Close() // stops the pruner; the pool stays open
	_ = st           // galleta.Options{Store: st, ...}
}
