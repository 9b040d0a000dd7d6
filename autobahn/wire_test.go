package autobahn

import (
	"bufio"
	"bytes"
	"net"
	"testing"
	"time"

	websocket "github.com/ws13/websocket"
)

// capture runs case id with the runner as server (unmasked, so the bytes
// are deterministic) over net.Pipe and returns its writes until enough
// says so; each Read on a pipe returns at most one Write.
func capture(t *testing.T, id string, enough func(writes [][]byte) bool) [][]byte {
	t.Helper()
	a, b := net.Pipe()
	c := CaseByID(id)
	r := newRun(c)
	r.store = newDataStore("")
	s := newSession(a, bufio.NewReader(a), true)
	s.h = r
	r.s = s
	s.deadline = time.Now().Add(5 * time.Second)
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.run(func() { c.open(r) })
	}()
	var out [][]byte
	buf := make([]byte, 1<<20)
	b.SetReadDeadline(time.Now().Add(3 * time.Second))
	for !enough(out) {
		n, err := b.Read(buf)
		if err != nil {
			t.Fatalf("case %s: after %d writes: %v", id, len(out), err)
		}
		out = append(out, append([]byte(nil), buf[:n]...))
	}
	b.Close()
	<-done
	return out
}

func atLeast(n int) func([][]byte) bool { return func(w [][]byte) bool { return len(w) >= n } }

// frames splits a byte stream into frame headers and payloads; a partial
// frame at the end is left out.
func frames(stream []byte) (hs []websocket.Header, ps [][]byte) {
	for {
		h, n, err := websocket.ParseHeader(stream)
		if err != nil || len(stream) < n+int(h.Length) {
			return hs, ps
		}
		hs = append(hs, h)
		ps = append(ps, stream[n:n+int(h.Length)])
		stream = stream[n+int(h.Length):]
	}
}

// 2.6: a ping written one octet per write.
func TestWireChoppedPing(t *testing.T) {
	t.Parallel()
	w := capture(t, "2.6", atLeast(127))
	for i, p := range w {
		if len(p) != 1 {
			t.Fatalf("write %d has %d octets, want 1", i, len(p))
		}
	}
	if w[0][0] != 0x89 || w[1][0] != 125 {
		t.Errorf("header %x %x, want 89 7d", w[0][0], w[1][0])
	}
}

// 3.3: each frame a write of its own, RSV = 3 on the second.
func TestWireSyncFrames(t *testing.T) {
	t.Parallel()
	w := capture(t, "3.3", atLeast(3))
	want := [][]byte{
		append([]byte{0x81, 13}, "Hello, world!"...),
		append([]byte{0xB1, 13}, "Hello, world!"...), // FIN, RSV2|RSV3, text
		{0x89, 0},
	}
	for i := range want {
		if !bytes.Equal(w[i], want[i]) {
			t.Errorf("write %d = %x, want %x", i, w[i], want[i])
		}
	}
}

// 6.2.3: frames of one octet, then the empty final frame the official
// fragmentation loop adds when the length is a multiple of the size.
func TestWireFragmentsOfOne(t *testing.T) {
	t.Parallel()
	const text = "Hello-\xc2\xb5@\xc3\x9f\xc3\xb6\xc3\xa4\xc3\xbc\xc3\xa0\xc3\xa1-UTF-8!!"
	w := capture(t, "6.2.3", func(w [][]byte) bool {
		hs, _ := frames(bytes.Join(w, nil))
		return len(hs) > len(text)
	})
	hs, ps := frames(bytes.Join(w, nil))
	var msg []byte
	for i, h := range hs[:len(text)] {
		wantOp := websocket.OpContinuation
		if i == 0 {
			wantOp = websocket.OpText
		}
		if h.Fin || h.Opcode != wantOp || h.Length != 1 {
			t.Errorf("frame %d: %+v", i, h)
		}
		msg = append(msg, ps[i]...)
	}
	if last := hs[len(text)]; !last.Fin || last.Opcode != websocket.OpContinuation || last.Length != 0 {
		t.Errorf("final frame %+v, want an empty FIN continuation", last)
	}
	if string(msg) != text {
		t.Errorf("payload %q", msg)
	}
}

// 9.1.1: the seed repeated to 64 KiB in one frame.
func TestWireRepeatedPayload(t *testing.T) {
	t.Parallel()
	w := capture(t, "9.1.1", func(w [][]byte) bool {
		hs, _ := frames(bytes.Join(w, nil))
		return len(hs) > 0
	})
	hs, ps := frames(bytes.Join(w, nil))
	if hs[0].Length != 64<<10 || !bytes.HasPrefix(ps[0], []byte("BAsd7&jh23BAsd7&jh23")) || ps[0][len(ps[0])-1] != "BAsd7&jh23"[(64<<10-1)%10] {
		t.Errorf("frame %+v", hs[0])
	}
}
