package pgstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"syscall"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
)

func TestUnavailable(t *testing.T) {
	pg := func(code string) error {
		return fmt.Errorf("wrapped: %w", &pgconn.PgError{Severity: "FATAL", Code: code})
	}
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{pg("08006"), true}, {pg("08001"), true}, {pg("57P01"), true}, {pg("57P02"), true},
		{pg("57P03"), true}, {pg("53300"), true}, {pg("25006"), true}, {pg("57014"), true},
		{pg("40001"), true}, {pg("55P03"), true},
		{pg("28P01"), false}, {pg("42P01"), false}, {pg("42501"), false}, {pg("23505"), false},
		{pg("22P02"), false}, {pg("3D000"), false},
		{context.DeadlineExceeded, true}, {io.EOF, true}, {io.ErrUnexpectedEOF, true},
		{syscall.ECONNREFUSED, true}, {syscall.ECONNRESET, true},
		{context.Canceled, false}, {errors.New("boom"), false},
	} {
		if got := unavailable(tc.err); got != tc.want {
			t.Errorf("unavailable(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}

// A statement that may have run is repeated only when repeating is
// harmless, or when it surely never reached the server.
func TestRetry(t *testing.T) {
	s := &Store{}
	for _, tc := range []struct {
		err        error
		idempotent bool
		calls      int
	}{
		{io.EOF, true, 1 + maxRetries},
		{io.EOF, false, 1},
		{&pgconn.PgError{Code: "57P01"}, true, 1 + maxRetries},
		{&pgconn.PgError{Code: "57P01"}, false, 1},
		{&pgconn.PgError{Code: "23505"}, true, 1},
		{safe{}, false, 1 + maxRetries},
		{context.DeadlineExceeded, true, 1},
	} {
		calls := 0
		s.retry(context.Background(), tc.idempotent, func() error { calls++; return tc.err })
		if calls != tc.calls {
			t.Errorf("retry(idempotent %v) of %v: %d calls, want %d", tc.idempotent, tc.err, calls, tc.calls)
		}
	}
}

type safe struct{}

func (safe) Error() string     { return "never sent" }
func (safe) SafeToRetry() bool { return true }
