//go:build !unix

package interop

import (
	"os/exec"
	"syscall"
)

// childAttr is the SysProcAttr of every peer process. Without process
// groups, the node and python peers end themselves when their stdin, which
// the test holds, reaches EOF; Chromium is ended by killGroup.
func childAttr() *syscall.SysProcAttr { return nil }

// killGroup ends a peer started with childAttr (the process alone: there
// is no process group to end here).
func killGroup(cmd *exec.Cmd) { cmd.Process.Kill() }
