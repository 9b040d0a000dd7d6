// Cases 7.x: the closing handshake (RFC 6455 §5.5.1, §7): what may follow
// a close frame, the structure of the close body, and which status codes
// are valid on the wire (§7.4). Also case 10.1.1, group 10's only case
// (a message the runner fragments itself, §5.4), at the end of the file.

package autobahn

import (
	"fmt"
	"strings"
)

func closeCases() []*Case {
	hello := []byte("Hello World!")
	// Most close cases share one rule: the runner closes, the peer answers
	// cleanly, and a wrong close code fails the case itself.
	closing := func(id, desc, expect string, clean bool, codes []int, script func(r *run)) *Case {
		return &Case{
			ID:            id,
			Description:   desc,
			Expectation:   expect,
			suppressClose: true,
			open: func(r *run) {
				r.expect(OK)
				r.closeByRunner(clean, codes...)
				script(r)
				r.s.killAfter(sec(1))
			},
			lost: wrongCodeFails,
		}
	}
	normal := []int{codeNormal}
	protocol := []int{codeProtocol}
	cleanClose := "Clean close with normal code."
	cs := []*Case{
		{
			ID:          "7.1.1",
			Description: "Send a text message, then a close frame.",
			Expectation: "The message is echoed. Clean close with normal code.",
			open: func(r *run) {
				r.expect(OK, message(string(hello), false))
				r.closeByRunner(true, codeNormal)
				r.send(frameSpec{op: opText, payload: hello})
				r.s.killAfter(sec(1))
			},
			lost: wrongCodeFails,
		},
		closing("7.1.2", "Send two close frames.", "The second close frame is ignored. "+cleanClose, true, normal, func(r *run) {
			r.s.sendClose(codeNormal, "")
			r.send(frameSpec{op: opClose})
		}),
		closing("7.1.3", "Send a ping after the close frame.", "The ping is not answered. "+cleanClose, true, normal, func(r *run) {
			r.s.sendClose(codeNormal, "")
			r.send(frameSpec{op: opPing})
		}),
		closing("7.1.4", "Send a text message after the close frame.", "The message is not echoed. "+cleanClose, true, normal, func(r *run) {
			r.s.sendClose(codeNormal, "")
			r.send(frameSpec{op: opText, payload: hello})
		}),
		closing("7.1.5", "Send the first fragment of a text message, a close frame, then the last fragment.", "Nothing is echoed. "+cleanClose, true, normal, func(r *run) {
			r.send(frameSpec{op: opText, more: true, payload: []byte("fragment1")})
			r.s.sendClose(codeNormal, "")
			r.send(frameSpec{op: opCont, payload: []byte("fragment2")})
		}),
		{
			ID:            "7.1.6",
			Description:   "Send a 256 KiB text message, a small text message, a close frame, then a ping.",
			Expectation:   "Informational: whether the small message is echoed before the close is left to the peer.",
			suppressClose: true,
			open: func(r *run) {
				r.expect(OK, message(string(hello), false))
				r.expect(NonStrict)
				r.closeByRunner(true, codeNormal)
				r.send(frameSpec{op: opText, payload: []byte("BAsd7&jh23"), fill: true, length: 256 << 10})
				r.send(frameSpec{op: opText, payload: hello})
				r.s.sendClose(codeNormal, "")
				r.send(frameSpec{op: opPing})
				r.s.killAfter(sec(1))
			},
			lost: informational(""),
		},
		closing("7.3.1", "Send a close frame with an empty body (no code, no reason).", cleanClose, true, normal, func(r *run) {
			r.s.sendCloseFrame(-1, nil, false)
		}),
		closing("7.3.2", "Send a close frame with a body of one octet.", "The peer fails the connection with 1002.", false, protocol, func(r *run) {
			r.s.sendCloseFrame(-1, []byte("a"), false)
		}),
		closing("7.3.3", "Send a close frame with code 1000 and no reason.", cleanClose, true, normal, func(r *run) {
			r.s.sendClose(codeNormal, "")
		}),
		closing("7.3.4", "Send a close frame with code 1000 and a reason.", cleanClose, true, normal, func(r *run) {
			r.s.sendClose(codeNormal, "Hello World!")
		}),
		closing("7.3.5", "Send a close frame with code 1000 and a reason of 123 octets, the most that fits.", cleanClose, true, normal, func(r *run) {
			r.s.sendClose(codeNormal, strings.Repeat("*", 123))
		}),
		closing("7.3.6", "Send a close frame with code 1000 and a reason of 124 octets: a 126-octet control frame.", "The peer fails the connection with 1002.", false, protocol, func(r *run) {
			r.s.sendCloseFrame(codeNormal, []byte(strings.Repeat("*", 124)), false)
		}),
		closing("7.5.1", "Send a close frame with code 1000 and a reason that is not valid UTF-8.", "The peer fails the connection with 1002 or 1007.", false, []int{codeProtocol, codeInvalid}, func(r *run) {
			r.s.sendCloseFrame(codeNormal, []byte(kosme+"\xed\xa0\x80edited"), false)
		}),
	}
	for i, code := range []int{1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 3999, 4000, 4999} {
		c := closing(fmt.Sprintf("7.7.%d", i+1), fmt.Sprintf("Send a close frame with the valid code %d.", code),
			"Clean close with code 1000 or the same code.", true, []int{codeNormal, code}, func(r *run) {
				r.s.sendCloseFrame(code, nil, false)
			})
		c.suppressClose = false
		cs = append(cs, c)
	}
	for i, code := range []int{0, 999, 1004, 1005, 1006, 1016, 1100, 2000, 2999} {
		c := closing(fmt.Sprintf("7.9.%d", i+1), fmt.Sprintf("Send a close frame with the invalid code %d.", code),
			"The peer fails the connection with 1002.", false, protocol, func(r *run) {
				r.s.sendCloseFrame(code, nil, false)
			})
		c.suppressClose = false
		cs = append(cs, c)
	}
	for i, code := range []int{5000, 65535} {
		cs = append(cs, &Case{
			ID:            fmt.Sprintf("7.13.%d", i+1),
			Description:   fmt.Sprintf("Send a close frame with code %d, outside every range of §7.4.", code),
			Expectation:   "Informational: the RFC does not say what to do.",
			suppressClose: true,
			open: func(r *run) {
				r.expect(OK)
				r.closeByRunner(false, codeNormal, code, codeProtocol)
				r.s.sendCloseFrame(code, nil, false)
				r.s.killAfter(sec(1))
			},
			lost: informational("Actual events are undefined by the spec."),
		})
	}
	return cs
}

