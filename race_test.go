//go:build race

package websocket

// raceEnabled: the race detector is on. Allocation and memory figures mean
// nothing then (it instruments memory and drops sync.Pool entries at
// random), so tests that measure them skip.
const raceEnabled = true
