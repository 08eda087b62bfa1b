package testredis

import "syscall"

// sysProcAttr kills a started redis-server when the test process dies, so
// a test binary killed mid-run leaves no server behind.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
