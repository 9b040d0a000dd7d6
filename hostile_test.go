package websocket

// The hostile-input suite (SECURITY.md): frames, lengths, text and
// compressed data that a peer may send to break an endpoint, and peers that
// misbehave in time (never read, never answer, vanish, trickle). Each test
// plays the peer by hand on a loopback TCP connection, in the server role
// and the client role where the rule applies to both, and checks that the
// input gets the close code of RFC 6455 §7.4.1, a Go error naming the rule,
// bounded time and memory, and that no goroutine is left behind.
//
// Rules that conn_test.go, client_test.go and compress_conn_test.go already
// test in one role are tested here in the other role only; SECURITY.md maps
// every item to its test.

import (
	"bufio"
	"bytes"
	"compress/flate"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc64"
	"io"
	"math"
	"net"
	"os"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// checkLeaks makes the test fail if a goroutine started during it is still
// running once it ends (every other cleanup has run by then: call it first).
func checkLeaks(t *testing.T) {
	t.Helper()
	before := goroutineStacks()
	t.Cleanup(func() {
		var leaked []string
		for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
			leaked = leaked[:0]
			for id, stack := range goroutineStacks() {
				if _, ok := before[id]; !ok {
					leaked = append(leaked, stack)
				}
			}
			if len(leaked) == 0 || time.Now().After(deadline) {
				break
			}
		}
		if len(leaked) > 0 {
			t.Errorf("%d goroutines outlived the test:\n\n%s", len(leaked), strings.Join(leaked, "\n\n"))
		}
	})
}

// goroutineStacks returns the stack of every goroutine, by goroutine id.
func goroutineStacks() map[string]string {
	buf := make([]byte, 64<<10)
	for i := 0; i < 12; i++ {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	stacks := make(map[string]string)
	for _, g := range strings.Split(string(buf), "\n\n") {
		header, _, _ := strings.Cut(g, "\n")
		if f := strings.Fields(header); len(f) >= 2 && f[0] == "goroutine" {
			stacks[f[1]] = g
		}
	}
	return stacks
}

// loopback returns the two ends of a TCP connection on 127.0.0.1.
func loopback(t testing.TB) (ours, theirs net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		nc, _ := ln.Accept()
		accepted <- nc
	}()
	ours, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	theirs = <-accepted
	if theirs == nil {
		ours.Close()
		t.Fatal("accept failed")
	}
	t.Cleanup(func() {
		ours.Close()
		theirs.Close()
	})
	return ours, theirs
}

// hostileConn returns our Conn, in the server role or the client role, on
// one end of a loopback connection, and the hand-driven peer on the other.
// The handshake is skipped: Accept and Dial end in newConn, and frames are
// all that is tested here.
func hostileConn(t *testing.T, isServer bool, opts ...func(*connConfig)) (*Conn, *rawPeer) {
	t.Helper()
	ours, theirs := loopback(t)
	cfg := connConfig{isServer: isServer, closeTimeout: 2 * time.Second}
	for _, o := range opts {
		o(&cfg)
	}
	c := newConn(ours, nil, cfg)
	t.Cleanup(func() { c.CloseNow() })
	theirs.SetDeadline(time.Now().Add(20 * time.Second))
	return c, &rawPeer{t: t, conn: theirs, br: bufio.NewReader(theirs), isClient: isServer}
}

func withReadLimit(n int64) func(*connConfig) {
	return func(cfg *connConfig) { cfg.readLimit = n }
}

// withDeflate is a negotiated permessage-deflate with 15-bit windows, with
// or without context takeover in both directions.
func withDeflate(takeover bool) func(*connConfig) {
	return func(cfg *connConfig) {
		cfg.deflate = &deflateParams{
			serverNoContextTakeover: !takeover,
			clientNoContextTakeover: !takeover,
			serverMaxWindowBits:     15,
			clientMaxWindowBits:     15,
		}
		mode := CompressionNoContextTakeover
		if takeover {
			mode = CompressionContextTakeover
		}
		cfg.compression = &CompressionOptions{Mode: mode}
	}
}

func roleName(isServer bool) string {
	if isServer {
		return "server"
	}
	return "client"
}

// peerFrame is the wire form of a frame sent by p: masked if p plays the
// client. The length is that of payload unless h.Length is set.
func peerFrame(p *rawPeer, h Header, payload []byte) []byte {
	body := append([]byte(nil), payload...)
	if h.Length == 0 {
		h.Length = int64(len(body))
	}
	if p.isClient {
		h.Masked, h.Mask = true, [4]byte{0x37, 0xfa, 0x21, 0x3d}
		Mask(h.Mask, 0, body)
	}
	return append(AppendHeader(nil, h), body...)
}

// oddFrame builds a frame header by hand, for length encodings that
// AppendHeader never writes: b0 holds FIN, RSV and the opcode, lenField the
// 7-bit length and its extension (the mask bit is added for a client peer).
func oddFrame(p *rawPeer, b0 byte, lenField []byte, payload []byte) []byte {
	out := append([]byte{b0}, lenField...)
	body := append([]byte(nil), payload...)
	if p.isClient {
		out[1] |= 0x80
		key := [4]byte{0x11, 0x22, 0x33, 0x44}
		out = append(out, key[:]...)
		Mask(key, 0, body)
	}
	return append(out, body...)
}

// peerReadClose reads what our side sends until a close frame and returns
// its code and reason; ok is false if the connection ended first.
func peerReadClose(p *rawPeer) (code StatusCode, reason string, ok bool) {
	for i := 0; i < 1<<20; i++ {
		h, payload, ok := p.readFrame()
		if !ok {
			return 0, "", false
		}
		if h.Opcode != OpClose {
			continue
		}
		if len(payload) < 2 {
			return StatusNoStatusRcvd, "", true
		}
		return StatusCode(binary.BigEndian.Uint16(payload)), string(payload[2:]), true
	}
	return 0, "", false
}

// outcome is what happened when the peer sent its frames.
type outcome struct {
	code     StatusCode // the code of the close frame our side sent
	sawClose bool       // our side sent a close frame
	err      error      // what our Read returned
}

// provoke has our Conn read (until an error) while the peer sends wire, and returns our close
// frame and our Read's error. The peer closes the TCP connection once it has
// our close frame (or the connection ended), as a server would (§7.1.1).
func provoke(t *testing.T, c *Conn, p *rawPeer, wire ...[]byte) outcome {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	readErr := make(chan error, 1)
	go func() {
		// Whole messages before the violation are delivered; read on.
		for i := 0; ; i++ {
			if _, _, err := c.Read(ctx); err != nil || i > 1000 {
				readErr <- err
				return
			}
		}
	}()
	sent := make(chan struct{})
	go func() {
		defer close(sent)
		p.conn.Write(bytes.Join(wire, nil)) // fails once our side has closed: fine
	}()
	var o outcome
	o.code, _, o.sawClose = peerReadClose(p)
	p.conn.Close()
	o.err = <-readErr
	<-sent
	return o
}

// check fails the test unless our side failed the connection with code and
// its Read returned an error wrapping want with that code.
func (o outcome) check(t *testing.T, code StatusCode, want error) {
	t.Helper()
	if !o.sawClose || o.code != code {
		t.Errorf("close frame sent: %v (code %v), want code %v", o.sawClose, o.code, code)
	}
	if !errors.Is(o.err, want) || CloseStatus(o.err) != code {
		t.Errorf("Read error %v (status %v), want %v with status %v", o.err, CloseStatus(o.err), want, code)
	}
}

// both runs f as a subtest in each role.
func both(t *testing.T, f func(t *testing.T, isServer bool)) {
	for _, isServer := range []bool{true, false} {
		t.Run(roleName(isServer), func(t *testing.T) { f(t, isServer) })
	}
}

// bothParallel is both for tests that mostly wait on timers: the roles run
// side by side (with each other only: top-level tests stay sequential, so
// checkLeaks still sees only its own goroutines).
func bothParallel(t *testing.T, f func(t *testing.T, isServer bool)) {
	for _, isServer := range []bool{true, false} {
		t.Run(roleName(isServer), func(t *testing.T) {
			t.Parallel()
			f(t, isServer)
		})
	}
}

// ---------------------------------------------------------------------------
// Lengths (§5.2): the 64-bit length field, minimal encodings, the read limit.

var ones7 = []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}

func TestHostileLengths(t *testing.T) {
	checkLeaks(t)
	const limit = 4096
	tests := []struct {
		name  string
		wire  func(p *rawPeer) [][]byte
		code  StatusCode
		err   error
		roles []bool // nil: both
	}{
		{"64-bit length with the top bit set", func(p *rawPeer) [][]byte {
			return [][]byte{oddFrame(p, 0x82, []byte{127, 0x80, 0, 0, 0, 0, 0, 0, 0}, nil)}
		}, StatusProtocolError, ErrLengthTopBit, nil},
		{"64-bit length 2^64-1", func(p *rawPeer) [][]byte {
			return [][]byte{oddFrame(p, 0x82, append([]byte{127, 0xff}, ones7...), nil)}
		}, StatusProtocolError, ErrLengthTopBit, nil},
		{"64-bit length 2^63-1", func(p *rawPeer) [][]byte {
			return [][]byte{oddFrame(p, 0x82, append([]byte{127, 0x7f}, ones7...), []byte("x"))}
		}, StatusMessageTooBig, ErrMessageTooBig, nil},
		{"continuation of 2^63-1 bytes: the message length overflows int64", func(p *rawPeer) [][]byte {
			return [][]byte{
				peerFrame(p, Header{Opcode: OpBinary}, []byte("0123456789")),
				oddFrame(p, 0x80, append([]byte{127, 0x7f}, ones7...), []byte("x")),
			}
		}, StatusMessageTooBig, ErrMessageTooBig, nil},
		{"16-bit form for 0 bytes", func(p *rawPeer) [][]byte {
			return [][]byte{oddFrame(p, 0x82, []byte{126, 0, 0}, nil)}
		}, StatusProtocolError, ErrNonMinimalLength, nil},
		{"16-bit form for 125 bytes", func(p *rawPeer) [][]byte {
			return [][]byte{oddFrame(p, 0x82, []byte{126, 0, 125}, make([]byte, 125))}
		}, StatusProtocolError, ErrNonMinimalLength, nil},
		{"64-bit form for 126 bytes", func(p *rawPeer) [][]byte {
			return [][]byte{oddFrame(p, 0x82, []byte{127, 0, 0, 0, 0, 0, 0, 0, 126}, make([]byte, 126))}
		}, StatusProtocolError, ErrNonMinimalLength, nil},
		{"64-bit form for 65535 bytes", func(p *rawPeer) [][]byte {
			return [][]byte{oddFrame(p, 0x82, []byte{127, 0, 0, 0, 0, 0, 0, 0xff, 0xff}, nil)}
		}, StatusProtocolError, ErrNonMinimalLength, nil},
		{"64-bit form for 0 bytes on a ping", func(p *rawPeer) [][]byte {
			return [][]byte{oddFrame(p, 0x89, []byte{127, 0, 0, 0, 0, 0, 0, 0, 0}, nil)}
		}, StatusProtocolError, ErrNonMinimalLength, nil},
		{"ping declaring 2^62 bytes", func(p *rawPeer) [][]byte {
			return [][]byte{oddFrame(p, 0x89, []byte{127, 0x40, 0, 0, 0, 0, 0, 0, 0}, nil)}
		}, StatusProtocolError, ErrControlTooLong, nil},
		{"limit passed by one-byte fragments", func(p *rawPeer) [][]byte {
			frames := [][]byte{peerFrame(p, Header{Opcode: OpBinary}, []byte("x"))}
			for i := 0; i < limit+100; i++ {
				frames = append(frames, peerFrame(p, Header{Opcode: OpContinuation}, []byte("x")))
				if i%500 == 0 { // control frames in between change nothing
					frames = append(frames, peerFrame(p, Header{Fin: true, Opcode: OpPing}, []byte("p")))
				}
			}
			return frames
		}, StatusMessageTooBig, ErrMessageTooBig, nil},
		{"limit passed by 3000 text fragments of two-byte characters", func(p *rawPeer) [][]byte {
			frames := [][]byte{peerFrame(p, Header{Opcode: OpText}, []byte("é"))}
			for i := 0; i < 3000; i++ {
				frames = append(frames, peerFrame(p, Header{Opcode: OpContinuation}, []byte("é")))
			}
			return frames
		}, StatusMessageTooBig, ErrMessageTooBig, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			both(t, func(t *testing.T, isServer bool) {
				c, p := hostileConn(t, isServer, withReadLimit(limit))
				provoke(t, c, p, tt.wire(p)...).check(t, tt.code, tt.err)
			})
		})
	}
}

