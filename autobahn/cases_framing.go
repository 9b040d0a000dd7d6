// Cases 1.x (framing, RFC 6455 §5.2), 2.x (pings and pongs, §5.5.2–§5.5.3),
// 3.x (reserved bits, §5.2), 4.x (reserved opcodes, §5.2) and 5.x
// (fragmentation, §5.4).

package autobahn

import (
	"fmt"
	"strings"

	websocket "github.com/ws13/websocket"
)

// Group 1: echo of unfragmented messages at the payload length boundaries
// of §5.2 (7-bit, 16-bit and 64-bit length forms).
func framingCases() []*Case {
	type spec struct {
		n    int
		chop int
		kill float64
	}
	specs := []spec{{0, 0, 1}, {125, 0, 1}, {126, 0, 1}, {127, 0, 1}, {128, 0, 1}, {65535, 0, 10}, {65536, 0, 10}, {65536, 997, 10}}
	var cs []*Case
	for g, binary := range []bool{false, true} {
		for i, sp := range specs {
			kind, fill, op := "text", "*", opText
			if binary {
				kind, fill, op = "binary", "\xfe", opBinary
			}
			payload := strings.Repeat(fill, sp.n)
			desc := fmt.Sprintf("Send a %s message with a payload of %d octets.", kind, sp.n)
			if sp.chop > 0 {
				desc += fmt.Sprintf(" Write it to TCP in pieces of %d octets.", sp.chop)
			}
			cs = append(cs, &Case{
				ID:          fmt.Sprintf("1.%d.%d", g+1, i+1),
				Description: desc,
				Expectation: "The same message comes back. Clean close with normal code.",
				open: func(r *run) {
					r.expect(OK, message(payload, binary))
					r.closeByRunner(true, codeNormal)
					r.send(frameSpec{op: op, payload: []byte(payload), chop: sp.chop})
					r.s.killAfter(sec(sp.kill))
				},
			})
		}
	}
	return cs
}

// Group 2: pings must be answered with the same payload; unsolicited pongs
// ignored; control payloads above 125 octets fail the connection (§5.5).
func pingCases() []*Case {
	ping := func(id, desc string, payload string, chop int, wait float64) *Case {
		return &Case{
			ID:          id,
			Description: desc,
			Expectation: "A pong with the same payload comes back. Clean close with normal code.",
			open: func(r *run) {
				r.expect(OK, pong(payload))
				r.closeByRunner(true, codeNormal)
				r.send(frameSpec{op: opPing, payload: []byte(payload), chop: chop})
				r.s.closeAfter(sec(wait))
			},
		}
	}
	bin := "\x00\xff\xfe\xfd\xfc\xfb\x00\xff"
	cs := []*Case{
		ping("2.1", "Send a ping without payload.", "", 0, 1),
		ping("2.2", "Send a ping with a short text payload.", "Hello, world!", 0, 1),
		ping("2.3", "Send a ping with a short binary payload that is not UTF-8.", bin, 0, 1),
		ping("2.4", "Send a ping with a binary payload of 125 octets.", strings.Repeat("\xfe", 125), 0, 1),
		{
			ID:          "2.5",
			Description: "Send a ping with a binary payload of 126 octets, one more than a control frame may carry.",
			Expectation: "The peer fails the connection with 1002 (protocol error).",
			open: func(r *run) {
				r.expect(OK)
				r.closeByPeer(codeProtocol)
				r.send(frameSpec{op: opPing, payload: []byte(strings.Repeat("\xfe", 126))})
				r.s.killAfter(sec(1))
			},
		},
		ping("2.6", "Send a ping with a binary payload of 125 octets, written one octet at a time.", strings.Repeat("\xfe", 125), 1, 2),
	}
	unsolicited := func(id, desc, payload string) *Case {
		return &Case{
			ID:          id,
			Description: desc,
			Expectation: "Nothing comes back before the close. Clean close with normal code.",
			open: func(r *run) {
				r.expect(OK)
				r.closeByRunner(true, codeNormal)
				r.send(frameSpec{op: opPong, payload: []byte(payload)})
				r.s.sendClose(codeNormal, "")
				r.s.closeAfter(sec(1))
			},
		}
	}
	cs = append(cs,
		unsolicited("2.7", "Send an unsolicited pong without payload, then close.", ""),
		unsolicited("2.8", "Send an unsolicited pong with a payload, then close.", "unsolicited pong payload"),
		&Case{
			ID:          "2.9",
			Description: "Send an unsolicited pong with a payload, then a ping with a payload.",
			Expectation: "Only the pong answering our ping comes back. Clean close with normal code.",
			open: func(r *run) {
				r.expect(OK, pong("ping payload"))
				r.closeByRunner(true, codeNormal)
				r.send(frameSpec{op: opPong, payload: []byte("unsolicited pong payload")})
				r.send(frameSpec{op: opPing, payload: []byte("ping payload")})
				r.s.closeAfter(sec(1))
			},
		},
	)
	tenPings := func(id, desc string, chop int) *Case {
		return &Case{
			ID:          id,
			Description: desc,
			Expectation: "Ten pongs with the payloads of the pings, in order (the RFC does not require every ping to be answered, the suite checks it anyway). Clean close with normal code.",
			open: func(r *run) {
				var want []event
				for i := range 10 {
					p := fmt.Sprintf("payload-%d", i)
					want = append(want, pong(p))
					r.send(frameSpec{op: opPing, payload: []byte(p), chop: chop})
				}
				r.expect(OK, want...)
				r.closeByRunner(true, codeNormal)
				r.s.closeAfter(sec(3))
			},
		}
	}
	cs = append(cs,
		tenPings("2.10", "Send ten pings with payloads.", 0),
		tenPings("2.11", "Send ten pings with payloads, written one octet at a time.", 1),
	)
	return cs
}