// Case 10.1.1: a large message sent in many frames of 1300 octets.
func autoFragmentationCases() []*Case {
	payload := strings.Repeat("*", 65536)
	return []*Case{{
		ID:          "10.1.1",
		Description: "Send a text message of 65536 octets split into frames of 1300 octets.",
		Expectation: "The message comes back as sent. Clean close with normal code.",
		open: func(r *run) {
			r.s.autoFragmentSize = 1300
			r.expect(OK, message(payload, false))
			r.closeByRunner(true, codeNormal)
			r.s.sendMessage([]byte(payload), false, 0, false)
			r.s.killAfter(sec(10))
		},
		lost: func(r *run) {
			// The official check counts the frames the runner itself sent:
			// 50 full continuation frames and one text frame.
			if !r.connectionWasOpen {
				r.behavior = Failed
				r.result = "WebSocket connection was never open"
				return
			}
			n := len(payload)
			want0, want1 := n/1300, 0
			if n%1300 > 0 {
				want1 = 1
			}
			if r.s.txFrameStats[0] != want0 || r.s.txFrameStats[1] != want1 {
				r.behavior = Failed
				r.result = fmt.Sprintf("Frames transmitted {0: %d, 1: %d} does not match what we expected {0: %d, 1: %d}.",
					r.s.txFrameStats[0], r.s.txFrameStats[1], want0, want1)
			}
		},
	}}
}
