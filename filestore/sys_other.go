//go:build !unix

package filestore

// No FIFOs or devices to wait on.
const oNonblock = 0