// Group 3: a non-zero RSV bit without a negotiated extension fails the
// connection (§5.2: "MUST be 0 unless an extension is negotiated").
func reservedBitCases() []*Case {
	hello := []byte("Hello, world!")
	// Cases 3.2–3.4: an echo first, then the bad frame, then a ping the
	// peer must not answer; failing before echoing is NON-STRICT.
	echoThenBad := func(id, how string, rsv byte, sync bool, chop int) *Case {
		return &Case{
			ID:          id,
			Description: fmt.Sprintf("Send a small text message, then one with RSV = %d, then a ping%s.", rsv, how),
			Expectation: "The first message is echoed, then the peer fails the connection with 1002 and does not answer the ping. Failing before the echo is NON-STRICT.",
			open: func(r *run) {
				r.expect(OK, message(string(hello), false))
				r.expect(NonStrict)
				r.closeByPeer(codeProtocol)
				r.send(frameSpec{op: opText, payload: hello, sync: sync, chop: chop})
				r.send(frameSpec{op: opText, payload: hello, rsv: rsv, sync: sync, chop: chop})
				r.send(frameSpec{op: opPing, sync: sync, chop: chop})
				r.s.killAfter(sec(1))
			},
		}
	}
	bad := func(id, desc string, f frameSpec) *Case {
		return &Case{
			ID:          id,
			Description: desc,
			Expectation: "The peer fails the connection with 1002 (protocol error).",
			open: func(r *run) {
				r.expect(OK)
				r.closeByPeer(codeProtocol)
				r.send(f)
				r.s.killAfter(sec(1))
			},
		}
	}
	return []*Case{
		bad("3.1", "Send a small text message with RSV = 1.", frameSpec{op: opText, payload: hello, rsv: 1}),
		echoThenBad("3.2", "", 2, false, 0),
		echoThenBad("3.3", ", each as a write of its own", 3, true, 0),
		echoThenBad("3.4", ", written one octet at a time", 4, false, 1),
		bad("3.5", "Send a small binary message with RSV = 5.", frameSpec{op: opBinary, payload: []byte("\x00\xff\xfe\xfd\xfc\xfb\x00\xff"), rsv: 5}),
		bad("3.6", "Send a small binary message with RSV = 6.", frameSpec{op: opBinary, payload: hello, rsv: 6}),
		bad("3.7", "Send a close frame with RSV = 7.", frameSpec{op: opClose, rsv: 7}),
	}
}

