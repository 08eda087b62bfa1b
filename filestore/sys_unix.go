//go:build unix

package filestore

import (
	"errors"
	"io/fs"
	"syscall"
)

// oNonblock makes open(2) return at once on a FIFO or a device instead of
// waiting for the other end; a regular file ignores it.
const oNonblock = syscall.O_NONBLOCK

// linkCount is the number of names fi's inode has: 0 for a directory that
// was removed while open.
func linkCount(fi fs.FileInfo) (n uint64, ok bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, false
	}
	return uint64(st.Nlink), true
}

// readOnlyFS reports whether err is a write refused by a read-only mount.
func readOnlyFS(err error) bool { return errors.Is(err, syscall.EROFS) }
