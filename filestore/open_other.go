//go:build !linux

package filestore

import (
	"errors"
	"os"
	"time"
)

// Without openat and utimensat on a descriptor in the standard library,
// these platforms act through os.Root on the directory New opened: it never
// leaves the directory, but it follows a link that stays inside it, so an
// existing file is looked at (Lstat) before it is opened and compared
// (device and inode) after.

// openAt opens name in the session directory without following a symbolic
// link and without waiting on a FIFO or a device.
func (s *Store) openAt(name string, flag int, perm os.FileMode) (*os.File, error) {
	if flag&(os.O_CREATE|os.O_EXCL) == os.O_CREATE|os.O_EXCL {
		return s.root.OpenFile(name, flag|oNonblock, perm) // never follows
	}
	for range 3 { // a writer may replace the file between the looks
		fi, err := s.root.Lstat(name)
		if err != nil {
			return nil, err
		}
		if !fi.Mode().IsRegular() {
			return nil, &os.PathError{Op: "open", Path: name, Err: notRegularError{fi.Mode()}}
		}
		f, err := s.root.OpenFile(name, flag|oNonblock, perm)
		if err != nil {
			return nil, err
		}
		ofi, err := f.Stat()
		if err != nil {
			f.Close()
			return nil, err
		}
		if os.SameFile(fi, ofi) {
			return f, nil
		}
		f.Close()
	}
	return nil, &os.PathError{Op: "open", Path: name, Err: errors.New("the file kept changing while it was opened")}
}

// errNoAnon: unnamed files (Linux's O_TMPFILE) do not exist here; new
// sessions are written through a named temporary file and a rename.
var errNoAnon = errors.New("filestore: unnamed files are Linux-only")

func (s *Store) openAnon() (*os.File, error)            { return nil, errNoAnon }
func (s *Store) linkAnon(f *os.File, name string) error { return errNoAnon }

func (s *Store) renameAt(old, new string) error { return s.root.Rename(old, new) }

func (s *Store) removeAt(name string) error { return s.root.Remove(name) }

// setTimes sets name's atime and mtime, to the nanosecond. Through its
// name, not f: the caller opened and checked it under the session's lock
// just before.
func (s *Store) setTimes(_ *os.File, name string, atime, mtime time.Time) error {
	return s.root.Chtimes(name, atime, mtime)
}