// The same limit through the streaming reader: the message is refused as
// it passes the limit, not once it is whole.
func TestHostileLimitThroughReader(t *testing.T) {
	checkLeaks(t)
	const limit = 4096
	both(t, func(t *testing.T, isServer bool) {
		c, p := hostileConn(t, isServer, withReadLimit(limit))
		go func() {
			var wire []byte
			wire = append(wire, peerFrame(p, Header{Opcode: OpBinary}, make([]byte, 100))...)
			for i := 0; i < 2*limit/100; i++ {
				wire = append(wire, peerFrame(p, Header{Opcode: OpContinuation}, make([]byte, 100))...)
			}
			p.conn.Write(wire)
		}()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, r, err := c.Reader(ctx)
		if err != nil {
			t.Fatal(err)
		}
		closed := make(chan StatusCode, 1)
		go func() {
			code, _, _ := peerReadClose(p)
			p.conn.Close()
			closed <- code
		}()
		n, err := io.Copy(io.Discard, r)
		if !errors.Is(err, ErrMessageTooBig) || CloseStatus(err) != StatusMessageTooBig {
			t.Errorf("reading the stream: %v", err)
		}
		if n > limit {
			t.Errorf("%d bytes delivered past a limit of %d", n, limit)
		}
		if code := <-closed; code != StatusMessageTooBig {
			t.Errorf("close code %v", code)
		}
	})
}

// A server that fails the connection while the client is still sending
// must not close its socket with bytes unread: the kernel would answer with
// a reset, and a reset may make the client's kernel drop the close frame
// before the client reads it (Chromium then reported 1006, not 1009). The
// server ends its side with a FIN behind the close frame and reads on until
// the client closes.
func TestHostileServerFailureEndsWithFIN(t *testing.T) {
	checkLeaks(t)
	const limit = 4096
	c, p := hostileConn(t, true, withReadLimit(limit))
	// Far over the limit and over any read buffer: most of it is still in
	// the server's socket when the header fails the connection.
	wire := peerFrame(p, Header{Fin: true, Opcode: OpBinary}, make([]byte, 16<<20))
	wrote := make(chan error, 1)
	go func() {
		_, err := p.conn.Write(wire)
		wrote <- err
	}()
	readErr := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, _, err := c.Read(ctx)
		readErr <- err
	}()
	if code := p.expectClose(); code != StatusMessageTooBig {
		t.Errorf("close code %v, want 1009", code)
	}
	// After the close frame, the server's FIN: not a reset.
	if _, err := io.Copy(io.Discard, p.br); err != nil {
		t.Errorf("after the close frame: %v, want the end of the stream", err)
	}
	if err := <-wrote; err != nil {
		t.Errorf("the client's message was not taken in whole: %v", err)
	}
	p.conn.Close()
	if err := <-readErr; CloseStatus(err) != StatusMessageTooBig {
		t.Errorf("Read: %v", err)
	}
}

// A frame declaring a large length, a byte of it, then the end of the
// stream: the read ends with 1006 (no close frame, §7.1.5), it does not wait.
func TestHostileDeclaredLengthThenEOF(t *testing.T) {
	checkLeaks(t)
	both(t, func(t *testing.T, isServer bool) {
		c, p := hostileConn(t, isServer, withReadLimit(16<<20))
		p.conn.Write(peerFrame(p, Header{Fin: true, Opcode: OpBinary, Length: 12 << 20}, []byte("x"))[:hdrPlusOne(p)])
		p.conn.(*net.TCPConn).CloseWrite()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, _, err := c.Read(ctx)
		if CloseStatus(err) != StatusAbnormal || !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Errorf("Read error %v (status %v), want 1006 wrapping io.ErrUnexpectedEOF", err, CloseStatus(err))
		}
		if _, _, ok := peerReadClose(p); ok {
			t.Error("a close frame was sent on a broken stream")
		}
	})
}

// hdrPlusOne is the size of a 64-bit-length header from p plus one byte.
func hdrPlusOne(p *rawPeer) int {
	if p.isClient {
		return 2 + 8 + 4 + 1
	}
	return 2 + 8 + 1
}

