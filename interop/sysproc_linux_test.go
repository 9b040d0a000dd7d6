package interop

import (
	"os/exec"
	"syscall"
)

// childAttr is the SysProcAttr of every peer process (node, python,
// Chromium): a process group of its own, so that cleanup ends it and all
// it started, and SIGKILL when the test binary dies (a go test -timeout
// panic, SIGKILL, Ctrl-C), which no cleanup would see. The kernel sends it
// when the thread that started the child ends; the Go runtime does not end
// its threads while the process runs.
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

// killGroup ends a peer started with childAttr and all it started.
func killGroup(cmd *exec.Cmd) { syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
