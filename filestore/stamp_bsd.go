//go:build darwin || freebsd || netbsd

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
	return time.Unix(st.Atimespec.Sec, st.Atimespec.Nsec), true
}