// readAllocs runs read and returns the bytes allocated meanwhile, by the
// whole process (the peer's writes included, which are small here).
func readAllocs(read func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	read()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// Memory follows the bytes that arrive, not the length a header declares:
// otherwise 14 bytes make a server allocate its whole read limit, on every
// connection at once.
func TestHostileDeclaredLengthMemory(t *testing.T) {
	if raceEnabled {
		t.Skip("memory figures mean nothing under the race detector")
	}

	checkLeaks(t)
	both(t, func(t *testing.T, isServer bool) {
		c, p := hostileConn(t, isServer, withReadLimit(64<<20))
		wire := peerFrame(p, Header{Fin: true, Opcode: OpBinary, Length: 48 << 20}, []byte("x"))
		p.conn.Write(wire[:hdrPlusOne(p)])
		allocated := readAllocs(func() {
			go func() {
				time.Sleep(100 * time.Millisecond)
				p.conn.Close()
			}()
			c.Read(context.Background())
		})
		if allocated > 4<<20 {
			t.Errorf("%d MiB allocated for one byte received (declared 48 MiB)", allocated>>20)
		}
	})
}

// A message of many small fragments, read with Read, costs memory in
// proportion to its size: each growth of the buffer copies all that came
// before, so growing it by what one fragment brings would cost its square.
func TestManySmallFramesGrowLinearly(t *testing.T) {
	if raceEnabled {
		t.Skip("memory figures mean nothing under the race detector")
	}
	const size, fragment = 1 << 20, 64
	both(t, func(t *testing.T, isServer bool) {
		c, p := hostileConn(t, isServer, withReadLimit(2*size))
		var wire []byte
		for off := 0; off < size; off += fragment {
			op := OpBinary
			if off > 0 {
				op = OpContinuation
			}
			wire = append(wire, peerFrame(p, Header{Fin: off+fragment == size, Opcode: op}, make([]byte, fragment))...)
		}
		go p.conn.Write(wire)
		var got []byte
		var err error
		allocated := readAllocs(func() { _, got, err = c.Read(context.Background()) })
		if err != nil || len(got) != size {
			t.Fatalf("Read: %d bytes, %v", len(got), err)
		}
		if allocated > 8*size {
			t.Errorf("%d MiB allocated to read a 1 MiB message of 64-byte fragments", allocated>>20)
		}
	})
}

// With the limit lifted (SetReadLimit(math.MaxInt64)), a hostile length must
// still not crash the process.
func TestHostileNoReadLimit(t *testing.T) {
	checkLeaks(t)
	both(t, func(t *testing.T, isServer bool) {
		c, p := hostileConn(t, isServer)
		c.SetReadLimit(math.MaxInt64)
		p.conn.Write(oddFrame(p, 0x82, []byte{127, 0x40, 0, 0, 0, 0, 0, 0, 0}, []byte("x")))
		p.conn.(*net.TCPConn).CloseWrite()
		var err error
		func() {
			defer func() {
				if v := recover(); v != nil {
					t.Errorf("Read panicked: %v", v)
				}
			}()
			_, _, err = c.Read(context.Background())
		}()
		if CloseStatus(err) != StatusAbnormal {
			t.Errorf("Read error %v", err)
		}
	})
}

// ---------------------------------------------------------------------------
// Frames (§5.2, §5.4, §5.5): the rules conn_test.go (server) and
// client_test.go (client) do not already test in a given role.

func TestHostileFrames(t *testing.T) {
	checkLeaks(t)
	type frame struct {
		h    Header
		body string
	}
	type frameCase struct {
		name           string
		server, client bool // the roles tested here
		flipMask       bool // the peer masks when it must not, or the reverse
		frames         []frame
		code           StatusCode
		err            error
	}
	var tests []frameCase
	for op := Opcode(3); op <= 0xF; op++ {
		if !op.IsReserved() {
			continue
		}
		tests = append(tests, frameCase{
			name:   fmt.Sprintf("reserved opcode %#x", int(op)),
			server: op != 3 && op != 0xB, client: op != 7,
			frames: []frame{{Header{Fin: true, Opcode: op}, "x"}},
			code:   StatusProtocolError, err: ErrReservedOpcode,
		})
	}
	tests = append(tests, []frameCase{
		{name: "reserved opcode inside a fragmented message", server: true, client: true,
			frames: []frame{{Header{Opcode: OpText}, "a"}, {Header{Fin: true, Opcode: 0x5}, "b"}}, code: StatusProtocolError, err: ErrReservedOpcode},
		{name: "RSV2 on text", client: true, frames: []frame{{Header{Fin: true, Rsv: Rsv2, Opcode: OpText}, "x"}}, code: StatusProtocolError, err: ErrReservedBits},
		{name: "RSV3 on binary", client: true, frames: []frame{{Header{Fin: true, Rsv: Rsv3, Opcode: OpBinary}, "x"}}, code: StatusProtocolError, err: ErrReservedBits},
		{name: "all RSV bits on close", server: true, client: true, frames: []frame{{Header{Fin: true, Rsv: 7, Opcode: OpClose}, ""}}, code: StatusProtocolError, err: ErrReservedBits},
		{name: "RSV2 on a continuation", server: true, client: true,
			frames: []frame{{Header{Opcode: OpText}, "a"}, {Header{Fin: true, Rsv: Rsv2, Opcode: OpContinuation}, "b"}}, code: StatusProtocolError, err: ErrReservedBits},
		{name: "RSV1 on a pong", server: true, client: true, frames: []frame{{Header{Fin: true, Rsv: Rsv1, Opcode: OpPong}, ""}}, code: StatusProtocolError, err: ErrReservedBits},
		{name: "ping of 126 bytes", client: true, frames: []frame{{Header{Fin: true, Opcode: OpPing}, strings.Repeat("p", 126)}}, code: StatusProtocolError, err: ErrControlTooLong},
		{name: "pong of 126 bytes", server: true, client: true, frames: []frame{{Header{Fin: true, Opcode: OpPong}, strings.Repeat("p", 126)}}, code: StatusProtocolError, err: ErrControlTooLong},
		{name: "close of 126 bytes", server: true, client: true, frames: []frame{{Header{Fin: true, Opcode: OpClose}, "\x03\xe8" + strings.Repeat("r", 124)}}, code: StatusProtocolError, err: ErrControlTooLong},
		{name: "close declaring 64 KiB", server: true, client: true, frames: []frame{{Header{Fin: true, Opcode: OpClose, Length: 1 << 16}, "\x03\xe8"}}, code: StatusProtocolError, err: ErrControlTooLong},
		{name: "fragmented ping", client: true, frames: []frame{{Header{Opcode: OpPing}, "x"}}, code: StatusProtocolError, err: ErrFragmentedControl},
		{name: "fragmented pong", server: true, client: true, frames: []frame{{Header{Opcode: OpPong}, "x"}}, code: StatusProtocolError, err: ErrFragmentedControl},
		{name: "fragmented close", server: true, client: true, frames: []frame{{Header{Opcode: OpClose}, "\x03"}, {Header{Fin: true, Opcode: OpContinuation}, "\xe8"}}, code: StatusProtocolError, err: ErrFragmentedControl},
		{name: "fragmented ping inside a fragmented message", server: true, client: true,
			frames: []frame{{Header{Opcode: OpText}, "a"}, {Header{Opcode: OpPing}, "p"}}, code: StatusProtocolError, err: ErrFragmentedControl},
		{name: "continuation first", client: true, frames: []frame{{Header{Fin: true, Opcode: OpContinuation}, "x"}}, code: StatusProtocolError, err: ErrUnexpectedContinuation},
		{name: "continuation after a whole message", server: true, client: true,
			frames: []frame{{Header{Fin: true, Opcode: OpText}, "done"}, {Header{Fin: true, Opcode: OpContinuation}, "more"}}, code: StatusProtocolError, err: ErrUnexpectedContinuation},
		{name: "new message inside a fragmented one", client: true,
			frames: []frame{{Header{Opcode: OpText}, "a"}, {Header{Fin: true, Opcode: OpText}, "b"}}, code: StatusProtocolError, err: ErrExpectedContinuation},
		{name: "binary inside fragmented text, after a ping", server: true, client: true,
			frames: []frame{{Header{Opcode: OpText}, "a"}, {Header{Fin: true, Opcode: OpPing}, ""}, {Header{Fin: true, Opcode: OpBinary}, "b"}}, code: StatusProtocolError, err: ErrExpectedContinuation},
		{name: "unmasked close from a client", server: true, flipMask: true,
			frames: []frame{{Header{Fin: true, Opcode: OpClose}, "\x03\xe8"}}, code: StatusProtocolError, err: ErrUnmaskedClientFrame},
		{name: "masked ping from a server", client: true, flipMask: true,
			frames: []frame{{Header{Fin: true, Opcode: OpPing}, "p"}}, code: StatusProtocolError, err: ErrMaskedServerFrame},
	}...)
	for _, tt := range tests {
		for _, isServer := range []bool{true, false} {
			if isServer && !tt.server || !isServer && !tt.client {
				continue // tested in conn_test.go or client_test.go
			}
			t.Run(tt.name+"/"+roleName(isServer), func(t *testing.T) {
				c, p := hostileConn(t, isServer)
				var wire [][]byte
				p.isClient = isServer != tt.flipMask
				for _, f := range tt.frames {
					wire = append(wire, peerFrame(p, f.h, []byte(f.body)))
				}
				p.isClient = isServer
				provoke(t, c, p, wire...).check(t, tt.code, tt.err)
			})
		}
	}
}

// ---------------------------------------------------------------------------
// Text (§8.1, §5.5.1): invalid UTF-8 of every class, wherever it falls.

// invalidUTF8 holds one sample of each way a byte sequence fails to be UTF-8.
var invalidUTF8 = []struct{ name, s string }{
	{"overlong NUL", "\xC0\x80"},
	{"overlong 2-byte (C1 lead)", "\xC1\xBF"},
	{"overlong 3-byte", "\xE0\x9F\xBF"},
	{"overlong 4-byte", "\xF0\x8F\xBF\xBF"},
	{"high surrogate", "\xED\xA0\x80"},
	{"low surrogate", "\xED\xBF\xBF"},
	{"surrogate pair (CESU-8)", "\xED\xA0\xBD\xED\xB8\x80"},
	{"above U+10FFFF", "\xF4\x90\x80\x80"},
	{"F5 lead", "\xF5\x80\x80\x80"},
	{"5-byte form", "\xF8\x88\x80\x80\x80"},
	{"FE", "\xFE"},
	{"FF", "\xFF"},
	{"lone continuation", "\x80"},
	{"continuation after a whole character", "é\xA9"},
	{"truncated 2-byte then ASCII", "\xC3a"},
	{"truncated 3-byte then ASCII", "\xE2\x82a"},
	{"truncated 4-byte then ASCII", "\xF0\x9F\x98a"},
	{"truncated 2-byte at the end", "ab\xC3"},
	{"truncated 3-byte at the end", "ab\xE2\x82"},
	{"truncated 4-byte at the end", "ab\xF0\x9F\x98"},
}

// A text message with each class, in one frame, and cut into two fragments
// at every byte (the fragment edge inside or beside the bad sequence), and
// in one-byte fragments: 1007 every time, in both roles.
func TestHostileInvalidUTF8(t *testing.T) {
	checkLeaks(t)
	for _, tc := range invalidUTF8 {
		if utf8.ValidString(tc.s) {
			t.Fatalf("%s: %q is valid", tc.name, tc.s)
		}
		t.Run(tc.name, func(t *testing.T) {
			both(t, func(t *testing.T, isServer bool) {
				msg := "κόσμε" + tc.s
				shapes := [][]string{{msg}}
				for cut := len("κόσμε") - 1; cut < len(msg); cut++ {
					shapes = append(shapes, []string{msg[:cut], msg[cut:]})
				}
				shapes = append(shapes, strings.Split(msg, ""))
				for i, shape := range shapes {
					_, code, err := scriptedRead(isServer, 1<<20, textFragments(isServer, shape))
					if code != StatusInvalidPayload || !errors.Is(err, ErrInvalidUTF8) {
						t.Errorf("shape %d %q: close %v, Read %v", i, shape, code, err)
					}
				}
				// And once over a socket, in two fragments.
				c, p := hostileConn(t, isServer)
				cut := len(msg) - 1
				provoke(t, c, p,
					peerFrame(p, Header{Opcode: OpText}, []byte(msg[:cut])),
					peerFrame(p, Header{Fin: true, Opcode: OpContinuation}, []byte(msg[cut:])),
				).check(t, StatusInvalidPayload, ErrInvalidUTF8)
			})
		})
	}
}

// Valid text cut at every byte, and in one-byte fragments, is accepted
// whole: the check above is not merely refusing fragmented text.
func TestHostileValidUTF8AtFragmentEdges(t *testing.T) {
	msg := "aé€𝄞\U0010FFFF\uFFFDz"
	both(t, func(t *testing.T, isServer bool) {
		shapes := [][]string{strings.Split(msg, "")}
		for cut := 0; cut <= len(msg); cut++ {
			shapes = append(shapes, []string{msg[:cut], msg[cut:]})
		}
		for _, shape := range shapes {
			got, _, err := scriptedRead(isServer, 1<<20, textFragments(isServer, shape))
			if err != nil || string(got) != msg {
				t.Errorf("%q: got %q, %v", shape, got, err)
			}
		}
	})
}

// An invalid byte in the first fragment fails the connection at once,
// without waiting for a final fragment that never comes (§8.1, fail fast).
func TestHostileInvalidUTF8FailsFast(t *testing.T) {
	checkLeaks(t)
	both(t, func(t *testing.T, isServer bool) {
		c, p := hostileConn(t, isServer)
		// provoke keeps the connection open until our close frame arrives.
		provoke(t, c, p, peerFrame(p, Header{Opcode: OpText}, []byte("ok \xED\xA0\x80 and the rest never comes"))).
			check(t, StatusInvalidPayload, ErrInvalidUTF8)
	})
}

// In a compressed message too, an invalid byte fails the connection without
// waiting for the final fragment, once compress/flate gives the byte out:
// at a flush point (the empty stored block of a sender's sync flush) or
// when its 32 KiB window fills (§8.1, RFC 7692 §7.2.1). It keeps a
// non-final block's output until then: a fragment that only ends a block,
// with no flush, is checked when more comes or the read ends.
func TestHostileCompressedInvalidUTF8FailsFast(t *testing.T) {
	checkLeaks(t)
	const bad = "ok \xED\xA0\x80 "
	syncFlushed := func(t *testing.T, parts ...[]byte) []byte {
		var b bytes.Buffer
		fw, err := flate.NewWriter(&b, flate.BestSpeed)
		if err != nil {
			t.Fatal(err)
		}
		for _, part := range parts {
			fw.Write(part)
		}
		fw.Flush()
		return b.Bytes()
	}
	shapes := []struct {
		name  string
		first func(t *testing.T) []byte
	}{
		{"sync flush", func(t *testing.T) []byte {
			return syncFlushed(t, []byte(bad+"and the rest never comes"))
		}},
		{"a window of output, no flush", func(t *testing.T) []byte {
			// 96 KiB of text after the bad bytes, its flush marker cut
			// off: only the window filling gives the bytes out.
			wire := syncFlushed(t, []byte(bad), bytes.Repeat([]byte("abcdefghijklmnopqrstuvwxyz012345"), 3<<10))
			return wire[:len(wire)-4]
		}},
	}
	for _, shape := range shapes {
		for _, takeover := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/takeover=%v", shape.name, takeover), func(t *testing.T) {
				both(t, func(t *testing.T, isServer bool) {
					c, p := hostileConn(t, isServer, withDeflate(takeover))
					ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
					defer cancel()
					go p.conn.Write(peerFrame(p, Header{Rsv: Rsv1, Opcode: OpText}, shape.first(t)))
					closed := make(chan StatusCode, 1)
					go func() {
						code, _, _ := peerReadClose(p)
						p.conn.Close() // as a server does after the close frame (§7.1.1)
						closed <- code
					}()
					// ctx is the test's bound: were the check to wait for
					// the message's end, ctx would end the read first.
					_, _, err := c.Read(ctx)
					if !errors.Is(err, ErrInvalidUTF8) || CloseStatus(err) != StatusInvalidPayload || ctx.Err() != nil {
						t.Errorf("Read error %v (status %v, context %v), want 1007 before the context ends", err, CloseStatus(err), ctx.Err())
					}
					if code := <-closed; code != StatusInvalidPayload {
						t.Errorf("close code sent %v, want 1007", code)
					}
				})
			})
		}
	}
}

