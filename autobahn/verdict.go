// Verdicts: how a case run is judged, the way the official suite judges it.
//
// A case records what the peer sent back (messages and pongs, plus named
// "timeout" marks the case adds itself) and lists the expected sequences,
// each tagged with the verdict it earns. A separate close verdict looks at
// the closing handshake: who started it, whether it was clean, which code
// came back and, when the runner is the client, who dropped TCP (RFC 6455
// §7.1.1: the server should).

package autobahn

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// The verdicts. Behavior uses OK, NON-STRICT, INFORMATIONAL, UNIMPLEMENTED
// and FAILED; the close verdict (behaviorClose) can also be WRONG CODE,
// UNCLEAN or FAILED BY CLIENT.
const (
	OK             = "OK"
	NonStrict      = "NON-STRICT"
	Failed         = "FAILED"
	WrongCode      = "WRONG CODE"
	Unclean        = "UNCLEAN"
	FailedByClient = "FAILED BY CLIENT"
	Informational  = "INFORMATIONAL"
	Unimplemented  = "UNIMPLEMENTED"
)

// event is one observation: a message, a pong, or a timeout mark.
type event struct {
	kind    string // "message", "pong" or "timeout"
	payload []byte
	binary  bool
	tag     string
}

func message(p string, binary bool) event {
	return event{kind: "message", payload: []byte(p), binary: binary}
}
func pong(p string) event          { return event{kind: "pong", payload: []byte(p)} }
func timeoutMark(tag string) event { return event{kind: "timeout", tag: tag} }

func (e event) equal(o event) bool {
	return e.kind == o.kind && e.binary == o.binary && e.tag == o.tag && bytes.Equal(e.payload, o.payload)
}

func sameEvents(a, b []event) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !a[i].equal(b[i]) {
			return false
		}
	}
	return true
}

// reportForm renders an event the way the official reports list them.
func (e event) reportForm() []any {
	switch e.kind {
	case "message":
		return []any{e.kind, asciiLogData(e.payload), e.binary}
	case "timeout":
		return []any{e.kind, e.tag}
	}
	return []any{e.kind, asciiLogData(e.payload)}
}

// asciiLogData abbreviates a payload: text when it is UTF-8, else hex.
func asciiLogData(p []byte) string {
	const maxlen, ellipses = 64, " ..."
	d := p
	suffix := ""
	if len(p) > maxlen-len(ellipses) {
		d, suffix = p[:min(len(p), maxlen)], ellipses
	}
	if validUTF8(append(append([]byte(nil), d...), suffix...)) {
		return string(d) + suffix
	}
	return "0x" + fmt.Sprintf("%x", d) + suffix
}

type expectation struct {
	behavior string
	events   []event
}

// expectedClose is what the closing handshake should look like.
type expectedClose struct {
	closedByMe   bool  // the runner sends the first close frame
	closeCode    []int // codes the peer may send (no code at all is fine too)
	requireClean bool
	// For UTF-8 cases: if the wrong side closed, the peer never noticed the
	// invalid text, and the case fails whatever else happened.
	wrongEndpointFatal bool
}

// verdict computes behavior and behaviorClose once TCP is gone.
func (r *run) verdict() {
	for _, e := range r.expected {
		if sameEvents(r.received, e.events) {
			r.behavior = e.behavior
			r.result = "Actual events match at least one expected."
			break
		}
	}
	s := r.s
	if !r.connectionWasOpen {
		r.behaviorClose = Failed
		r.resultClose = "The WebSocket opening handshake was never completed!"
		return
	}
	ec := r.expClose
	switch {
	case ec.closedByMe != s.closedByMe:
		r.behaviorClose = Failed
		r.resultClose = "The connection was failed by the wrong endpoint"
	case ec.requireClean && !s.wasClean:
		r.behaviorClose = Unclean
		r.resultClose = "The spec requires the connection to be failed cleanly here"
	case s.remoteCloseCode != nil && !containsInt(ec.closeCode, *s.remoteCloseCode):
		r.behaviorClose = WrongCode
		codes := make([]string, len(ec.closeCode))
		for i, c := range ec.closeCode {
			codes[i] = strconv.Itoa(c)
		}
		r.resultClose = "The close code should have been " + strings.Join(codes, ",") + " or empty"
	case !s.isServer && s.droppedByMe:
		r.behaviorClose = FailedByClient
		r.resultClose = "It is preferred that the server close the TCP connection"
	default:
		r.behaviorClose = OK
		r.resultClose = "Connection was properly closed"
	}
	if ec.wrongEndpointFatal && ec.closedByMe != s.closedByMe {
		r.behavior = Failed
	}
}

// wrongCodeFails is the extra rule of the close cases (group 7): a wrong
// close code fails the case itself, not only its close verdict.
func wrongCodeFails(r *run) {
	if r.behaviorClose == WrongCode {
		r.behavior = Failed
		r.result = r.resultClose
	}
}

// informational marks cases whose outcome the RFC leaves open.
func informational(result string) func(*run) {
	return func(r *run) {
		if result == "" {
			switch r.behavior {
			case OK:
				r.result = "Text message was processed before close."
			case NonStrict:
				r.result = "Close was processed before text message could be returned."
			}
		} else {
			r.result = result
		}
		r.behavior = Informational
		r.behaviorClose = Informational
	}
}

func containsInt(xs []int, x int) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}

func sec(x float64) time.Duration { return time.Duration(x * float64(time.Second)) }
