package filestore

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"syscall"
	"time"
	"unsafe"
)

// On Linux the hot paths act on the session directory through the handle
// New opened (openat, renameat, unlinkat), never through its path, and set
// times on the open file (utimensat on the descriptor): one system call
// each, nothing followed, nothing looked up twice.

// dirCall runs f with the session directory's descriptor, which Close
// cannot release while f runs.
func (s *Store) dirCall(f func(dirfd int)) error {
	if err := s.dirConn.Control(func(fd uintptr) { f(int(fd)) }); err != nil {
		return fmt.Errorf("session directory handle: %w", err)
	}
	return nil
}

// openAt opens name in the session directory without following a symbolic
// link (O_NOFOLLOW) and without waiting on a FIFO or a device (O_NONBLOCK).
func (s *Store) openAt(name string, flag int, perm os.FileMode) (*os.File, error) {
	var fd int
	var err error
	if cerr := s.dirCall(func(dirfd int) {
		for {
			fd, err = syscall.Openat(dirfd, name, flag|syscall.O_NOFOLLOW|oNonblock|syscall.O_CLOEXEC, uint32(perm.Perm()))
			if !errors.Is(err, syscall.EINTR) {
				return
			}
		}
	}); cerr != nil {
		return nil, cerr
	}
	if err != nil {
		return nil, &os.PathError{Op: "openat", Path: name, Err: err}
	}
	return os.NewFile(uintptr(fd), name), nil
}

// renameAt renames old to new, both names in the session directory.
func (s *Store) renameAt(old, new string) error {
	var err error
	if cerr := s.dirCall(func(dirfd int) {
		for {
			err = syscall.Renameat(dirfd, old, dirfd, new)
			if !errors.Is(err, syscall.EINTR) {
				return
			}
		}
	}); cerr != nil {
		return cerr
	}
	if err != nil {
		return &os.LinkError{Op: "renameat", Old: old, New: new, Err: err}
	}
	return nil
}

// removeAt removes name (not a directory) from the session directory.
func (s *Store) removeAt(name string) error {
	var err error
	if cerr := s.dirCall(func(dirfd int) {
		for {
			err = syscall.Unlinkat(dirfd, name)
			if !errors.Is(err, syscall.EINTR) {
				return
			}
		}
	}); cerr != nil {
		return cerr
	}
	if err != nil {
		return &os.PathError{Op: "unlinkat", Path: name, Err: err}
	}
	return nil
}

// setTimes sets the open file's atime and mtime, to the nanosecond
// (utimensat(fd, NULL, times, 0): the inode f was opened on, whatever its
// name points to now).
func (s *Store) setTimes(f *os.File, _ string, atime, mtime time.Time) error {
	ts := [2]syscall.Timespec{
		syscall.NsecToTimespec(atime.UnixNano()),
		syscall.NsecToTimespec(mtime.UnixNano()),
	}
	var errno syscall.Errno
	for {
		_, _, errno = syscall.Syscall6(syscall.SYS_UTIMENSAT, f.Fd(), 0, uintptr(unsafe.Pointer(&ts[0])), 0, 0, 0)
		if errno != syscall.EINTR {
			break
		}
	}
	runtime.KeepAlive(f)
	if errno != 0 {
		return &os.PathError{Op: "utimensat", Path: f.Name(), Err: errno}
	}
	return nil
}