// A Reader's caller never gets the bytes that made a text message invalid:
// io.Copy writes what each Read returns before it looks at the error, and
// would otherwise pass the bad bytes on with the valid ones (§8.1).
func TestReaderHandsOverNoInvalidUTF8(t *testing.T) {
	both(t, func(t *testing.T, isServer bool) {
		wire := textFragments(isServer, []string{"héllo ", "wor\xffld", "never read"})
		c := newConn(&scriptedConn{r: bytes.NewReader(wire)}, nil, connConfig{isServer: isServer, readLimit: 1 << 20, closeTimeout: time.Second})
		defer c.CloseNow()
		_, r, err := c.Reader(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		var got bytes.Buffer
		_, err = io.Copy(&got, r)
		if !errors.Is(err, ErrInvalidUTF8) || CloseStatus(err) != StatusInvalidPayload {
			t.Fatalf("io.Copy: %v, want ErrInvalidUTF8 with 1007", err)
		}
		if !utf8.Valid(got.Bytes()) || !strings.HasPrefix("héllo wor", got.String()) {
			t.Fatalf("the caller got %q, want a valid prefix of %q", got.Bytes(), "héllo wor")
		}
	})
}

// textFragments is the wire form of a text message in the given fragments,
// as sent to a Conn in the server role (masked) or the client role.
func textFragments(toServer bool, fragments []string) []byte {
	p := &rawPeer{isClient: toServer}
	var wire []byte
	for i, f := range fragments {
		h := Header{Fin: i == len(fragments)-1, Opcode: OpContinuation}
		if i == 0 {
			h.Opcode = OpText
		}
		wire = append(wire, peerFrame(p, h, []byte(f))...)
	}
	return wire
}

// scriptedRead feeds wire to a fresh Conn without a socket and reads one
// message. It returns the message, the code of the close frame the Conn
// wrote (0 if none) and the Read error.
func scriptedRead(isServer bool, limit int64, wire []byte, opts ...func(*connConfig)) ([]byte, StatusCode, error) {
	nc := &scriptedConn{r: bytes.NewReader(wire)}
	cfg := connConfig{isServer: isServer, readLimit: limit, closeTimeout: time.Second}
	for _, o := range opts {
		o(&cfg)
	}
	c := newConn(nc, nil, cfg)
	defer c.CloseNow()
	_, msg, err := c.Read(context.Background())
	br := bufio.NewReader(bytes.NewReader(nc.written.Bytes()))
	for {
		h, err2 := ReadHeader(br)
		if err2 != nil {
			return msg, 0, err
		}
		payload := make([]byte, h.Length)
		if _, err2 := io.ReadFull(br, payload); err2 != nil {
			return msg, 0, err
		}
		Mask(h.Mask, 0, payload) // a no-op key when unmasked
		if h.Opcode == OpClose {
			if len(payload) < 2 {
				return msg, StatusNoStatusRcvd, err
			}
			return msg, StatusCode(binary.BigEndian.Uint16(payload)), err
		}
	}
}

// Close frames whose reason is not UTF-8 (each class), whose code may not
// be sent (§7.4), or whose body is one byte (§5.5.1).
func TestHostileCloseFrames(t *testing.T) {
	checkLeaks(t)
	type closeCase struct {
		name           string
		server, client bool
		body           []byte
		code           StatusCode
		err            error
	}
	var tests []closeCase
	for _, tc := range invalidUTF8 {
		tests = append(tests, closeCase{"reason: " + tc.name, tc.s != "\xFF", true,
			closeBody(StatusNormalClosure, tc.s), StatusInvalidPayload, ErrInvalidCloseReason})
	}
	for _, code := range []int{0, 1, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535} {
		covered := code == 999 || code == 1005 || code == 2999 || code == 5000
		body := binary.BigEndian.AppendUint16(nil, uint16(code))
		tests = append(tests, closeCase{fmt.Sprintf("code %d", code), !covered, true, body, StatusProtocolError, ErrInvalidCloseCode})
	}
	tests = append(tests, closeCase{"1-byte body", false, true, []byte{0x03}, StatusProtocolError, ErrCloseFrameTooShort})
	for _, tt := range tests {
		for _, isServer := range []bool{true, false} {
			if isServer && !tt.server || !isServer && !tt.client {
				continue // tested in conn_test.go
			}
			t.Run(tt.name+"/"+roleName(isServer), func(t *testing.T) {
				c, p := hostileConn(t, isServer)
				provoke(t, c, p, peerFrame(p, Header{Fin: true, Opcode: OpClose}, tt.body)).check(t, tt.code, tt.err)
			})
		}
	}
}

// Every code that may be sent is accepted and echoed, with a reason of the
// largest size and of every UTF-8 length: the checks above refuse only what
// they must.
func TestHostileValidCloseCodes(t *testing.T) {
	checkLeaks(t)
	reasons := []string{"", strings.Repeat("r", 123), "é€𝄞", strings.Repeat("€", 41)}
	both(t, func(t *testing.T, isServer bool) {
		for i, code := range []StatusCode{1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 3999, 4000, 4999} {
			reason := reasons[i%len(reasons)]
			c, p := hostileConn(t, isServer)
			o := provoke(t, c, p, peerFrame(p, Header{Fin: true, Opcode: OpClose}, closeBody(code, reason)))
			var ce *CloseError
			if !errors.As(o.err, &ce) || ce.Code != code || ce.Reason != reason {
				t.Errorf("code %d: Read error %v", code, o.err)
			}
			if !o.sawClose || o.code != code {
				t.Errorf("code %d: echoed %v %v", code, o.sawClose, o.code)
			}
		}
	})
}

// ---------------------------------------------------------------------------
// Compression (RFC 7692): bombs, corrupt streams, bits out of place.

func TestHostileDeflate(t *testing.T) {
	checkLeaks(t)
	const limit = 64 << 10
	bomb := deflateBomb(4 << 20) // 4 MiB of zeros in about 4 KiB: 64 times the limit
	type frame struct {
		h    Header
		body []byte
	}
	fragments := func(first Header, data []byte, n int) []frame {
		var out []frame
		size := (len(data) + n - 1) / n
		for i := 0; i < len(data); i += size {
			h := Header{Opcode: OpContinuation}
			if i == 0 {
				h = first
				h.Fin = false
			}
			h.Fin = i+size >= len(data)
			out = append(out, frame{h, data[i:min(i+size, len(data))]})
		}
		return out
	}
	var emptyBlocks []frame
	emptyBlocks = append(emptyBlocks, frame{Header{Rsv: Rsv1, Opcode: OpBinary}, []byte{0, 0, 0, 0xff, 0xff}})
	for i := 0; i < int(compressedWireLimit(limit))/5+10; i++ {
		emptyBlocks = append(emptyBlocks, frame{Header{Opcode: OpContinuation}, []byte{0, 0, 0, 0xff, 0xff}})
	}
	tests := []struct {
		name           string
		server, client bool
		frames         []frame
		code           StatusCode
		err            error
	}{
		{"bomb", false, true, []frame{{Header{Fin: true, Rsv: Rsv1, Opcode: OpBinary}, bomb}}, StatusMessageTooBig, ErrDeflateTooLarge},
		{"bomb in 1000 fragments", true, true, fragments(Header{Rsv: Rsv1, Opcode: OpBinary}, bomb, 1000), StatusMessageTooBig, ErrDeflateTooLarge},
		{"text bomb", true, true, []frame{{Header{Fin: true, Rsv: Rsv1, Opcode: OpText}, bomb}}, StatusMessageTooBig, ErrDeflateTooLarge},
		{"empty deflate blocks past the wire bound", true, true, emptyBlocks, StatusMessageTooBig, ErrMessageTooBig},
		{"reserved block type", true, true, []frame{{Header{Fin: true, Rsv: Rsv1, Opcode: OpBinary}, []byte{0x07}}}, StatusInvalidPayload, ErrDeflateCorrupt},
		{"stored block with a bad NLEN", true, true, []frame{{Header{Fin: true, Rsv: Rsv1, Opcode: OpBinary}, deflateHex("0x00 0x05 0x00 0x00 0x00 0x48 0x65")}}, StatusInvalidPayload, ErrDeflateCorrupt},
		{"distance before the start of the window", true, true, []frame{{Header{Fin: true, Rsv: Rsv1, Opcode: OpText}, deflateHex("0xf2 0x00 0x11 0x00 0x00")}}, StatusInvalidPayload, ErrDeflateCorrupt},
		{"corrupt in the second fragment", true, true, []frame{
			{Header{Rsv: Rsv1, Opcode: OpBinary}, []byte{0, 0, 0, 0xff, 0xff}},
			{Header{Fin: true, Opcode: OpContinuation}, []byte{0x07}},
		}, StatusInvalidPayload, ErrDeflateCorrupt},
		{"inflates to invalid UTF-8", false, true, []frame{{Header{Fin: true, Rsv: Rsv1, Opcode: OpText}, deflateRaw(t, []byte("ok \xF4\x90\x80\x80"))}}, StatusInvalidPayload, ErrInvalidUTF8},
		{"inflates to a truncated character", true, true, []frame{{Header{Fin: true, Rsv: Rsv1, Opcode: OpText}, deflateRaw(t, []byte("ok \xF0\x9F\x98"))}}, StatusInvalidPayload, ErrInvalidUTF8},
		{"RSV1 on a continuation", false, true, []frame{
			{Header{Rsv: Rsv1, Opcode: OpText}, []byte{0xf2, 0x48}},
			{Header{Fin: true, Rsv: Rsv1, Opcode: OpContinuation}, []byte{0xcd}},
		}, StatusProtocolError, ErrReservedBits},
		{"RSV1 on a ping", false, true, []frame{{Header{Fin: true, Rsv: Rsv1, Opcode: OpPing}, nil}}, StatusProtocolError, ErrReservedBits},
		{"RSV1 on a close", true, true, []frame{{Header{Fin: true, Rsv: Rsv1, Opcode: OpClose}, closeBody(1000, "")}}, StatusProtocolError, ErrReservedBits},
		{"RSV1 and RSV2", true, true, []frame{{Header{Fin: true, Rsv: Rsv1 | Rsv2, Opcode: OpText}, []byte{0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00}}}, StatusProtocolError, ErrReservedBits},
	}
	for _, tt := range tests {
		for _, takeover := range []bool{false, true} {
			for _, isServer := range []bool{true, false} {
				if isServer && !tt.server || !isServer && !tt.client {
					continue // tested in compress_conn_test.go
				}
				name := fmt.Sprintf("%s/%s/takeover=%v", tt.name, roleName(isServer), takeover)
				t.Run(name, func(t *testing.T) {
					c, p := hostileConn(t, isServer, withReadLimit(limit), withDeflate(takeover))
					var wire [][]byte
					for _, f := range tt.frames {
						wire = append(wire, peerFrame(p, f.h, f.body))
					}
					provoke(t, c, p, wire...).check(t, tt.code, tt.err)
				})
			}
		}
	}
}

// A compressed message may take up to twice the read limit plus 256
// bytes on the wire (SECURITY.md's defaults: room for encoders that flush
// often), however little it inflates to: a message of exactly that many
// bytes, mostly empty deflate blocks, is delivered, and one a byte longer
// fails the connection with 1009.
func TestCompressedMessageWireBoundIsTwiceTheLimitPlus256(t *testing.T) {
	checkLeaks(t)
	const limit = 4096
	const bound = 2*limit + 256
	tail := deflateRaw(t, []byte("hello"))
	// payload returns a deflate stream of exactly size bytes: empty stored
	// blocks, one stored block of up to 4 bytes of "x" to make up the
	// size, then "hello".
	payload := func(size int) (wire []byte, inflated string) {
		rest := size - 5 - len(tail)
		extra := rest % 5
		for range rest / 5 {
			wire = append(wire, 0x00, 0x00, 0x00, 0xff, 0xff)
		}
		wire = append(wire, 0x00, byte(extra), 0x00, ^byte(extra), 0xff)
		wire = append(wire, strings.Repeat("x", extra)...)
		wire = append(wire, tail...)
		if len(wire) != size {
			t.Fatalf("built %d bytes, want %d", len(wire), size)
		}
		return wire, strings.Repeat("x", extra) + "hello"
	}
	both(t, func(t *testing.T, isServer bool) {
		c, p := hostileConn(t, isServer, withReadLimit(limit), withDeflate(false))
		wire, want := payload(bound)
		go p.conn.Write(peerFrame(p, Header{Fin: true, Rsv: Rsv1, Opcode: OpBinary}, wire))
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if _, got, err := c.Read(ctx); err != nil || string(got) != want {
			t.Fatalf("a compressed message of %d bytes on the wire: %q, %v; want %q", bound, got, err, want)
		}

		c, p = hostileConn(t, isServer, withReadLimit(limit), withDeflate(false))
		wire, _ = payload(bound + 1)
		provoke(t, c, p, peerFrame(p, Header{Fin: true, Rsv: Rsv1, Opcode: OpBinary}, wire)).check(t, StatusMessageTooBig, ErrMessageTooBig)
	})
}

// A bomb costs the client about its read limit in memory, as it does the
// server (TestDeflateBomb).
func TestHostileDeflateBombMemory(t *testing.T) {
	if raceEnabled {
		t.Skip("memory figures mean nothing under the race detector")
	}
	checkLeaks(t)
	const limit = 1 << 20
	c, p := hostileConn(t, false, withReadLimit(limit), withDeflate(false))
	wire := peerFrame(p, Header{Fin: true, Rsv: Rsv1, Opcode: OpBinary}, deflateBomb(32<<20))
	var err error
	allocated := readAllocs(func() {
		go func() {
			p.conn.Write(wire)
			peerReadClose(p)
			p.conn.Close() // the server's FIN, which our client waits for
		}()
		_, _, err = c.Read(context.Background())
	})
	if !errors.Is(err, ErrDeflateTooLarge) {
		t.Errorf("Read error %v", err)
	}
	if allocated > 3*limit {
		t.Errorf("allocated %d bytes for a %d-byte limit", allocated, limit)
	}
}

// With compression and the limit lifted, messages still arrive: the wire
// bound of a compressed message (compressedWireLimit) must not overflow.
func TestHostileDeflateNoReadLimit(t *testing.T) {
	checkLeaks(t)
	both(t, func(t *testing.T, isServer bool) {
		c, p := hostileConn(t, isServer, withDeflate(false))
		c.SetReadLimit(math.MaxInt64)
		p.conn.Write(peerFrame(p, Header{Fin: true, Rsv: Rsv1, Opcode: OpText}, []byte{0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00}))
		var msg []byte
		var err error
		func() {
			defer func() {
				if v := recover(); v != nil {
					err = fmt.Errorf("panic: %v", v)
				}
			}()
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_, msg, err = c.Read(ctx)
		}()
		if err != nil || string(msg) != "Hello" {
			t.Errorf("Read = %q, %v", msg, err)
		}
	})
}

// ---------------------------------------------------------------------------
// Peers that misbehave in time. Bounds are generous multiples of the
// configured timeouts: the tests check that a call ends because of its
// bound, not how fast the machine is.

// slack is what a bounded call may take beyond its bound on a loaded machine.
const slack = 2 * time.Second

// A peer that never reads: a Write ends at its context's deadline, in the
// middle of a frame or before it; then the connection is unusable for
// writes (the frame is torn) and Close still returns within its bound.
func TestHostilePeerNeverReads(t *testing.T) {
	checkLeaks(t)
	bothParallel(t, func(t *testing.T, isServer bool) {
		c, _ := hostileConn(t, isServer, func(cfg *connConfig) { cfg.closeTimeout = 300 * time.Millisecond })
		msg := make([]byte, 1<<20)
		var err error
		for i := 0; i < 1024 && err == nil; i++ { // at most 1 GiB: the socket buffers fill long before
			ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
			start := time.Now()
			err = c.Write(ctx, MessageBinary, msg)
			if d := time.Since(start); d > 200*time.Millisecond+slack {
				t.Errorf("Write took %v with a 200ms deadline", d)
			}
			cancel()
		}
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Write to a peer that never reads: %v", err)
		}
		// The streaming writer is bounded the same way.
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		if w, err := c.Writer(ctx, MessageBinary); err == nil {
			_, err = w.Write(msg)
			if err == nil {
				err = w.Close()
			}
			if err == nil {
				t.Error("streamed write to a peer that never reads succeeded")
			}
		}
		start := time.Now()
		c.Close(StatusGoingAway, "")
		if d := time.Since(start); d > 2*300*time.Millisecond+slack {
			t.Errorf("Close took %v with a 300ms close timeout", d)
		}
	})
}

