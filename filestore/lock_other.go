//go:build !unix

package filestore

import "os"

// Without flock, locks work within one process only: several processes must
// not share a directory on this platform.
func flockFile(*os.File) error { return nil }
func funlock(*os.File) error   { return nil }
