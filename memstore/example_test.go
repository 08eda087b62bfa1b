package memstore_test

import (
	"context"
	"fmt"
	"time"

	"github.com/galleta-go/galleta/memstore"
	"github.com/galleta-go/galleta/store"
)

func ExampleNew() {
	s := memstore.New(memstore.Options{
		MaxSessions: 100_000, // evict the least recently used above this
	})
	defer s.Close() // stops the sweeper goroutine

	ctx := context.Background()
	id := "NliONGT-j0K42qnn8ZTsQFxAzwiaoKLm"
	err := s.Set(ctx, id, store.Record{
		Data:    []byte(`{"cookie":{"originalMaxAge":3600000,"expires":null,"httpOnly":true,"path":"/"},"user":"alice"}`),
		Expires: time.Now().Add(time.Hour),
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	rec, err := s.Get(ctx, id)
	fmt.Println(string(rec.Data), err)

	n, _ := s.Count(ctx)
	fmt.Println("sessions:", n)
	// Output:
	// {"cookie":{"originalMaxAge":3600000,"expires":null,"httpOnly":true,"path":"/"},"user":"alice"} <nil>
	// sessions: 1
}
