package filestore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
)

// Ping reports whether the store can serve reads and writes now, for a
// health check: the directory New opened is still the one at Dir (not
// removed, moved away or replaced), and a temporary file can be created,
// written, synced (with SyncAll) and removed in it, as at New. A store
// opened ReadOnly is only checked to be the same directory and readable.
// The error names the directory and the cause; after Close it is
// ErrClosed. Ping writes a file: it suits a health endpoint, not a request
// path.
func (s *Store) Ping(ctx context.Context) error {
	if s.closed.Load() {
		return ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := s.dirChanged(); err != nil {
		return fmt.Errorf("filestore: %w", err)
	}
	if s.readOnly {
		d, err := s.root.Open(".")
		if err == nil {
			_, err = d.ReadDir(1)
			d.Close()
			if err == io.EOF {
				err = nil // empty
			}
		}
		if err != nil {
			return fmt.Errorf("filestore: session directory %s is not readable: %w", s.dir, unwrapPath(err))
		}
		return nil
	}
	if err := s.dsync.err(); err != nil {
		return fmt.Errorf("filestore: an fsync of session directory %s failed (%w); every write fails until the store is reopened: restart the program", s.dir, err)
	}
	return s.probe()
}

// dirChanged says whether the session directory New opened was removed,
// moved away or replaced since, or nil. The store reaches files only
// through the handle New opened, so it never writes into a directory that
// took the old one's place (and never fsyncs one directory for a write
// that went to another): in a removed directory every write fails; in one
// moved away, writes go on where it is now, and Ping reports it.
func (s *Store) dirChanged() error {
	held, err := s.dirFile.Stat()
	if err != nil {
		return fmt.Errorf("session directory %s: %w", s.dir, unwrapPath(err))
	}
	if n, ok := linkCount(held); ok && n == 0 {
		return s.dirRemoved()
	}
	now, err := os.Stat(s.dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return s.dirRemoved()
	case err != nil:
		return fmt.Errorf("session directory %s: %w", s.dir, unwrapPath(err))
	case !os.SameFile(held, now):
		return fmt.Errorf("session directory %s was replaced by another directory while the store was open; the store still uses the one it opened, wherever it is now: restart the program to use %s", s.dir, s.dir)
	}
	return nil
}

func (s *Store) dirRemoved() error {
	return fmt.Errorf("session directory %s was removed (or moved away) while the store was open, so no session can be stored or found: restart the program, which creates it again (and find what removed it)", s.dir)
}

// writeError is ioError for a failure to create a file (a temporary file,
// a lock file): a file that cannot be created for want of the directory
// means the directory was removed, and the error says so.
func (s *Store) writeError(op string, err error) error {
	if errors.Is(err, fs.ErrNotExist) {
		if derr := s.dirChanged(); derr != nil {
			return fmt.Errorf("filestore: %s: %w", op, derr)
		}
	}
	return s.ioError(op, err)
}