// Group 4: reserved opcodes fail the connection (§5.2: "If an unknown
// opcode is received, the receiving endpoint MUST _Fail the WebSocket
// Connection_").
func opcodeCases() []*Case {
	hello := []byte("Hello, world!")
	var cs []*Case
	for g, ops := range [][]websocket.Opcode{{3, 4, 5, 6, 7}, {11, 12, 13, 14, 15}} {
		kind := "non-control"
		if g == 1 {
			kind = "control"
		}
		for i, op := range ops {
			id := fmt.Sprintf("4.%d.%d", g+1, i+1)
			switch i {
			case 0, 1:
				var payload []byte
				desc := fmt.Sprintf("Send a frame with reserved %s opcode %d.", kind, op)
				if i == 1 {
					payload = []byte("reserved opcode payload")
					desc = fmt.Sprintf("Send a frame with reserved %s opcode %d and a payload.", kind, op)
				}
				cs = append(cs, &Case{
					ID:          id,
					Description: desc,
					Expectation: "The peer fails the connection with 1002 (protocol error).",
					open: func(r *run) {
						r.expect(OK)
						r.closeByPeer(codeProtocol)
						r.send(frameSpec{op: op, payload: payload})
						r.s.killAfter(sec(1))
					},
				})
			default:
				var payload []byte
				chop := 0
				desc := fmt.Sprintf("Send a small text message, then a frame with reserved %s opcode %d, then a ping.", kind, op)
				if i == 3 {
					payload = hello
					desc = fmt.Sprintf("Send a small text message, then a frame with reserved %s opcode %d and a payload, then a ping.", kind, op)
				}
				if i == 4 {
					payload = hello
					chop = 1
					desc = fmt.Sprintf("Send a small text message, then a frame with reserved %s opcode %d and a payload, then a ping, all written one octet at a time.", kind, op)
				}
				cs = append(cs, &Case{
					ID:          id,
					Description: desc,
					Expectation: "The message is echoed, then the peer fails the connection with 1002 and does not answer the ping. Failing before the echo is NON-STRICT.",
					open: func(r *run) {
						r.expect(OK, message(string(hello), false))
						r.expect(NonStrict)
						r.closeByPeer(codeProtocol)
						r.send(frameSpec{op: opText, payload: hello, chop: chop})
						r.send(frameSpec{op: op, payload: payload, chop: chop})
						r.send(frameSpec{op: opPing, chop: chop})
						r.s.killAfter(sec(1))
					},
				})
			}
		}
	}
	return cs
}

