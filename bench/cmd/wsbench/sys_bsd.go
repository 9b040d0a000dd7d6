//go:build darwin || dragonfly || freebsd || netbsd || openbsd

package main

import (
	"syscall"
	"time"
)

// sleepInSyscall blocks the calling thread in a system call for d (see
// sys_linux.go): select(2) with no descriptors, as these systems' syscall
// package has no nanosleep.
func sleepInSyscall(d time.Duration) {
	tv := syscall.NsecToTimeval(int64(d))
	syscall.Select(0, nil, nil, nil, &tv)
}

// readRSS returns this process's resident set size in bytes, 0 if unknown.
// There is no /proc here; ps(1) reads the kernel's figure.
func readRSS() float64 { return rssFromPS() }
