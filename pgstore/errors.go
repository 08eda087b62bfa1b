package pgstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/puddle/v2"

	"github.com/galleta-go/galleta/store"
)

// fail wraps err from a call made for op. Errors that mean PostgreSQL
// cannot serve the call now wrap store.ErrUnavailable too; a canceled
// context stays errors.Is context.Canceled. The text names the operation
// and the cause (pgx's errors name the host, user and database, never a
// password or a parameter, so never an id).
func (s *Store) fail(op string, err error) error {
	var pe *pgconn.PgError
	switch {
	case err == nil:
		return nil
	case errors.Is(err, ErrClosed):
		return err
	case errors.Is(err, context.Canceled):
		return fmt.Errorf("pgstore: %s: %w", op, err)
	case errors.Is(err, puddle.ErrClosedPool):
		return fmt.Errorf("pgstore: %s: the connection pool was closed while the store uses it (close the store first): %w", op, err)
	case unavailable(err):
		return fmt.Errorf("pgstore: %s: %w: %w (check that PostgreSQL is up and reachable; the request can be retried)", op, store.ErrUnavailable, err)
	case errors.As(err, &pe) && pe.Code == "42P01": // undefined_table
		return fmt.Errorf("pgstore: %s: the table %s does not exist (dropped while the store runs?); create it with:\n%s\n%w", op, s.qtable, s.createSQL(), err)
	case errors.As(err, &pe) && pe.Code == "42501": // insufficient_privilege
		return fmt.Errorf("pgstore: %s: the database user lacks a privilege on %s; the store needs SELECT, INSERT, UPDATE and DELETE: %w", op, s.qtable, err)
	}
	return fmt.Errorf("pgstore: %s: %w", op, err)
}

// unavailable reports whether err means PostgreSQL cannot serve the call
// now, as opposed to a bug or a misconfiguration (a wrong password, a
// missing table, a privilege), which retrying would not fix.
func unavailable(err error) bool {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch {
		case strings.HasPrefix(pe.Code, "08"), // connection exception
			pe.Code == "57P01", // admin_shutdown (also pg_terminate_backend)
			pe.Code == "57P02", // crash_shutdown
			pe.Code == "57P03", // cannot_connect_now (starting up, recovery)
			pe.Code == "57P05", // idle_session_timeout
			pe.Code == "53300", // too_many_connections
			pe.Code == "53200", // out_of_memory
			pe.Code == "53100", // disk_full
			pe.Code == "25006", // read_only_sql_transaction (a standby)
			pe.Code == "57014", // query_canceled (statement_timeout)
			pe.Code == "55P03", // lock_not_available (lock_timeout)
			pe.Code == "40001", // serialization_failure
			pe.Code == "40P01": // deadlock_detected
			return true
		}
		return false
	}
	var ce *pgconn.ConnectError
	var ne net.Error
	switch {
	case errors.As(err, &ce):
		// Could not connect: refused, unreachable, timed out, or a server
		// that answered with one of the errors above (handled there). A
		// wrong password or database is a PgError inside it, so this case
		// comes after.
		return true
	case errors.Is(err, context.DeadlineExceeded),
		pgconn.Timeout(err),
		errors.As(err, &ne),
		connLost(err):
		return true
	}
	return false
}

// connLost reports whether err means the connection the statement used
// broke (as opposed to the server refusing the statement).
func connLost(err error) bool {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code == "57P01" || pe.Code == "57P02" || pe.Code == "57P05" || strings.HasPrefix(pe.Code, "08")
	}
	return errors.Is(err, io.EOF) ||
		errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.ECONNREFUSED) ||
		errors.Is(err, syscall.EPIPE) ||
		errors.Is(err, net.ErrClosed) ||
		errors.Is(err, pgconn.ErrConnClosed)
}

// maxRetries is how many times a statement is run again on another
// connection when the one it used was lost, for a store without a pool
// (tests). A store retries as many times as its pool holds connections
// (Store.retries): when the database restarted or an administrator ended
// the backends, every idle connection of the pool is dead, and each is
// found out (and dropped) only by using it.
const maxRetries = 2

// retryLimit is how many times s runs a statement again.
func (s *Store) retryLimit() int {
	if s.retries == 0 {
		return maxRetries
	}
	return s.retries
}

// retry runs op, and again (at most retryLimit times, while ctx lasts)
// when it failed before reaching the server (pgconn.SafeToRetry), or,
// when idempotent, because its connection was lost: a statement that may
// have run is repeated only if running it twice does what running it once
// does (a read, an upsert of the same row, a delete).
func (s *Store) retry(ctx context.Context, idempotent bool, op func() error) error {
	for attempt := 0; ; attempt++ {
		err := op()
		if err == nil || attempt == s.retryLimit() || ctx.Err() != nil {
			return err
		}
		if !pgconn.SafeToRetry(err) && !(idempotent && connLost(err)) {
			return err
		}
	}
}