// Group 5: fragmentation rules of §5.4: control frames are never
// fragmented, continuation frames only continue a started message, control
// frames may come between fragments.
func fragmentationCases() []*Case {
	f1, f2 := []byte("fragment1"), []byte("fragment2")
	fail := func(id, desc string, frames ...frameSpec) *Case {
		return &Case{
			ID:          id,
			Description: desc,
			Expectation: "The peer fails the connection with 1002 (protocol error).",
			open: func(r *run) {
				r.expect(OK)
				r.closeByPeer(codeProtocol)
				for _, f := range frames {
					r.send(f)
				}
				r.s.killAfter(sec(1))
			},
		}
	}
	echo := func(id, desc string, want []event, frames ...frameSpec) *Case {
		return &Case{
			ID:          id,
			Description: desc,
			Expectation: "The expected pongs and the whole message come back. Clean close with normal code.",
			open: func(r *run) {
				r.expect(OK, want...)
				r.closeByRunner(true, codeNormal)
				for _, f := range frames {
					r.send(f)
				}
				r.s.closeAfter(sec(1))
			},
		}
	}
	msg := message("fragment1fragment2", false)
	pp := []byte("ping payload")
	nonCont, hello := []byte("non-continuation payload"), []byte("Hello, world!")
	cs := []*Case{
		fail("5.1", "Send a ping in two fragments.", frameSpec{op: opPing, payload: f1, more: true}, frameSpec{op: opCont, payload: f2}),
		fail("5.2", "Send a pong in two fragments.", frameSpec{op: opPong, payload: f1, more: true}, frameSpec{op: opCont, payload: f2}),
		echo("5.3", "Send a text message in two fragments.", []event{msg},
			frameSpec{op: opText, payload: f1, more: true}, frameSpec{op: opCont, payload: f2}),
		echo("5.4", "Send a text message in two fragments, each as a write of its own.", []event{msg},
			frameSpec{op: opText, payload: f1, more: true, sync: true}, frameSpec{op: opCont, payload: f2, sync: true}),
		echo("5.5", "Send a text message in two fragments, written one octet at a time.", []event{msg},
			frameSpec{op: opText, payload: f1, more: true, chop: 1}, frameSpec{op: opCont, payload: f2, chop: 1}),
		echo("5.6", "Send a text message in two fragments with a ping between them.", []event{pong("ping payload"), msg},
			frameSpec{op: opText, payload: f1, more: true}, frameSpec{op: opPing, payload: pp}, frameSpec{op: opCont, payload: f2}),
		echo("5.7", "Send a text message in two fragments with a ping between them, each frame as a write of its own.", []event{pong("ping payload"), msg},
			frameSpec{op: opText, payload: f1, more: true, sync: true}, frameSpec{op: opPing, payload: pp, sync: true}, frameSpec{op: opCont, payload: f2, sync: true}),
		echo("5.8", "Send a text message in two fragments with a ping between them, written one octet at a time.", []event{pong("ping payload"), msg},
			frameSpec{op: opText, payload: f1, more: true, chop: 1}, frameSpec{op: opPing, payload: pp, chop: 1}, frameSpec{op: opCont, payload: f2, chop: 1}),
	}
	// 5.9–5.14: a continuation frame with nothing to continue.
	for i, fin := range []bool{true, false} {
		what := "final"
		if !fin {
			what = "non-final"
		}
		for j, mode := range []string{"", ", each as a write of its own", ", written one octet at a time"} {
			sync, chop := j == 1, 0
			if j == 2 {
				chop = 1
			}
			cs = append(cs, fail(fmt.Sprintf("5.%d", 9+3*i+j),
				fmt.Sprintf("Send a %s continuation frame with no message started, then a text message%s.", what, mode),
				frameSpec{op: opCont, payload: nonCont, more: !fin, sync: sync, chop: chop},
				frameSpec{op: opText, payload: hello, sync: sync, chop: chop}))
		}
	}
	cs = append(cs, &Case{
		ID:          "5.15",
		Description: "Send a text message in two fragments, then a continuation frame with no message started, then a text frame.",
		Expectation: "The first message is echoed, then the peer fails the connection with 1002. Failing before the echo is NON-STRICT.",
		open: func(r *run) {
			r.expect(OK, msg)
			r.expect(NonStrict)
			r.closeByPeer(codeProtocol)
			r.send(frameSpec{op: opText, payload: f1, more: true})
			r.send(frameSpec{op: opCont, payload: f2})
			r.send(frameSpec{op: opCont, payload: []byte("fragment3"), more: true})
			r.send(frameSpec{op: opText, payload: []byte("fragment4")})
			r.s.killAfter(sec(1))
		},
	})
	f3 := []byte("fragment3")
	var s16, s17 []frameSpec
	for range 2 {
		s16 = append(s16, frameSpec{op: opCont, payload: f1, more: true}, frameSpec{op: opText, payload: f2, more: true}, frameSpec{op: opCont, payload: f3})
		s17 = append(s17, frameSpec{op: opCont, payload: f1}, frameSpec{op: opText, payload: f2, more: true}, frameSpec{op: opCont, payload: f3})
	}
	cs = append(cs,
		fail("5.16", "Twice: a non-final continuation frame with no message started, then a text message in two fragments.", s16...),
		fail("5.17", "Twice: a final continuation frame with no message started, then a text message in two fragments.", s17...),
		fail("5.18", "Send a text message in two fragments, both with the text opcode.",
			frameSpec{op: opText, payload: f1, more: true}, frameSpec{op: opText, payload: f2}),
	)
	for i, sync := range []bool{false, true} {
		how := ""
		if sync {
			how = " Each frame is a write of its own."
		}
		cs = append(cs, &Case{
			ID:          fmt.Sprintf("5.%d", 19+i),
			Description: "Send a text message in five fragments with two pings among them, pausing one second in the middle." + how,
			Expectation: "Both pongs come back, each as soon as its ping arrives, then the whole message. Clean close with normal code.",
			timeout:     30e9,
			open: func(r *run) {
				frags := []string{"fragment1", "fragment2", "fragment3", "fragment4", "fragment5"}
				pings := []string{"pongme 1!", "pongme 2!"}
				r.expect(OK, pong(pings[0]), pong(pings[1]), message(strings.Join(frags, ""), false))
				r.closeByRunner(true, codeNormal)
				r.send(frameSpec{op: opText, payload: []byte(frags[0]), more: true, sync: sync})
				r.send(frameSpec{op: opCont, payload: []byte(frags[1]), more: true, sync: sync})
				r.send(frameSpec{op: opPing, payload: []byte(pings[0]), sync: sync})
				r.s.continueLater(sec(1), "", func() {
					r.send(frameSpec{op: opCont, payload: []byte(frags[2]), more: true, sync: sync})
					r.send(frameSpec{op: opCont, payload: []byte(frags[3]), more: true, sync: sync})
					r.send(frameSpec{op: opPing, payload: []byte(pings[1]), sync: sync})
					r.send(frameSpec{op: opCont, payload: []byte(frags[4]), sync: sync})
					r.s.closeAfter(sec(1))
				})
			},
		})
	}
	return cs
}
