//go:build unix

package main

import (
	"os/exec"
	"syscall"
)

// startInGroup starts cmd in a process group of its own, so that
// killGroup ends the browser and every process it started, which would
// otherwise go on writing into its profile directory.
func startInGroup(cmd *exec.Cmd) error {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	return cmd.Start()
}

func killGroup(cmd *exec.Cmd) {
	syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	cmd.Wait()
}
