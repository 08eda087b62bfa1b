//go:build unix

package filestore

import (
	"errors"
	"os"
	"syscall"
)

// flockFile takes an exclusive flock on f, waiting for other processes.
func flockFile(f *os.File) error {
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX)
		if !errors.Is(err, syscall.EINTR) {
			return err
		}
	}
}

func funlock(f *os.File) error {
	return syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
}
