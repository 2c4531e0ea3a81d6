//go:build e2e && !linux

package e2e

import "syscall"

// sysProcAttr puts a child in its own process group, so that Stop can
// signal everything it started.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