// A write that no context bounds is ended by CloseNow, from any goroutine.
func TestHostileCloseNowEndsBlockedWrite(t *testing.T) {
	checkLeaks(t)
	both(t, func(t *testing.T, isServer bool) {
		c, _ := hostileConn(t, isServer)
		done := make(chan error, 1)
		go func() {
			done <- c.Write(context.Background(), MessageBinary, make([]byte, 64<<20))
		}()
		time.Sleep(100 * time.Millisecond)
		c.CloseNow()
		select {
		case err := <-done:
			if !errors.Is(err, ErrClosed) {
				t.Errorf("blocked Write returned %v, want ErrClosed", err)
			}
		case <-time.After(slack):
			t.Fatal("CloseNow did not end a blocked Write")
		}
		if err := c.Write(context.Background(), MessageText, []byte("late")); !errors.Is(err, ErrClosed) {
			t.Errorf("Write after CloseNow returned %v, want ErrClosed", err)
		}
	})
}

// A peer that reads but never answers our close (the client role is
// TestCloseTimeout): Close returns within its bound, reports it, and the
// TCP connection is closed.
func TestHostilePeerNeverAnswersClose(t *testing.T) {
	checkLeaks(t)
	const timeout = 300 * time.Millisecond
	c, p := hostileConn(t, true, func(cfg *connConfig) { cfg.closeTimeout = timeout })
	start := time.Now()
	err := c.Close(StatusNormalClosure, "bye")
	if err == nil {
		t.Error("Close reported a completed handshake")
	}
	if d := time.Since(start); d > 2*timeout+slack {
		t.Errorf("Close took %v with a %v bound", d, timeout)
	}
	if code, _, ok := peerReadClose(p); !ok || code != StatusNormalClosure {
		t.Errorf("close frame %v %v", code, ok)
	}
	if _, _, ok := p.readFrame(); ok {
		t.Error("connection still open after Close")
	}
}

// A peer that neither reads nor answers, while a large write of ours is
// stuck on the full socket: Close still returns within twice its bound and
// the stuck write ends.
func TestHostilePeerNeitherReadsNorAnswers(t *testing.T) {
	checkLeaks(t)
	const timeout = 300 * time.Millisecond
	bothParallel(t, func(t *testing.T, isServer bool) {
		c, _ := hostileConn(t, isServer, func(cfg *connConfig) { cfg.closeTimeout = timeout })
		stuck := make(chan error, 1)
		go func() { stuck <- c.Write(context.Background(), MessageBinary, make([]byte, 64<<20)) }()
		time.Sleep(100 * time.Millisecond)
		start := time.Now()
		if err := c.Close(StatusNormalClosure, ""); err == nil {
			t.Error("Close reported a completed handshake")
		}
		if d := time.Since(start); d > 2*timeout+slack {
			t.Errorf("Close took %v with a %v bound", d, timeout)
		}
		select {
		case err := <-stuck:
			if err == nil {
				t.Error("the stuck Write succeeded")
			}
		case <-time.After(10 * time.Second): // only "never": seen to take over 2 s on a machine loaded several times over
			t.Error("the stuck Write outlived Close")
		}
	})
}

// A peer that answers pings for a while, then vanishes without a FIN (it
// neither reads nor writes, the socket stays open): keepalive does not drop
// it while it answers, then drops it within interval + timeout, with the
// reader active or through CloseRead.
func TestHostilePeerVanishes(t *testing.T) {
	checkLeaks(t)
	const interval, timeout = 50 * time.Millisecond, 200 * time.Millisecond
	for _, closeRead := range []bool{false, true} {
		t.Run(map[bool]string{false: "reading", true: "CloseRead"}[closeRead], func(t *testing.T) {
			t.Parallel()
			bothParallel(t, func(t *testing.T, isServer bool) {
				c, p := hostileConn(t, isServer, func(cfg *connConfig) {
					cfg.pingInterval, cfg.pingTimeout = interval, timeout
				})
				healthy := 2 * (interval + timeout)
				vanished := make(chan time.Time, 1)
				peerDone := make(chan struct{})
				go func() {
					defer close(peerDone)
					start := time.Now()
					pongs := 0
					for time.Since(start) < healthy {
						h, payload, ok := p.readFrame()
						if !ok {
							return
						}
						if h.Opcode == OpPing {
							pongs++
							p.conn.Write(peerFrame(p, Header{Fin: true, Opcode: OpPong}, payload))
						}
					}
					// Still alive after answering for a while: say so with a
					// message (unless the application only writes), then vanish.
					if !closeRead {
						p.conn.Write(peerFrame(p, Header{Fin: true, Opcode: OpText}, []byte(fmt.Sprintf("answered %d pings", pongs))))
					}
					vanished <- time.Now()
				}()
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				var err error
				if closeRead {
					// The application only writes.
					done := c.CloseRead(ctx)
					select {
					case <-done.Done():
						t.Fatal("dropped while the peer answered")
					case v := <-vanished:
						vanished <- v
					}
					<-done.Done()

					err = c.Write(ctx, MessageText, []byte("still there?"))
				} else {
					var msg []byte
					if _, msg, err = c.Read(ctx); err != nil || !strings.HasPrefix(string(msg), "answered") {
						t.Fatalf("dropped while the peer answered: %q, %v", msg, err)
					}
					_, _, err = c.Read(ctx)
				}
				if !errors.Is(err, ErrClosed) {
					t.Errorf("after the peer vanished: %v, want ErrClosed", err)
				}
				if !errors.Is(err, ErrKeepaliveTimeout) {
					t.Errorf("error %v, want ErrKeepaliveTimeout", err)
				}
				if d := time.Since(<-vanished); d > 2*(interval+timeout)+slack {
					t.Errorf("dropped %v after the peer vanished", d)
				}
				<-peerDone
			})
		})
	}
}

// A peer that stopped reading while our socket buffers were full leaves
// keepalive's ping unwritten, and then unanswered: the connection is
// dropped with ErrKeepaliveTimeout. Over TLS the ping's write, cut by its
// context with nothing written, breaks the stream all the same (a timed-out
// tls.Conn write is fatal), and that must not hide why the Conn ended.
func TestKeepaliveDropsAPeerThatTakesNotEvenThePingOverTLS(t *testing.T) {
	checkLeaks(t)
	ours, _ := tlsLoopback(t)
	// Fill the socket buffers behind the Conn's back, as a peer that stopped
	// reading does over time; the TLS record layer stays consistent.
	buf := make([]byte, 1024)
	for range 10000 {
		ours.NetConn().SetWriteDeadline(time.Now().Add(200 * time.Millisecond))
		if _, err := ours.NetConn().Write(buf); err != nil {
			break
		}
	}
	ours.NetConn().SetWriteDeadline(time.Time{})
	c := newConn(ours, nil, connConfig{isServer: true, pingInterval: 50 * time.Millisecond, pingTimeout: 200 * time.Millisecond, closeTimeout: 300 * time.Millisecond})
	defer c.CloseNow()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, _, err := c.Read(ctx)
	if !errors.Is(err, ErrKeepaliveTimeout) {
		t.Errorf("Read = %v, want ErrKeepaliveTimeout", err)
	}
}

