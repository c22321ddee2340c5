package pgstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/memconnect/memconnect/oauth"
)

// unavailable reports whether err says that the database cannot be
// reached for now (it restarts, or a connection broke), rather than that
// it refused the statement.
func unavailable(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	if pe, ok := errors.AsType[*pgconn.PgError](err); ok {
		switch pe.Code {
		case "57P01", "57P02", "57P03", // admin_shutdown, crash_shutdown, cannot_connect_now
			"08000", "08001", "08003", "08004", "08006": // connection exceptions
			return true
		}
		return false
	}
	if _, ok := errors.AsType[*pgconn.ConnectError](err); ok {
		return true
	}
	if _, ok := errors.AsType[net.Error](err); ok {
		return true
	}
	return pgconn.SafeToRetry(err) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
}

// readRetry is how long a read waits before its one retry.
const readRetry = 250 * time.Millisecond

// retryRead runs read, and once more after a moment when the database
// could not be reached (a restart takes about a second); an error that
// remains so matches [oauth.ErrStoreUnavailable]. Only reads are retried:
// running one twice changes nothing.
func retryRead[T any](ctx context.Context, read func() (T, error)) (T, error) {
	v, err := read()
	if !unavailable(err) {
		return v, err
	}
	t := time.NewTimer(readRetry)
	select {
	case <-t.C:
		v, err = read()
	case <-ctx.Done():
		t.Stop()
	}
	if unavailable(err) {
		err = fmt.Errorf("%w: %w", oauth.ErrStoreUnavailable, err)
	}
	return v, err
}
