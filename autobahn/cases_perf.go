// Cases 9.x: limits and performance. Large messages (up to 16 MiB), many
// small fragments, chopped writes, and round trips of a thousand messages.
// The verdict is OK when every echo arrives within the case's time; the
// report shows how long it took.

package autobahn

import (
	"fmt"
	"strings"
	"time"
)

// echoLengthCase sends one large message and waits for an echo of the same
// type and length.
func echoLengthCase(id, desc string, binary bool, n int, wait float64, send func(r *run)) *Case {
	return &Case{
		ID:          id,
		Description: desc,
		Expectation: fmt.Sprintf("The message comes back with the same type and length within %g seconds. Clean close with normal code.", wait),
		reportTime:  true,
		timeout:     sec(wait) + 30*time.Second,
		open: func(r *run) {
			// These cases assign createWirelog instead of calling
			// enableWirelog, so no "WLM" row is logged (case9_1_1.py).
			r.s.createWirelog = false
			r.behavior = Failed
			r.closeByRunner(true, codeNormal)
			r.result = fmt.Sprintf("Did not receive message within %g seconds.", wait)
			send(r)
			r.s.closeAfter(sec(wait))
		},
		message: func(r *run, p []byte, isBinary bool) {
			switch {
			case isBinary != binary:
				r.result = "Expected a message of the other type."
			case len(p) != n:
				r.result = fmt.Sprintf("Expected a message of length %d, but got %d.", n, len(p))
			default:
				r.behavior = OK
				r.result = fmt.Sprintf("Received a message of length %d.", len(p))
			}
			r.s.createWirelog = true
			r.s.sendClose(codeNormal, "")
		},
	}
}

func performanceCases() []*Case {
	const (
		KiB = 1 << 10
		MiB = 1 << 20
	)
	var cs []*Case
	sizes := []struct {
		n          int
		text, bin  float64 // the official time limits differ between text and binary
		nameOfSize string
	}{
		{64 * KiB, 10, 10, "64 KiB"}, {256 * KiB, 10, 10, "256 KiB"}, {1 * MiB, 100, 10, "1 MiB"},
		{4 * MiB, 100, 10, "4 MiB"}, {8 * MiB, 100, 100, "8 MiB"}, {16 * MiB, 100, 100, "16 MiB"},
	}
	for g, binary := range []bool{false, true} {
		op, seed, kind := opText, "BAsd7&jh23", "text"
		if binary {
			op, seed, kind = opBinary, "\x00\xfe\x23\xfa\xf0", "binary"
		}
		for i, sz := range sizes {
			wait := sz.text
			if binary {
				wait = sz.bin
			}
			cs = append(cs, echoLengthCase(fmt.Sprintf("9.%d.%d", g+1, i+1),
				fmt.Sprintf("Send a %s message of %s in one frame.", kind, sz.nameOfSize), binary, sz.n, wait,
				func(r *run) {
					r.send(frameSpec{op: op, payload: []byte(seed), fill: true, length: sz.n})
				}))
		}
	}
	frags := []int{64, 256, 1 * KiB, 4 * KiB, 16 * KiB, 64 * KiB, 256 * KiB, 1 * MiB, 4 * MiB}
	for g, binary := range []bool{false, true} {
		kind := "text"
		if binary {
			kind = "binary"
		}
		for i, fs := range frags {
			fill := "*"
			if binary && i == 0 {
				fill = "\xfe" // only 9.4.1 uses 0xFE; the rest of 9.4 send '*'
			}
			payload := []byte(strings.Repeat(fill, 4*MiB))
			cs = append(cs, echoLengthCase(fmt.Sprintf("9.%d.%d", g+3, i+1),
				fmt.Sprintf("Send a %s message of 4 MiB in fragments of %d octets.", kind, fs), binary, 4*MiB, 100,
				func(r *run) {
					r.s.sendMessage(payload, binary, fs, false)
				}))
		}
	}
	for g, binary := range []bool{false, true} {
		op, seed, kind := opText, "BAsd7&jh23", "text"
		if binary {
			op, seed, kind = opBinary, "\x00\xfe\x23\xfa\xf0", "binary"
		}
		for i, chop := range []int{64, 128, 256, 512, 1024, 2048} {
			cs = append(cs, echoLengthCase(fmt.Sprintf("9.%d.%d", g+5, i+1),
				fmt.Sprintf("Send a %s message of 1 MiB in one frame, written to TCP in pieces of %d octets.", kind, chop), binary, 1*MiB, 1000,
				func(r *run) {
					r.send(frameSpec{op: op, payload: []byte(seed), fill: true, length: 1 * MiB, chop: chop})
				}))
		}
	}
	rtt := []struct {
		n    int
		wait float64
	}{{0, 60}, {16, 60}, {64, 60}, {256, 120}, {1024, 240}, {4096, 480}}
	for g, binary := range []bool{false, true} {
		kind := "text"
		if binary {
			kind = "binary"
		}
		for i, t := range rtt {
			cs = append(cs, roundTripCase(fmt.Sprintf("9.%d.%d", g+7, i+1),
				fmt.Sprintf("Send 1000 %s messages of %d octets, one at a time, each after the echo of the one before, to measure round-trip time.", kind, t.n),
				binary, t.n, 1000, t.wait))
		}
	}
	return cs
}

func roundTripCase(id, desc string, binary bool, n, count int, wait float64) *Case {
	sendOne := func(r *run) {
		if binary {
			r.send(frameSpec{op: opBinary, payload: []byte("\xfe"), fill: true, length: n})
		} else {
			r.send(frameSpec{op: opText, payload: []byte("*"), fill: true, length: n})
		}
		r.count++
	}
	return &Case{
		ID:          id,
		Description: desc,
		Expectation: fmt.Sprintf("Every message comes back within %g seconds in total. Clean close with normal code.", wait),
		reportTime:  true,
		timeout:     sec(wait) + 30*time.Second,
		open: func(r *run) {
			r.s.enableWirelog(false)
			r.behavior = Failed
			r.closeByRunner(true, codeNormal)
			r.result = fmt.Sprintf("Case did not finish within %g seconds.", wait)
			r.s.closeAfter(sec(wait))
			sendOne(r)
		},
		message: func(r *run, p []byte, isBinary bool) {
			switch {
			case isBinary != binary || len(p) != n:
				r.behavior = Failed
				r.result = fmt.Sprintf("Echoed message type or length differs from what was sent (binary = %t, length = %d).", isBinary, len(p))
				r.s.enableWirelog(true)
				r.s.sendClose(codeNormal, "")
			case r.count < count:
				sendOne(r)
			default:
				r.behavior = OK
				r.result = "Received all echoed messages in time."
				r.s.enableWirelog(true)
				r.s.sendClose(codeNormal, "")
			}
		},
	}
}
