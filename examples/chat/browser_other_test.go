//go:build !unix

package main

import "os/exec"

func startInGroup(cmd *exec.Cmd) error { return cmd.Start() }

func killGroup(cmd *exec.Cmd) {
	cmd.Process.Kill()
	cmd.Wait()
}
