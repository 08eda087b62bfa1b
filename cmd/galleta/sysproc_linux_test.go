package main

import "syscall"

// childAttr kills a started server when the test process dies, so a test
// binary killed mid-run leaves no server behind.
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
