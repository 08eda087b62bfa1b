package filestore

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"runtime"
	"strconv"
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

// errNoAnon: unnamed files cannot be made or named here.
var errNoAnon = errors.New("filestore: O_TMPFILE or linkat through /proc unavailable")

// openAnon opens a new unnamed regular file in the session directory
// (O_TMPFILE), mode 0600.
func (s *Store) openAnon() (*os.File, error) {
	var fd int
	var err error
	if cerr := s.dirCall(func(dirfd int) {
		for {
			fd, err = syscall.Openat(dirfd, ".", oTmpfile|syscall.O_WRONLY|syscall.O_CLOEXEC, 0o600)
			if !errors.Is(err, syscall.EINTR) {
				return
			}
		}
	}); cerr != nil {
		return nil, cerr
	}
	switch {
	case errors.Is(err, syscall.EOPNOTSUPP), errors.Is(err, syscall.EISDIR), errors.Is(err, syscall.EINVAL):
		// A file system or kernel without O_TMPFILE (EISDIR: one that
		// ignores the flag and saw a directory).
		return nil, errNoAnon
	case err != nil:
		return nil, &os.PathError{Op: "openat O_TMPFILE", Path: ".", Err: err}
	}
	return os.NewFile(uintptr(fd), "(new session file)"), nil
}

// linkAnon names f (from openAnon) name in the session directory. It fails
// with an error matching fs.ErrExist when name exists (never replaces it).
// Through /proc/self/fd: linkat of a descriptor itself (AT_EMPTY_PATH)
// needs a capability the server should not have.
func (s *Store) linkAnon(f *os.File, name string) error {
	src := "/proc/self/fd/" + strconv.Itoa(int(f.Fd()))
	var err error
	if cerr := s.dirCall(func(dirfd int) {
		for {
			err = linkat(atFdcwd, src, dirfd, name, atSymlinkFollow)
			if !errors.Is(err, syscall.EINTR) {
				return
			}
		}
	}); cerr != nil {
		return cerr
	}
	runtime.KeepAlive(f)
	switch {
	case errors.Is(err, syscall.EEXIST):
		return &os.LinkError{Op: "linkat", Old: src, New: name, Err: fs.ErrExist}
	case errors.Is(err, syscall.ENOENT), errors.Is(err, syscall.EXDEV), errors.Is(err, syscall.EPERM), errors.Is(err, syscall.EOPNOTSUPP):
		// No /proc, or a file system that refuses the link.
		return errNoAnon
	case err != nil:
		return &os.LinkError{Op: "linkat", Old: src, New: name, Err: err}
	}
	return nil
}

const (
	oTmpfile        = 0x400000 | syscall.O_DIRECTORY // O_TMPFILE: __O_TMPFILE | O_DIRECTORY
	atFdcwd         = -100                           // AT_FDCWD
	atSymlinkFollow = 0x400                          // AT_SYMLINK_FOLLOW
)

// linkat is linkat(2); package syscall has no wrapper for it on Linux.
func linkat(olddirfd int, oldpath string, newdirfd int, newpath string, flags int) error {
	op, err := syscall.BytePtrFromString(oldpath)
	if err != nil {
		return err
	}
	np, err := syscall.BytePtrFromString(newpath)
	if err != nil {
		return err
	}
	_, _, errno := syscall.Syscall6(syscall.SYS_LINKAT, uintptr(olddirfd), uintptr(unsafe.Pointer(op)), uintptr(newdirfd), uintptr(unsafe.Pointer(np)), uintptr(flags), 0)
	if errno != 0 {
		return errno
	}
	return nil
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
