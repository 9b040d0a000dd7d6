package interop

// The wire tap's relay. ws13 and the peer do not talk directly: each plain
// ws:// connection runs through a relay on 127.0.0.1 that copies bytes both
// ways and feeds them to the connection's sniffer on the way. ws13 gets the
// *net.TCPConn of an ordinary socket, on the accepting side (its
// http.Server accepts from the relay) and on the dialing side (its
// NetDialContext dials the relay), so it reads through its raw-socket path
// (readbuf_unix.go) exactly as it does in production. A wrapper around its
// net.Conn would have sent every read through the generic path instead.
//
// Each direction is fed to the sniffer before it is passed on, so whatever
// ws13 or the peer does in answer to some bytes, the tap has those bytes
// already.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ws13/websocket"
)

// relay copies between ws13's end and the peer's end until both directions
// are done. A FIN is passed on as a FIN (CloseWrite), so that closing
// handshakes behave as on a direct connection; anything else ends both.
func relay(ws13, peer *net.TCPConn, s *sniffer) {
	var wg sync.WaitGroup
	pipe := func(dst, src *net.TCPConn, out bool) {
		defer wg.Done()
		buf := make([]byte, 64<<10)
		for {
			n, err := src.Read(buf)
			if n > 0 {
				s.feed(out, buf[:n])
				if _, werr := dst.Write(buf[:n]); werr != nil {
					// The receiver is gone: so is the connection.
					src.SetLinger(0)
					src.Close()
					dst.Close()
					return
				}
			}
			if errors.Is(err, io.EOF) {
				dst.CloseWrite()
				return
			}
			if err != nil {
				dst.SetLinger(0) // a reset is passed on as a reset
				dst.Close()
				src.Close()
				return
			}
		}
	}
	wg.Add(2)
	go pipe(peer, ws13, true)
	go pipe(ws13, peer, false)
	wg.Wait()
	ws13.Close()
	peer.Close()
}

// relayDialer is a DialOptions.NetDialContext that puts a relay, tapped by
// s, between ws13 and the address it dials. ws13 gets the *net.TCPConn of
// its own connection to the relay.
func relayDialer(s *sniffer) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		var d net.Dialer
		// The peer first, so that a refusal is ws13's error as it would be.
		pc, err := d.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			pc.Close()
			return nil, err
		}
		defer ln.Close()
		wc, err := d.DialContext(ctx, "tcp", ln.Addr().String())
		if err != nil {
			pc.Close()
			return nil, err
		}
		// The kernel completed the connection: Accept returns at once.
		rc, err := ln.Accept()
		if err != nil {
			pc.Close()
			wc.Close()
			return nil, err
		}
		go relay(rc.(*net.TCPConn), pc.(*net.TCPConn), s)
		return wc, nil
	}
}

// tapFront is a relay in front of one of ws13's listeners: the peer
// connects to its address, and each connection is relayed, with a sniffer
// of its own, to the listener behind it.
type tapFront struct {
	ln      net.Listener // where peers connect
	backend string       // ws13's http.Server
	taps    *tapTable
}

func (f *tapFront) serve() {
	for {
		c, err := f.ln.Accept()
		if err != nil {
			return
		}
		go f.handle(c.(*net.TCPConn))
	}
}

func (f *tapFront) handle(peer *net.TCPConn) {
	c, err := net.Dial("tcp", f.backend)
	if err != nil {
		peer.Close()
		return
	}
	ws13 := c.(*net.TCPConn)
	// The server sees the relay's end of this connection as the request's
	// RemoteAddr. It is known before a byte is relayed, so the tap is
	// registered before the request can reach a handler.
	s := newSniffer()
	key := ws13.LocalAddr().String()
	f.taps.add(key, s, peer)
	defer f.taps.remove(key)
	relay(ws13, peer, s)
}

// tapTable finds the sniffer of a request's connection, and ends the
// relayed connections when the server stops.
type tapTable struct {
	mu    sync.Mutex
	taps  map[string]*sniffer
	conns map[string]net.Conn // the peers' ends
}

func newTapTable() *tapTable {
	return &tapTable{taps: map[string]*sniffer{}, conns: map[string]net.Conn{}}
}

func (t *tapTable) add(key string, s *sniffer, c net.Conn) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.taps[key], t.conns[key] = s, c
}

func (t *tapTable) remove(key string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.taps, key)
	delete(t.conns, key)
}

// of returns the sniffer of r's connection, or nil if it did not come
// through a tapFront.
func (t *tapTable) of(r *http.Request) *sniffer {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.taps[r.RemoteAddr]
}

// closeAll ends every relayed connection.
func (t *tapTable) closeAll() {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, c := range t.conns {
		c.Close()
	}
}

// listenTapped starts a tapFront on 127.0.0.1 for the listener behind it
// and returns its address.
func listenTapped(backend net.Listener, taps *tapTable) (net.Listener, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("tap: %w", err)
	}
	f := &tapFront{ln: ln, backend: backend.Addr().String(), taps: taps}
	go f.serve()
	return ln, nil
}

// TestTapKeepsTCPConn: through the relays, ws13 holds *net.TCPConn on both
// sides, and both taps see the handshake and the frames.
func TestTapKeepsTCPConn(t *testing.T) {
	srv, stop, err := startOurServer()
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	dialTap := newSniffer()
	var dialed net.Conn
	dial := relayDialer(dialTap)
	opts := &websocket.DialOptions{NetDialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := dial(ctx, network, addr)
		dialed = c
		return c, err
	}}
	acc := srv.expect("tap")
	client, _, err := websocket.Dial(ctx, srv.base+"/ws/plain?id=tap", opts)
	if err != nil {
		t.Fatal(err)
	}
	defer client.CloseNow()
	if _, ok := dialed.(*net.TCPConn); !ok {
		t.Errorf("ws13's Dial got a %T", dialed)
	}
	a := <-acc
	if a.err != nil {
		t.Fatal(a.err)
	}
	defer a.c.CloseNow()
	if err := a.check(false); err != nil {
		t.Fatal(err)
	}

	msg := []byte("through two relays")
	if err := client.Write(ctx, websocket.MessageBinary, msg); err != nil {
		t.Fatal(err)
	}
	if _, got, err := a.c.Read(ctx); err != nil || !bytes.Equal(got, msg) {
		t.Fatalf("server read %q, %v", got, err)
	}
	if err := a.c.Write(ctx, websocket.MessageText, msg); err != nil {
		t.Fatal(err)
	}
	if _, got, err := client.Read(ctx); err != nil || !bytes.Equal(got, msg) {
		t.Fatalf("client read %q, %v", got, err)
	}
	for _, tc := range []struct {
		name string
		s    *sniffer
		out  byte // the opcode ws13 on that side wrote
	}{{"dial side", dialTap, 2}, {"accept side", a.s, 1}} {
		if h := tc.s.responseHead(); !strings.HasPrefix(h, "HTTP/1.1 101 ") {
			t.Errorf("%s: response head %q", tc.name, h)
		}
		out, in := tc.s.since(0, dataOut), tc.s.since(0, dataIn)
		if len(out) != 1 || out[0].opcode != tc.out || out[0].length != int64(len(msg)) ||
			len(in) != 1 || in[0].opcode != 3-tc.out || in[0].length != int64(len(msg)) {
			t.Errorf("%s: out %+v, in %+v", tc.name, out, in)
		}
	}
}
