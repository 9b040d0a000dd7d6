package main

import (
	"os"
	"os/exec"
	"strconv"
	"strings"
)

// rssFromPS asks ps(1) for this process's resident set size, for systems
// without /proc; 0 if it cannot tell.
func rssFromPS() float64 {
	out, err := exec.Command("ps", "-o", "rss=", "-p", strconv.Itoa(os.Getpid())).Output()
	if err != nil {
		return 0
	}
	kb, err := strconv.ParseFloat(strings.TrimSpace(string(out)), 64)
	if err != nil {
		return 0
	}
	return kb * 1024
}