// Keepalive's goroutines are the Conn's: once CloseNow returns, none is
// left to run (doc.go, Concurrency), neither a round its timer started
// just before the close, nor one a timer left armed starts after it. The
// peer answers every ping, so that a round starts every millisecond, and
// the Conn is closed at every point of it, many times over. Once CloseNow
// has returned the test holds backgroundMu, which a round takes first
// (joinBackground, or arm): a round that was not waited for then waits
// there, where the test sees it, while one that is only returning ends.
func TestKeepaliveLeavesNoRoundOnceCloseNowReturns(t *testing.T) {
	const interval = time.Millisecond
	for i := range 200 {
		c, p := hostileConn(t, true, func(cfg *connConfig) {
			cfg.pingInterval, cfg.pingTimeout = interval, time.Hour
		})
		go func() {
			for {
				h, payload, ok := p.readFrame()
				if !ok {
					return
				}
				if h.Opcode == OpPing {
					p.writeFrame(Header{Fin: true, Opcode: OpPong}, payload)
				}
			}
		}()
		go c.Read(context.Background()) // pongs are seen only while someone reads
		time.Sleep(time.Duration(i%7) * interval / 3)
		c.CloseNow()
		c.backgroundMu.Lock()
		time.Sleep(3 * interval) // a timer left armed fires meanwhile
		var late []string
		for _, stack := range goroutineStacks() {
			if strings.Contains(stack, "startKeepalive") && strings.Contains(stack, "sync.(*Mutex).Lock") {
				late = append(late, stack)
			}
		}
		c.backgroundMu.Unlock()
		if len(late) > 0 {
			t.Fatalf("close %d: a round of keepalive runs after CloseNow returned:\n%s", i, late[0])
		}
		p.conn.Close()
	}
}

