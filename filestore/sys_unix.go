//go:build unix

package filestore

import "syscall"

// oNonblock makes open(2) return at once on a FIFO or a device instead of
// waiting for the other end; a regular file ignores it.
const oNonblock = syscall.O_NONBLOCK
