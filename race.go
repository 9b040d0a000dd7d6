//go:build race

package websocket

// raceEnabled: the race detector is on. It cannot see what assembly reads
// and writes, so masking copies in Go first (maskLoop), where it can.
// Allocation and memory figures mean nothing then (it instruments memory
// and drops sync.Pool entries at random), so tests that measure them skip.
const raceEnabled = true
