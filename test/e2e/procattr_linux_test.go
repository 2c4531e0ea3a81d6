//go:build e2e

package e2e

import "syscall"

// sysProcAttr puts a child in its own process group, so that Stop can
// signal everything it started, and has the kernel kill it if the test
// binary dies without running its cleanups (a timeout panic, a SIGKILL).
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
