package redisstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"

	"github.com/redis/go-redis/v9"

	"github.com/galleta-go/galleta/store"
)

// fail wraps err from a Redis call made for op. Errors that mean Redis
// cannot serve the call now wrap store.ErrUnavailable too; a canceled
// context stays errors.Is context.Canceled. The text names the operation
// and the cause (go-redis's errors name addresses, never keys).
func (s *Store) fail(op string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, store.ErrUnavailable):
		return fmt.Errorf("redisstore: %s: %w", op, err)
	case errors.Is(err, context.Canceled):
		return fmt.Errorf("redisstore: %s: %w", op, err)
	case unavailable(err):
		return fmt.Errorf("redisstore: %s: %w: %w (check that Redis is up and reachable; the request can be retried)", op, store.ErrUnavailable, err)
	}
	return fmt.Errorf("redisstore: %s: %w", op, err)
}

// unavailable reports whether err means Redis cannot serve the call now, as
// opposed to a bug or a misconfiguration (a wrong password, a script
// error), which retrying would not fix.
func unavailable(err error) bool {
	var ne net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded),
		errors.As(err, &ne),
		errors.Is(err, io.EOF),
		errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, syscall.ECONNREFUSED),
		errors.Is(err, syscall.ECONNRESET),
		errors.Is(err, syscall.EPIPE),
		errors.Is(err, net.ErrClosed),
		errors.Is(err, redis.ErrPoolTimeout),
		errors.Is(err, redis.ErrPoolExhausted),
		redis.IsLoadingError(err),
		redis.IsClusterDownError(err),
		redis.IsTryAgainError(err),
		redis.IsMasterDownError(err),
		redis.IsReadOnlyError(err),
		redis.IsOOMError(err),
		redis.IsMaxClientsError(err),
		redis.IsNoReplicasError(err):
		return true
	}
	return false
}
