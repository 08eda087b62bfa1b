//go:build linux || openbsd || dragonfly || solaris || illumos || aix

package filestore

import (
	"io/fs"
	"syscall"
	"time"
)

func atime(fi fs.FileInfo) (time.Time, bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return time.Time{}, false
	}
	return time.Unix(int64(st.Atim.Sec), int64(st.Atim.Nsec)), true
}
