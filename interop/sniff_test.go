package interop

// A wire tap on every plain ws:// connection. It parses the bytes that pass,
// independently of ws13's own frame code, so the tests can assert what an
// API hides: that a message really went out in fragments, that a peer
// compressed (RSV1), what a ping and its pong carried, what close code came
// back, and the status line and Sec-WebSocket-Extensions of the response.
//
// The tap is a relay (relay_test.go), not a wrapper around ws13's net.Conn:
// ws13 holds the *net.TCPConn of a real socket, so it reads through the
// same raw-socket path it takes in production.

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"strings"
	"sync"
	"time"
)

// frame is one frame seen on the wire.
type frame struct {
	out    bool // written by ws13
	opcode byte
	fin    bool
	rsv1   bool
	length int64
	// lengthCode is the 7-bit length field: the length itself, or 126 or
	// 127 for the 16- or 64-bit length that follows.
	lengthCode byte
	masked     bool
	payload    []byte // control frames only, unmasked
}

func (f frame) isData() bool { return f.opcode <= 2 }

// maxFrames bounds what a tap keeps: the large echo tests send few frames,
// and gorilla's small write buffer a few thousand.
const maxFrames = 1 << 16

// sniffer is the tap of one connection, both directions.
type sniffer struct {
	mu      sync.Mutex
	in, out stream
	frames  []frame
	// response is closed when the head of an HTTP response has passed,
	// whichever way.
	response chan struct{}
	// framesWithResponse: bytes of frames came in the same read as the
	// end of the response's head (so the relay passed them on together).
	framesWithResponse bool
}

func newSniffer() *sniffer { return &sniffer{response: make(chan struct{})} }

// stream parses one direction: an HTTP head, then frames.
type stream struct {
	head     []byte // the HTTP request or response, up to its blank line
	headDone bool
	hdr      []byte // the frame header being gathered
	remain   int64  // payload bytes of the current frame still to come
	cur      frame
	mask     [4]byte
	masked   bool
	pos      int64 // payload bytes of the current frame seen so far
	total    int64 // all bytes seen
}

func (s *sniffer) feed(out bool, p []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := &s.in
	if out {
		st = &s.out
	}
	st.total += int64(len(p))
	for len(p) > 0 {
		if !st.headDone {
			st.head = append(st.head, p...)
			i := bytes.Index(st.head, []byte("\r\n\r\n"))
			if i < 0 {
				return
			}
			p = st.head[i+4:]
			st.head = st.head[: i+4 : i+4]
			st.headDone = true
			if bytes.HasPrefix(st.head, []byte("HTTP/")) {
				s.framesWithResponse = len(p) > 0
				select {
				case <-s.response:
				default:
					close(s.response)
				}
			}
			continue
		}
		if st.remain > 0 {
			n := int64(len(p))
			if n > st.remain {
				n = st.remain
			}
			// Control payloads are at most 125 B (RFC 6455 §5.5); bytes
			// that are not frames at all (HTTP after HTTP) may claim more.
			if st.cur.opcode >= 8 && st.pos < 125 {
				for _, b := range p[:min(n, 125-st.pos)] {
					if st.masked {
						b ^= st.mask[st.pos%4]
					}
					st.cur.payload = append(st.cur.payload, b)
					st.pos++
				}
			}
			st.remain -= n
			p = p[n:]
			if st.remain == 0 {
				s.record(st)
			}
			continue
		}
		st.hdr = append(st.hdr, p[0])
		p = p[1:]
		if need := headerLen(st.hdr); need < 0 || len(st.hdr) < need {
			continue
		}
		h := st.hdr
		st.cur = frame{out: out, fin: h[0]&0x80 != 0, rsv1: h[0]&0x40 != 0, opcode: h[0] & 0x0f}
		st.masked = h[1]&0x80 != 0
		st.cur.lengthCode, st.cur.masked = h[1]&0x7f, st.masked
		n, rest := int64(h[1]&0x7f), h[2:]
		switch n {
		case 126:
			n, rest = int64(binary.BigEndian.Uint16(rest)), rest[2:]
		case 127:
			n, rest = int64(binary.BigEndian.Uint64(rest)), rest[8:]
		}
		if st.masked {
			copy(st.mask[:], rest)
		}
		st.cur.length, st.remain, st.pos = n, n, 0
		st.hdr = st.hdr[:0]
		if n == 0 {
			s.record(st)
		}
	}
}

// headerLen is the length of the frame header that starts h, or -1 if h is
// too short to tell.
func headerLen(h []byte) int {
	if len(h) < 2 {
		return -1
	}
	n := 2
	switch h[1] & 0x7f {
	case 126:
		n += 2
	case 127:
		n += 8
	}
	if h[1]&0x80 != 0 {
		n += 4
	}
	return n
}

func (s *sniffer) record(st *stream) {
	if len(s.frames) < maxFrames {
		s.frames = append(s.frames, st.cur)
	}
	if st.cur.out {
		// ws13 sent the request when it is the client.
		client := bytes.HasPrefix(s.out.head, []byte("GET "))
		framing.check(st.cur, client)
	}
}

// framing collects the frames of ws13 that break the framing rules every
// frame must keep, whatever the feature: the shortest length encoding
// (RFC 6455 §5.2) and masking by the client alone (§5.1). runPeer fails
// the feature during which one was sent.
var framing = &framingLog{}

type framingLog struct {
	mu     sync.Mutex
	count  int
	first  string // the first violation since the last take
	latest int    // count at the last take
}

func (g *framingLog) check(f frame, client bool) {
	var why string
	switch {
	case f.lengthCode != minimalLengthCode(f.length):
		why = fmt.Sprintf("a frame of %d B (opcode %d) with length code %d", f.length, f.opcode, f.lengthCode)
	case f.masked != client:
		why = fmt.Sprintf("a frame (opcode %d) masked: %v, from the %s", f.opcode, f.masked, map[bool]string{true: "client", false: "server"}[client])
	default:
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	g.count++
	if g.first == "" {
		g.first = why
	}
}

// take returns how many violations there were since the last take, and
// the first of them.
func (g *framingLog) take() (int, string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	n, first := g.count-g.latest, g.first
	g.latest, g.first = g.count, ""
	return n, first
}

// mark returns a position in the frame log, for since.
func (s *sniffer) mark() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.frames)
}

// since returns the frames logged after mark that match keep.
func (s *sniffer) since(mark int, keep func(frame) bool) []frame {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []frame
	for _, f := range s.frames[mark:] {
		if keep(f) {
			out = append(out, f)
		}
	}
	return out
}

// responseWait bounds how long responseHead waits for the response to pass:
// ws13's server has written it when Accept returns, but the relay may not
// have copied it yet.
const responseWait = 5 * time.Second

// responseHead is the HTTP response of the handshake, whichever side sent
// it, or "" if none passed within responseWait.
func (s *sniffer) responseHead() string {
	select {
	case <-s.response:
	case <-time.After(responseWait):
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if bytes.HasPrefix(s.in.head, []byte("HTTP/")) {
		return string(s.in.head)
	}
	return string(s.out.head)
}

// responseExtensions is the response's Sec-WebSocket-Extensions value.
func (s *sniffer) responseExtensions() string {
	var vals []string
	for _, line := range strings.Split(s.responseHead(), "\r\n") {
		name, value, ok := strings.Cut(line, ":")
		if ok && strings.EqualFold(strings.TrimSpace(name), "Sec-WebSocket-Extensions") {
			vals = append(vals, strings.TrimSpace(value))
		}
	}
	return strings.Join(vals, ", ")
}