// A large frame of ours holds the wire for as long as the peer takes to
// read it, and a keepalive ping cannot go out before it has: a peer that
// keeps taking the frame is alive, and is not dropped for the pong it could
// not send yet; once the frame is out, pings go and are answered. A peer
// that stops taking the frame halfway is dropped, as one that vanished.
func TestKeepaliveWhileALargeFrameGoesOut(t *testing.T) {
	checkLeaks(t)
	// The timeout is five times what a MiB takes (progressChunk), so that
	// a loaded machine, which stretches the peer's sleeps, does not make
	// the peer look gone.
	const interval, timeout = 50 * time.Millisecond, 400 * time.Millisecond
	const size = 16 << 20
	// Made before the Conn, so that its Write begins at once: a ping that
	// went out first, while 16 MiB were being zeroed, would wait behind the
	// frame for its pong.
	payload := make([]byte, size)
	for _, stops := range []bool{false, true} {
		t.Run(map[bool]string{false: "the peer reads on", true: "the peer stops reading"}[stops], func(t *testing.T) {
			c, p := hostileConn(t, true, func(cfg *connConfig) {
				cfg.pingInterval, cfg.pingTimeout = interval, timeout
			})
			// Small socket buffers: the frame leaves at the pace the peer
			// reads it, which takes several times keepalive's timeout.
			c.netConn.(*net.TCPConn).SetWriteBuffer(32 << 10)
			p.conn.(*net.TCPConn).SetReadBuffer(32 << 10)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			go c.Read(ctx) // pongs are seen only while someone reads
			pongs := make(chan int, 1)
			go func() {
				// About 12 MB/s, a MiB in about 80 ms: the frame in 1.4 s.
				left := int64(size + 10) // and its header
				if stops {
					left = size / 4
				}
				for left > 0 {
					n, err := io.CopyN(io.Discard, p.br, min(left, 128<<10))
					if err != nil {
						return
					}
					left -= n
					time.Sleep(10 * time.Millisecond)
				}
				if stops {
					return // the socket stays open: a peer that vanished
				}
				answered := 0
				for {
					h, payload, ok := p.readFrame()
					if !ok {
						pongs <- answered
						return
					}
					if h.Opcode == OpPing {
						answered++
						p.conn.Write(peerFrame(p, Header{Fin: true, Opcode: OpPong}, payload))
					}
				}
			}()
			err := c.Write(ctx, MessageBinary, payload)
			if stops {
				if !errors.Is(err, ErrKeepaliveTimeout) {
					t.Errorf("Write to a peer that stopped reading: %v, want ErrKeepaliveTimeout", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Write: %v; the peer was reading it all along", err)
			}
			time.Sleep(4 * (interval + timeout)) // pings go out and are answered
			if c.isNetClosed() {
				t.Fatalf("dropped after the frame: %v", c.closeCause)
			}
			c.CloseNow()
			if n := <-pongs; n == 0 {
				t.Error("no ping went out after the frame")
			}
		})
	}
}

// A large frame of the peer's holds its pong back for as long as the frame
// takes to arrive (control frames go only between frames, RFC 6455 §5.4),
// as a browser's upload of a large message over a slow link does: a peer
// whose frame keeps coming is alive, and is not dropped for the pong it
// could not send yet; the message arrives whole, and the pongs sent after
// it are taken. A peer that stops halfway through the frame is dropped, as
// one that vanished. Likewise for a Conn a Poller watches, whose handler
// reads the frame, or reads its start and leaves the rest for the Poller
// to skip.
func TestKeepaliveWhileALargeFrameComesIn(t *testing.T) {
	checkLeaks(t)
	const interval, timeout = 30 * time.Millisecond, 100 * time.Millisecond
	const size, pieces = 60 << 10, 60 // a KiB every 10 ms: the frame in about 0.6 s
	for _, mode := range []string{"read", "polled", "polled and skipped"} {
		polled, skipped := mode != "read", mode == "polled and skipped"
		for _, stops := range []bool{false, true} {
			name := mode + "/" + map[bool]string{false: "the peer sends on", true: "the peer stops sending"}[stops]
			t.Run(name, func(t *testing.T) {
				c, p := hostileConn(t, true, func(cfg *connConfig) {
					cfg.pingInterval, cfg.pingTimeout = interval, timeout
				})
				payload := make([]byte, size)
				for i := range payload {
					payload[i] = byte(i * 7)
				}
				frame := peerFrame(p, Header{Fin: true, Opcode: OpBinary}, payload)

				// The peer reads our pings as they come, and holds its
				// pongs until its frame is out.
				pings := make(chan []byte, 1000)
				go func() {
					defer close(pings)
					for {
						h, payload, ok := p.readFrame()
						if !ok {
							return
						}
						if h.Opcode == OpPing {
							pings <- payload
						}
					}
				}()
				// What the peer sent: all it meant to (ok), when it
				// finished, and how many pings had come by then.
				type sending struct {
					ok    bool
					at    time.Time
					pings int
				}
				sent := make(chan sending, 1)
				peerDone := make(chan struct{})
				go func() {
					defer close(peerDone)
					end := len(frame)
					if stops {
						end = len(frame) / 3
					}
					piece := (len(frame) + pieces - 1) / pieces
					for off := 0; off < end; off += piece {
						if _, err := p.conn.Write(frame[off:min(off+piece, end)]); err != nil {
							sent <- sending{} // dropped while sending
							return
						}
						time.Sleep(10 * time.Millisecond)
					}
					sent <- sending{ok: true, at: time.Now(), pings: len(pings)}
					if stops {
						return // the socket stays open: a peer that vanished
					}
					// The frame is out: answer the pings held, and those
					// to come.
					for payload := range pings {
						if _, err := p.conn.Write(peerFrame(p, Header{Fin: true, Opcode: OpPong}, payload)); err != nil {
							return
						}
					}
				}()

				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				type result struct {
					msg []byte
					err error
				}
				results := make(chan result, 2)
				if polled {
					poller := newTestPoller(t)
					calls := 0
					if err := poller.Add(c, func(c *Conn) {
						calls++
						if !skipped || calls > 1 {
							_, msg, err := c.Read(ctx)
							results <- result{msg, err}
							return
						}
						// Only the start: the Poller skips the rest,
						// which comes as slowly.
						_, rd, err := c.Reader(ctx)
						if err != nil {
							results <- result{nil, err}
							return
						}
						head := make([]byte, 3)
						n, err := io.ReadFull(rd, head)
						results <- result{head[:n], err}
					}); err != nil {
						t.Fatal(err)
					}
				} else {
					go func() {
						_, msg, err := c.Read(ctx)
						results <- result{msg, err}
					}()
				}
				r := <-results
				if skipped {
					if r.err != nil || !bytes.Equal(r.msg, payload[:3]) {
						t.Fatalf("the start of the message: %v, %v", r.msg, r.err)
					}
					if stops {
						r = <-results // the end, after the Poller skipped what came
					} else {
						r.msg = payload // skipped, not read
					}
				}
				if stops {
					if !errors.Is(r.err, ErrKeepaliveTimeout) {
						t.Errorf("Read from a peer that stopped mid-frame: %v, want ErrKeepaliveTimeout", r.err)
					}
					if s := <-sent; !s.ok {
						t.Error("dropped while the peer was still sending")
					} else if d := time.Since(s.at); d > 2*(interval+timeout)+slack {
						t.Errorf("dropped %v after the peer stopped", d)
					}
					c.CloseNow()
					<-peerDone
					return
				}
				if r.err != nil {
					t.Fatalf("Read: %v; the peer was sending all along", r.err)
				}
				if !bytes.Equal(r.msg, payload) {
					t.Fatalf("message of %d bytes, not the %d sent", len(r.msg), len(payload))
				}
				if s := <-sent; s.pings < 2 {
					t.Errorf("%d pings went out while the frame came in; keepalive was not tested", s.pings)
				}
				if !polled {
					c.CloseRead(ctx) // pongs are seen only while someone reads
				}
				// The pongs held back, and those after, are taken: keepalive
				// goes on, and a Ping of ours is answered.
				time.Sleep(4 * (interval + timeout))
				pingCtx, pingCancel := context.WithTimeout(ctx, 2*time.Second)
				defer pingCancel()
				if err := c.Ping(pingCtx); err != nil {
					t.Fatalf("Ping after the frame: %v", err)
				}
				if c.isNetClosed() {
					t.Fatalf("dropped after the frame: %v", c.closeCause)
				}
				c.CloseNow()
				<-peerDone
			})
		}
	}
}

// A peer that keeps sending small messages, each frame whole, but answers
// no ping is dropped: its pong could have gone between any two of them, so
// no frame in progress excuses it (TestKeepaliveWhileALargeFrameComesIn).
func TestKeepaliveDropsAPeerThatSendsWholeFramesButNoPong(t *testing.T) {
	checkLeaks(t)
	const interval, timeout = 30 * time.Millisecond, 100 * time.Millisecond
	c, p := hostileConn(t, true, func(cfg *connConfig) {
		cfg.pingInterval, cfg.pingTimeout = interval, timeout
	})
	go io.Copy(io.Discard, p.br) // reads pings, never answers
	peerDone := make(chan struct{})
	go func() {
		defer close(peerDone)
		msg := peerFrame(p, Header{Fin: true, Opcode: OpBinary}, make([]byte, 100))
		for {
			if _, err := p.conn.Write(msg); err != nil {
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	start := time.Now()
	var err error
	for err == nil {
		_, _, err = c.Read(ctx)
	}
	if !errors.Is(err, ErrKeepaliveTimeout) {
		t.Errorf("Read = %v, want ErrKeepaliveTimeout", err)
	}
	if d := time.Since(start); d > 2*(interval+timeout)+slack {
		t.Errorf("dropped after %v", d)
	}
	c.CloseNow()
	<-peerDone
}

// A peer that sends a message a byte at a time: every read is bounded by
// its context, returns exactly ctx.Err(), and leaves the Conn usable; the
// interrupted message is skipped as a whole (doc.go, Contexts), never
// delivered in part, and the messages after it arrive intact. With context
// takeover the rest of a compressed message cannot be skipped without
// decoding it, so ending the connection cleanly (a documented error, not a
// raw network one) is accepted there too.
func TestHostileTrickle(t *testing.T) {
	checkLeaks(t)
	for _, mode := range []string{"plain", "deflate", "deflate-takeover"} {
		compressed, takeover := mode != "plain", mode == "deflate-takeover"
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			bothParallel(t, func(t *testing.T, isServer bool) {
				var opts []func(*connConfig)
				if compressed {
					opts = append(opts, withDeflate(takeover))
				}
				c, p := hostileConn(t, isServer, opts...)
				first := "the first message, sent one byte at a time"
				frame := func(h Header, s string) []byte {
					if compressed {
						h.Rsv = Rsv1
						return peerFrame(p, h, deflateRaw(t, []byte(s)))
					}
					return peerFrame(p, h, []byte(s))
				}
				go func() {
					for _, b := range frame(Header{Fin: true, Opcode: OpText}, first) {
						if _, err := p.conn.Write([]byte{b}); err != nil {
							return
						}
						time.Sleep(15 * time.Millisecond)
					}
					p.conn.Write(frame(Header{Fin: true, Opcode: OpText}, "second"))
					p.conn.Write(frame(Header{Fin: true, Opcode: OpText}, "third"))
				}()
				var got []string
				for i := 0; i < 1000 && len(got) < 2; i++ {
					ctx, cancel := context.WithTimeout(context.Background(), 40*time.Millisecond)
					start := time.Now()
					_, msg, err := c.Read(ctx)
					cancel()
					if d := time.Since(start); d > 40*time.Millisecond+slack {
						t.Fatalf("Read took %v with a 40ms deadline", d)
					}
					var ce *CloseError
					var pe *ProtocolError
					switch {
					case err == nil:
						got = append(got, string(msg))
					case err == context.DeadlineExceeded:
					case takeover && (errors.Is(err, ErrClosed) || errors.As(err, &ce) || errors.As(err, &pe)):
						return // the connection ended cleanly
					default:
						t.Fatalf("read %d: %v, want context.DeadlineExceeded", i, err)
					}
				}
				// The first message is whole or skipped; the rest follow.
				if len(got) > 0 && got[0] == first {
					got = got[1:]
				}
				if len(got) == 0 || got[0] != "second" {
					t.Fatalf("messages %q", got)
				}
				if len(got) < 2 {
					ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
					defer cancel()
					_, msg, err := c.Read(ctx)
					got = append(got, string(msg))
					if err != nil {
						t.Fatal(err)
					}
				}
				if got[1] != "third" {
					t.Errorf("messages %q", got)
				}
			})
		})
	}
}

// A peer that sends pings and never reads our pongs: once a pong cannot be
// written within the close timeout, the peer is dropped; the read ends
// with a documented error rather than a raw network timeout.
func TestHostilePingsButNeverReads(t *testing.T) {
	checkLeaks(t)
	const timeout = 300 * time.Millisecond
	both(t, func(t *testing.T, isServer bool) {
		c, p := hostileConn(t, isServer, func(cfg *connConfig) { cfg.closeTimeout = timeout })
		stop := make(chan struct{})
		defer close(stop)
		go func() {
			ping := peerFrame(p, Header{Fin: true, Opcode: OpPing}, bytes.Repeat([]byte("p"), 125))
			burst := bytes.Repeat(ping, 1000)
			for i := 0; i < 10000; i++ { // at most ~1.3 GB; the buffers fill long before
				select {
				case <-stop:
					return
				default:
				}
				if _, err := p.conn.Write(burst); err != nil {
					return
				}
			}
		}()
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		var err error
		for i := 0; i < 1000 && err == nil; i++ {
			_, _, err = c.Read(ctx)
		}
		if err == context.DeadlineExceeded {
			t.Fatal("the reader kept going for 20s")
		}
		var ce *CloseError
		var pe *ProtocolError
		if !errors.Is(err, ErrClosed) && !errors.As(err, &ce) && !errors.As(err, &pe) {
			t.Errorf("Read error %T %v: not a documented error", err, err)
		}
	})
}

// A peer that pings while it takes a large frame of ours, slowly but
// steadily, is answered once the frame is out, not dropped: the pong is
// left to the frame's writer, however long the frame takes. The reader
// waited the close timeout for the frame, and then dropped the
// connection, the Write failing with ErrClosed.
func TestPongWaitsBehindALargeFrameThePeerTakes(t *testing.T) {
	checkLeaks(t)
	both(t, func(t *testing.T, isServer bool) {
		c, p := hostileConn(t, isServer, func(cfg *connConfig) { cfg.closeTimeout = 300 * time.Millisecond })
		readErr := make(chan error, 1)
		go func() {
			_, _, err := c.Read(context.Background())
			readErr <- err
		}()
		const size = 16 << 20
		writeErr := make(chan error, 1)
		go func() { writeErr <- c.Write(context.Background(), MessageBinary, make([]byte, size)) }()

		h, err := ReadHeader(p.br) // the frame has begun: the writer holds the wire
		if err != nil || h.Length != size {
			t.Fatalf("header %+v, %v", h, err)
		}
		p.conn.Write(peerFrame(p, Header{Fin: true, Opcode: OpPing}, []byte("hi")))
		// 256 KiB every 20 ms: the frame takes over a second, several close
		// timeouts, while a MiB of it goes every 80 ms.
		chunk := make([]byte, 256<<10)
		for taken := 0; taken < size; taken += len(chunk) {
			if _, err := io.ReadFull(p.br, chunk); err != nil {
				t.Fatalf("after %d bytes of the frame: %v", taken, err)
			}
			time.Sleep(20 * time.Millisecond)
		}
		if err := <-writeErr; err != nil {
			t.Errorf("Write = %v", err)
		}
		if h, payload, ok := p.readFrame(); !ok || h.Opcode != OpPong || string(payload) != "hi" {
			t.Errorf("after the message: %v %q (ok %v), want the pong", h.Opcode, payload, ok)
		}
		c.CloseNow()
		<-readErr
	})
}

// A pong that came due behind a large frame the peer kept taking has the
// close timeout for its own write once the frame is out, however long the
// frame took: the frame's tail may still fill the socket, and a peer that
// takes the pong a little later, well within the close timeout, is alive.
// Over net.Pipe, where a write lasts until the peer has read it, the peer
// says when each part of the frame goes and when the pong does.
func TestPongAfterALargeFrameHasTheCloseTimeoutForItsWrite(t *testing.T) {
	checkLeaks(t)
	const closeTimeout = time.Second
	ours, theirs := net.Pipe()
	c := newConn(ours, nil, connConfig{isServer: true, closeTimeout: closeTimeout})
	t.Cleanup(func() { c.CloseNow() })
	theirs.SetDeadline(time.Now().Add(20 * time.Second))
	p := &rawPeer{t: t, conn: theirs, br: bufio.NewReader(theirs), isClient: true}

	readErr, writeErr := largeFrameUnderWay(t, c, p)
	if _, err := p.conn.Write(peerFrame(p, Header{Fin: true, Opcode: OpPing}, []byte("hi"))); err != nil {
		t.Fatal(err)
	}
	// The first chunk at once, the second at 0.6 s, the last at 1.75 s:
	// the frame takes longer than the close timeout, and the pong waits
	// behind it all along.
	takeLargeFrame(t, p, time.Now(), 0, 600*time.Millisecond, 1750*time.Millisecond)
	// The writer sends the pong as it lets go of the frame; the peer takes
	// it later, within the close timeout.
	time.Sleep(closeTimeout * 6 / 10)
	if h, payload, ok := p.readFrame(); !ok || h.Opcode != OpPong || string(payload) != "hi" {
		t.Errorf("after the message: %v %q (ok %v), want the pong; connection closed: %v (%v)", h.Opcode, payload, ok, c.isNetClosed(), c.closeCause)
	}
	if err := <-writeErr; err != nil {
		t.Fatalf("Write = %v", err)
	}
	c.CloseNow()
	<-readErr
}

// ---------------------------------------------------------------------------
// Fuzzing: message reading with permessage-deflate negotiated (FuzzReadMessage
// covers the plain case).

// FuzzReadMessageDeflate feeds arbitrary bytes to a Conn with
// permessage-deflate, on either side, with or without context takeover.
// Only documented errors may come out, never a panic or a hang; no message
// exceeds the read limit and no text message is invalid UTF-8; what is read
// is what refDecode reads, inflating with compress/flate (or, where the
// stream ends inside a compressed message, a decompression failure met on
// the way); and fed in pieces, and read in small reads through Reader, the
// bytes must read the same as whole.
func FuzzReadMessageDeflate(f *testing.F) {
	for _, s := range readDeflateSeeds() {
		f.Add(s.data, s.isServer, s.takeover)
	}
	f.Fuzz(func(t *testing.T, data []byte, isServer, takeover bool) {
		cfg := connConfig{isServer: isServer, readLimit: fuzzReadLimit, closeTimeout: time.Millisecond}
		withDeflate(takeover)(&cfg)
		pieces := crc64.Checksum(data, crc64.MakeTable(crc64.ECMA)) | 1
		whole := readFuzzed(t, cfg, bytes.NewReader(data), fuzzReading{bufCap: int(pieces >> 56)})
		want, loose := refDecode(data, isServer, &refInflater{takeover: takeover}, fuzzReadLimit, fuzzReadMessages, 0)
		if !reflect.DeepEqual(whole, want) && !(loose && failedInflatingEarlier(whole, want)) {
			t.Fatalf("read %+v\nreference decoder %+v (loose %v)", whole, want, loose)
		}
		// How the bytes arrive and are asked for must change nothing.
		if split := readFuzzed(t, cfg, &piecewiseReader{data: data, sizes: pieces}, fuzzReading{reads: pieces}); !reflect.DeepEqual(split, whole) {
			t.Fatalf("in pieces (%#x) read %+v\nwhole read %+v", pieces, split, whole)
		}
		// Messages begun and skipped unread, which the decompressor must
		// still inflate: what comes after them reads the same.
		if skips := uint8(pieces >> 48); skips != 0 {
			skipping := readFuzzed(t, cfg, bytes.NewReader(data), fuzzReading{reads: pieces, skips: skips})
			want, loose := refDecode(data, isServer, &refInflater{takeover: takeover}, fuzzReadLimit, fuzzReadMessages, skips)
			if !reflect.DeepEqual(skipping, want) && !(loose && failedInflatingEarlier(skipping, want)) {
				t.Fatalf("skipping %08b read %+v\nreference decoder %+v (loose %v)", skips, skipping, want, loose)
			}
		}
		// Close with a message part read (its first byte, or 2 to 17
		// bytes of messages): it skips the rest undecoded, and must still
		// end on the first close frame, sending at most one of its own
		// (§5.5.1).
		for _, read := range []int{1, 2 + int(pieces>>40&15)} {
			closeMidway(t, cfg, data, read)
		}
	})
}

// closeMidway reads data through a Conn made with cfg until read bytes of
// messages are read (or the reads end), then calls Close: no panic, at
// most one close frame sent, and the reads after it end with a documented
// error.
func closeMidway(t *testing.T, cfg connConfig, data []byte, read int) {
	t.Helper()
	nc := &scriptedConn{r: bytes.NewReader(data)}
	c := newConn(nc, nil, cfg)
	defer c.CloseNow()
	ctx := context.Background()
	var p [16]byte
reading:
	for read > 0 {
		_, r, err := c.Reader(ctx)
		if err != nil {
			break
		}
		for read > 0 {
			n, err := r.Read(p[:min(len(p), read)])
			read -= n
			if err == io.EOF {
				break
			}
			if err != nil {
				break reading
			}
		}
	}
	c.Close(StatusNormalClosure, "")
	closes := 0
	for _, frame := range sentControlFrames(t, nc.written.Bytes(), !cfg.isServer) {
		if strings.HasPrefix(frame, "close") {
			closes++
		}
	}
	if closes > 1 {
		t.Fatalf("%d close frames sent", closes)
	}
	_, _, err := c.Read(ctx)
	var ce *CloseError
	var pe *ProtocolError
	if !errors.As(err, &ce) && !errors.As(err, &pe) && !errors.Is(err, ErrClosed) {
		t.Fatalf("read after Close: undocumented error %T: %v", err, err)
	}
}

// failedInflatingEarlier reports whether got is what a Conn may read where
// refDecode read want, ending inside a compressed message (loose): the
// same messages, then a failure to inflate (1007) or inflating past the
// limit (1009), met as early as the first frame of that message; so the
// pongs sent are those of want up to some point, and then the close frame.
func failedInflatingEarlier(got, want readOutcome) bool {
	if !reflect.DeepEqual(got.Messages, want.Messages) || got.Closed ||
		got.Code != StatusInvalidPayload && got.Code != StatusMessageTooBig {
		return false
	}
	n := len(got.Sent) - 1
	return n >= 0 && got.Sent[n] == fmt.Sprint("close ", uint16(got.Code)) &&
		n <= len(want.Sent) && slices.Equal(got.Sent[:n], want.Sent[:n]) &&
		!slices.ContainsFunc(got.Sent[:n], func(frame string) bool { return !strings.HasPrefix(frame, "pong ") })
}

type readDeflateSeed struct {
	name               string
	data               []byte
	isServer, takeover bool
}

// readDeflateSeeds are the seeds of FuzzReadMessageDeflate, also written to
// testdata/fuzz/FuzzReadMessageDeflate.
func readDeflateSeeds() []readDeflateSeed {
	toServer := &rawPeer{isClient: true}
	toClient := &rawPeer{}
	hello := []byte{0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00}
	frames := func(fs ...[]byte) []byte { return bytes.Join(fs, nil) }
	bomb := deflateBomb(1 << 16)
	return []readDeflateSeed{
		{"hello to server", peerFrame(toServer, Header{Fin: true, Rsv: Rsv1, Opcode: OpText}, hello), true, false},
		{"hello to client", peerFrame(toClient, Header{Fin: true, Rsv: Rsv1, Opcode: OpText}, hello), false, true},
		{"hello in fragments", frames(
			peerFrame(toClient, Header{Rsv: Rsv1, Opcode: OpText}, hello[:3]),
			peerFrame(toClient, Header{Fin: true, Opcode: OpPing}, []byte("p")),
			peerFrame(toClient, Header{Fin: true, Opcode: OpContinuation}, hello[3:])), false, false},
		{"takeover back-reference", frames(
			peerFrame(toClient, Header{Fin: true, Rsv: Rsv1, Opcode: OpText}, hello),
			peerFrame(toClient, Header{Fin: true, Rsv: Rsv1, Opcode: OpText}, []byte{0xf2, 0x00, 0x11, 0x00, 0x00})), false, true},
		{"plain then compressed", frames(
			peerFrame(toServer, Header{Fin: true, Opcode: OpBinary}, []byte("plain")),
			peerFrame(toServer, Header{Fin: true, Rsv: Rsv1, Opcode: OpBinary}, hello)), true, true},
		{"bomb", peerFrame(toClient, Header{Fin: true, Rsv: Rsv1, Opcode: OpBinary}, bomb), false, false},
		{"empty blocks", peerFrame(toServer, Header{Fin: true, Rsv: Rsv1, Opcode: OpBinary}, bytes.Repeat([]byte{0, 0, 0, 0xff, 0xff}, 100)), true, false},
		{"BFINAL then garbage", peerFrame(toClient, Header{Fin: true, Rsv: Rsv1, Opcode: OpText}, []byte{0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0xff, 0xfe}), false, false},
		{"corrupt", peerFrame(toClient, Header{Fin: true, Rsv: Rsv1, Opcode: OpBinary}, []byte{0x07, 0x00}), false, true},
		{"RSV1 on continuation", frames(
			peerFrame(toServer, Header{Rsv: Rsv1, Opcode: OpText}, hello[:2]),
			peerFrame(toServer, Header{Fin: true, Rsv: Rsv1, Opcode: OpContinuation}, hello[2:])), true, false},
		{"compressed invalid UTF-8", peerFrame(toClient, Header{Fin: true, Rsv: Rsv1, Opcode: OpText},
			newDeflateCompressor(1, 15, false).appendCompressed(nil, []byte("ok \xed\xa0\x80"))), false, false},
		{"close inside compressed, then another", frames(
			// A stored block flate holds until the next block header,
			// which the close frame cuts off: the held output comes out
			// before the close is reported (TestDeflatePeersCloseInsideMessageEndsTheReadSide).
			peerFrame(toServer, Header{Rsv: Rsv1, Opcode: OpBinary}, []byte{0x00, 0x06, 0x00, 0xf9, 0xff, 'a', 'b', 'c', 'd', 'e', 'f', 0x00}),
			peerFrame(toServer, Header{Fin: true, Opcode: OpClose}, []byte{0x03, 0xe8}),
			peerFrame(toServer, Header{Fin: true, Opcode: OpClose}, []byte{0x03, 0xe9})), true, false},
		{"close after compressed", frames(
			peerFrame(toClient, Header{Fin: true, Rsv: Rsv1, Opcode: OpBinary}, hello),
			peerFrame(toClient, Header{Fin: true, Opcode: OpClose}, []byte{0x03, 0xe8})), false, true},
	}
}

// checkSeedFile compares testdata/fuzz/<target>/<name> with the seed in the
// code; WS13_UPDATE_SEEDS=1 writes it.
func checkSeedFile(t *testing.T, target, name, body string) {
	t.Helper()
	path := "testdata/fuzz/" + target + "/" + name
	want := "go test fuzz v1\n" + body
	if os.Getenv("WS13_UPDATE_SEEDS") != "" {
		if err := os.MkdirAll("testdata/fuzz/"+target, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	got, err := os.ReadFile(path)
	if err != nil || string(got) != want {
		t.Errorf("%s differs from the seed in the code (WS13_UPDATE_SEEDS=1 rewrites it): %v", path, err)
	}
}

// AppendMessage with a buffer that is full (len == cap) and longer than
// twice the read limit, reading a compressed message: the buffer must grow
// by the room the message needs, not to a total capacity derived from the
// limit alone, which would leave it with no room at all: AppendMessage
// would spin for ever (no context or Close ends it), allocating at every
// turn. The limit still bounds the message itself.
func TestDeflateAppendToFullBuffer(t *testing.T) {
	for _, takeover := range []bool{false, true} {
		const limit = 1024
		c, p := hostileConn(t, false, withReadLimit(limit), withDeflate(takeover))
		msg := bytes.Repeat([]byte("hello, world "), 40) // 520 bytes
		p.conn.Write(peerFrame(p, Header{Fin: true, Rsv: Rsv1, Opcode: OpBinary}, deflateRaw(t, msg)))

		prefix := make([]byte, 4096) // len == cap == 4096 > 2*(limit+1)
		for i := range prefix {
			prefix[i] = byte(i)
		}
		type result struct {
			got []byte
			err error
		}
		done := make(chan result, 1)
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			_, got, err := c.AppendMessage(ctx, prefix[:len(prefix):len(prefix)])
			done <- result{got, err}
		}()
		select {
		case r := <-done:
			if r.err != nil {
				t.Fatalf("takeover=%v: AppendMessage: %v", takeover, r.err)
			}
			if len(r.got) != len(prefix)+len(msg) || !bytes.Equal(r.got[:len(prefix)], prefix) || !bytes.Equal(r.got[len(prefix):], msg) {
				t.Fatalf("takeover=%v: got %d bytes", takeover, len(r.got))
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("takeover=%v: AppendMessage still running after 5 s, past its 2 s context", takeover)
		}
		c.CloseNow()
	}
	c, p := hostileConn(t, false, withReadLimit(1024), withDeflate(false))
	p.conn.Write(peerFrame(p, Header{Fin: true, Rsv: Rsv1, Opcode: OpBinary}, deflateRaw(t, make([]byte, 2000))))
	if _, _, err := c.AppendMessage(context.Background(), make([]byte, 4096)); !errors.Is(err, ErrMessageTooBig) {
		t.Errorf("a 2000-byte message past a 1024-byte limit, appended to 4 KiB: %v", err)
	}
}

// The documented use of AppendMessage's result as the next buffer, to
// collect several compressed messages in one slice: once the slice holds
// more than twice the read limit, growing it to a capacity derived from
// the limit would leave it full (same cause as above).
func TestDeflateAppendAccumulates(t *testing.T) {
	const limit = 1024
	c, p := hostileConn(t, false, withReadLimit(limit), withDeflate(false))
	msg := bytes.Repeat([]byte("hello, world "), 40) // 520 bytes
	const count = 12
	for range count {
		p.conn.Write(peerFrame(p, Header{Fin: true, Rsv: Rsv1, Opcode: OpBinary}, deflateRaw(t, msg)))
	}
	done := make(chan error, 1)
	var all []byte
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		var err error
		for range count {
			if _, all, err = c.AppendMessage(ctx, all); err != nil {
				break
			}
		}
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
		if want := bytes.Repeat(msg, count); !bytes.Equal(all, want) {
			t.Fatalf("got %d bytes, want %d", len(all), len(want))
		}
	case <-time.After(5 * time.Second):
		t.Fatal("AppendMessage still running after 5 s, past its 2 s context")
	}
}

// A peer that answers Close with a malformed close frame (a code that may
// not be sent, §7.4) makes Close fail the connection with 1002; Close must
// not report that the peer sent no close frame in time. Nor when the
// application's reader meets the frame on a client, which then waits for
// a server's FIN (§7.1.1) that this server, keeping TCP open, never sends:
// Close's deadline ends that wait, and Close must still learn of the
// failure from the reader rather than blame a slow peer.
func TestCloseAnsweredWithABadCloseFrame(t *testing.T) {
	for _, appReads := range []bool{false, true} {
		name := "Close reads"
		if appReads {
			name = "the application reads"
		}
		t.Run(name, func(t *testing.T) {
			both(t, func(t *testing.T, isServer bool) {
				c, p := hostileConn(t, isServer, func(cfg *connConfig) { cfg.closeTimeout = 500 * time.Millisecond })
				go func() {
					if p.skipToClose() {
						body := []byte{0x03, 0xed} // 1005: local only, never on the wire
						p.conn.Write(peerFrame(p, Header{Fin: true, Opcode: OpClose}, body))
						io.Copy(io.Discard, p.br)
					}
				}()
				readEnd := make(chan error, 1)
				if appReads {
					go func() {
						_, _, err := c.Read(context.Background())
						readEnd <- err
					}()
					// Close must find the reader in place: it is the one to
					// meet the bad frame.
					waitFor(t, "the reader to hold the read lock", func() bool { return c.readLock.state.Load() != lockFree })
				}
				err := c.Close(StatusNormalClosure, "")
				if err == nil || strings.Contains(err.Error(), "in time") || CloseStatus(err) != StatusProtocolError {
					t.Errorf("Close = %v (CloseStatus %d); the peer's close frame was invalid, and the connection failed with 1002", err, CloseStatus(err))
				}
				if appReads {
					if err := <-readEnd; CloseStatus(err) != StatusProtocolError {
						t.Errorf("Read = %v (CloseStatus %d), want the ProtocolError", err, CloseStatus(err))
					}
				}
			})
		})
	}
}
