//go:build !unix

package filestore

import "io/fs"

// No FIFOs or devices to wait on.
const oNonblock = 0

// Without a portable link count, a removed directory is found by its path.
func linkCount(fs.FileInfo) (uint64, bool) { return 0, false }

func readOnlyFS(error) bool { return false }
