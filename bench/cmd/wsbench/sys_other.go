//go:build !linux && !darwin && !dragonfly && !freebsd && !netbsd && !openbsd

package main

import "time"

// sleepInSyscall sleeps for d. Without a portable blocking system call here
// the runtime may start its spare threads later, inside a measurement,
// where they show as a few stray allocations in the allocation rows.
func sleepInSyscall(d time.Duration) { time.Sleep(d) }

// readRSS returns this process's resident set size in bytes, 0 if unknown.
func readRSS() float64 { return rssFromPS() }
