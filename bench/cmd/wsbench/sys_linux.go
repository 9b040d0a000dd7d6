package main

import (
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// sleepInSyscall blocks the calling thread in a system call for d, which
// time.Sleep does not: settleRuntime needs the runtime to see goroutines
// stuck in system calls, so that it starts the threads it will reuse.
func sleepInSyscall(d time.Duration) {
	ts := syscall.NsecToTimespec(int64(d))
	syscall.Nanosleep(&ts, nil)
}

// readRSS returns this process's resident set size in bytes, 0 if unknown.
func readRSS() float64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for line := range strings.SplitSeq(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 64)
			return kb * 1024
		}
	}
	return 0
}
