//go:build unix && !linux

package interop

import (
	"os/exec"
	"syscall"
)

// childAttr is the SysProcAttr of every peer process: a process group of
// its own, so that cleanup ends it and all it started. Only Linux can kill
// a child when its parent dies; elsewhere the node and python peers end
// themselves when their stdin, which the test holds, reaches EOF.
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}

// killGroup ends a peer started with childAttr and all it started.
func killGroup(cmd *exec.Cmd) { syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
