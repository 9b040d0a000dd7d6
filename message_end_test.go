package websocket

// Where a message ends, and where it does not: a stream that ends inside a
// message (after a non-final fragment, or with its last bytes) is no
// message, and a Reader whose message another read skipped is stale, not
// at the message's end.

import (
	"bytes"
	"compress/flate"
	"context"
	"errors"
	"io"
	"net"
	"testing"
	"time"
)

// A Reader whose message was skipped before it read it all must not report
// the truncated message as complete (io.EOF): skipped by a later read that
// then gave up waiting for the next message, it is stale, as Reader's doc
// says; skipped by Close (from any goroutine, while the Reader is in use),
// it reports the end of the connection.
func TestReaderOfASkippedMessageIsNotAtItsEnd(t *testing.T) {
	skips := []struct {
		name string
		skip func(t *testing.T, c *Conn, p *rawPeer)
		want func(err error) bool
	}{
		{"by an interrupted read", func(t *testing.T, c *Conn, p *rawPeer) {
			short, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
			defer cancel()
			if _, _, err := c.Read(short); !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("Read = %v, want DeadlineExceeded", err)
			}
		}, func(err error) bool { return errors.Is(err, ErrStaleReader) }},
		{"by Close", closeWithAnsweringPeer, func(err error) bool { return err != nil && err != io.EOF }},
	}
	for _, tt := range skips {
		t.Run(tt.name, func(t *testing.T) {
			both(t, func(t *testing.T, isServer bool) {
				c, p := hostileConn(t, isServer)
				msg := []byte("0123456789abcdef")
				r := readerPartway(t, c, p, peerFrame(p, Header{Fin: true, Opcode: OpBinary}, msg))
				tt.skip(t, c, p)
				if n, err := r.Read(make([]byte, 4)); !tt.want(err) {
					t.Errorf("reader after 4 of %d bytes: n=%d err=%v", len(msg), n, err)
				}
			})
		})
	}
}

// A Reader whose message Close takes from it, reading past the rest of it
// and past the messages after it on its way to the peer's close frame,
// reports the end of the connection, as a read that waits meanwhile does
// (Close's doc), not ErrStaleReader: that says the application itself
// began the next message (Reader's doc), which it did not.
func TestReaderOfAMessageCloseReadPastReportsTheEnd(t *testing.T) {
	both(t, func(t *testing.T, isServer bool) {
		c, p := hostileConn(t, isServer)
		first := peerFrame(p, Header{Fin: true, Opcode: OpBinary}, []byte("0123456789abcdef"))
		second := peerFrame(p, Header{Fin: true, Opcode: OpText}, []byte("a message after it"))
		r := readerPartway(t, c, p, append(first, second...))
		closeWithAnsweringPeer(t, c, p)
		var ce *CloseError
		if n, err := r.Read(make([]byte, 4)); !errors.As(err, &ce) || ce.Code != StatusNormalClosure {
			t.Errorf("reader after 4 bytes, then Close: n=%d err=%v; want the peer's *CloseError (1000)", n, err)
		}
	})
}

// Only the application's reads make a Reader stale (ErrStaleReader says the
// application began the next message), not Close reading past messages on
// its way to the peer's close frame: a Reader whose message the
// application skipped, reading the next one, stays stale once Close has
// ended the connection, and a Reader that read its message whole, with
// Close reading past a later one, stays at its end (io.EOF).
func TestReaderIsStaleOnlyOnceTheApplicationBeginsTheNextMessage(t *testing.T) {
	t.Run("the application read the next message, then Close", func(t *testing.T) {
		both(t, func(t *testing.T, isServer bool) {
			c, p := hostileConn(t, isServer)
			first := peerFrame(p, Header{Fin: true, Opcode: OpBinary}, []byte("0123456789abcdef"))
			second := peerFrame(p, Header{Fin: true, Opcode: OpText}, []byte("next"))
			r := readerPartway(t, c, p, append(first, second...))
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			defer cancel()
			if typ, got, err := c.Read(ctx); err != nil || typ != MessageText || string(got) != "next" {
				t.Fatalf("the next message: %v %q, %v; want text \"next\"", typ, got, err)
			}
			closeWithAnsweringPeer(t, c, p)
			if n, err := r.Read(make([]byte, 4)); !errors.Is(err, ErrStaleReader) {
				t.Errorf("reader after 4 bytes, the next message and Close: n=%d err=%v; want ErrStaleReader", n, err)
			}
		})
	})
	t.Run("read whole, then Close read past the next message", func(t *testing.T) {
		both(t, func(t *testing.T, isServer bool) {
			c, p := hostileConn(t, isServer)
			msg := "0123456789abcdef"
			first := peerFrame(p, Header{Fin: true, Opcode: OpBinary}, []byte(msg))
			second := peerFrame(p, Header{Fin: true, Opcode: OpText}, []byte("a message after it"))
			r := readerPartway(t, c, p, append(first, second...))
			if rest, err := io.ReadAll(r); err != nil || string(rest) != msg[4:] {
				t.Fatalf("the rest of the message: %q, %v", rest, err)
			}
			closeWithAnsweringPeer(t, c, p)
			if n, err := r.Read(make([]byte, 4)); err != io.EOF {
				t.Errorf("reader at its end, then Close: n=%d err=%v; want io.EOF", n, err)
			}
		})
	})
}

// A Reader's Read that waits for Close, reading for the peer's close frame
// from another goroutine, finds the Reader where a Read made once Close
// has returned does: at the end of its message (io.EOF) if it read it
// whole, stale (ErrStaleReader) if the application read the next message.
// It returned the peer's close instead, as if the Reader were still inside
// its message, whenever the Read happened to come during the handshake.
func TestReaderReadWaitingForCloseKeepsItsPlace(t *testing.T) {
	for _, before := range []string{"read whole", "next message read"} {
		t.Run(before, func(t *testing.T) {
			both(t, func(t *testing.T, isServer bool) {
				c, p := hostileConn(t, isServer)
				first := peerFrame(p, Header{Fin: true, Opcode: OpBinary}, []byte("0123456789abcdef"))
				second := peerFrame(p, Header{Fin: true, Opcode: OpText}, []byte("next"))
				r := readerPartway(t, c, p, append(first, second...))
				want := io.EOF
				if before == "read whole" {
					if _, err := io.ReadAll(r); err != nil {
						t.Fatal(err)
					}
				} else {
					want = ErrStaleReader
					ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
					defer cancel()
					if _, _, err := c.Read(ctx); err != nil {
						t.Fatal(err)
					}
				}
				closed := make(chan error, 1)
				go func() { closed <- c.Close(StatusNormalClosure, "") }()
				if _, _, ok := peerReadClose(p); !ok {
					t.Fatal("the peer got no close frame")
				}
				waitFor(t, "Close to hold readLock", func() bool { return c.readLock.state.Load() != lockFree })
				readErr := make(chan error, 1)
				go func() {
					_, err := r.Read(make([]byte, 4))
					readErr <- err
				}()
				waitFor(t, "the Read to wait for readLock", func() bool { return c.readLock.state.Load() == lockQueued })
				p.conn.Write(peerFrame(p, Header{Fin: true, Opcode: OpClose}, closeBody(StatusNormalClosure, "")))
				p.conn.Close()
				if err := <-readErr; err != want {
					t.Errorf("Read waiting while Close reads the peer's close frame: %v; want %v", err, want)
				}
				if err := <-closed; err != nil {
					t.Errorf("Close: %v", err)
				}
				if _, err := r.Read(make([]byte, 4)); err != want {
					t.Errorf("Read once Close has returned: %v; want %v", err, want)
				}
			})
		})
	}
}

// The connection ends (TCP FIN, no close frame) right after a non-final
// fragment. The message was never finished: the read must fail with 1006,
// not return the first fragment as a whole message.
func TestEOFAfterNonFinalFragmentIsNotAMessage(t *testing.T) {
	both(t, func(t *testing.T, isServer bool) {
		for _, via := range []string{"Read", "Reader"} {
			t.Run(via, func(t *testing.T) {
				c, p := hostileConn(t, isServer)
				if _, err := p.conn.Write(peerFrame(p, Header{Fin: false, Opcode: OpBinary}, []byte("partial"))); err != nil {
					t.Fatal(err)
				}
				p.conn.Close()
				ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
				defer cancel()
				var msg []byte
				var err error
				if via == "Read" {
					_, msg, err = c.Read(ctx)
				} else {
					var r io.Reader
					if _, r, err = c.Reader(ctx); err == nil {
						msg, err = io.ReadAll(r)
					}
				}
				if err == nil {
					t.Fatalf("got a complete message %q from an unfinished one (FIN=0, then the connection ended)", msg)
				}
				if CloseStatus(err) != StatusAbnormal {
					t.Errorf("err = %v (status %v), want status 1006", err, CloseStatus(err))
				}
			})
		}
	})
}

// The same with permessage-deflate: a compressed first fragment, then the
// end of the stream.
func TestEOFAfterNonFinalCompressedFragmentIsNotAMessage(t *testing.T) {
	both(t, func(t *testing.T, isServer bool) {
		c, p := hostileConn(t, isServer, withDeflate(false))
		var z bytes.Buffer
		fw, _ := flate.NewWriter(&z, flate.BestSpeed)
		fw.Write([]byte("partial"))
		fw.Flush()
		body := bytes.TrimSuffix(z.Bytes(), []byte{0, 0, 0xff, 0xff})
		if _, err := p.conn.Write(peerFrame(p, Header{Fin: false, Rsv: Rsv1, Opcode: OpBinary}, body)); err != nil {
			t.Fatal(err)
		}
		p.conn.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		_, msg, err := c.Read(ctx)
		if err == nil {
			t.Fatalf("got a complete message %q from an unfinished one (FIN=0, then the connection ended)", msg)
		}
		if CloseStatus(err) != StatusAbnormal {
			t.Errorf("err = %v (status %v), want status 1006", err, CloseStatus(err))
		}
	})
}

// scriptConn is a net.Conn that reads a fixed script of chunks, one per
// Read, and returns io.EOF together with the last one, as io.Reader
// allows and crypto/tls does when a close_notify follows the data.
type scriptConn struct {
	net.Conn // nil: only what is overridden is used
	chunks   [][]byte
}

func (s *scriptConn) Read(p []byte) (int, error) {
	if len(s.chunks) == 0 {
		return 0, io.EOF
	}
	n := copy(p, s.chunks[0])
	s.chunks[0] = s.chunks[0][n:]
	if len(s.chunks[0]) == 0 {
		s.chunks = s.chunks[1:]
	}
	if len(s.chunks) == 0 {
		return n, io.EOF
	}
	return n, nil
}
func (s *scriptConn) Write(p []byte) (int, error)      { return len(p), nil }
func (s *scriptConn) Close() error                     { return nil }
func (s *scriptConn) SetDeadline(time.Time) error      { return nil }
func (s *scriptConn) SetReadDeadline(time.Time) error  { return nil }
func (s *scriptConn) SetWriteDeadline(time.Time) error { return nil }

// A read that returns the last bytes of a non-final fragment together with
// io.EOF ends the stream inside the message: the message is not complete.
func TestEOFWithLastBytesOfNonFinalFragment(t *testing.T) {
	payload := bytes.Repeat([]byte("x"), 8000) // large: read straight into the caller's buffer
	h := AppendHeader(nil, Header{Fin: false, Opcode: OpBinary, Length: int64(len(payload))})
	nc := &scriptConn{chunks: [][]byte{h, payload}}
	c := newConn(nc, nil, connConfig{closeTimeout: time.Second})
	defer c.CloseNow()
	done := make(chan struct{})
	var msg []byte
	var err error
	go func() {
		defer close(done)
		_, msg, err = c.Read(context.Background())
	}()
	select {
	case <-done:
	case <-time.After(3 * time.Second):
		t.Fatal("Read hung")
	}
	if err == nil {
		t.Fatalf("got a complete %d-byte message from an unfinished one (FIN=0, then the stream ended)", len(msg))
	}
	if CloseStatus(err) != StatusAbnormal {
		t.Errorf("err = %v (status %v), want status 1006", err, CloseStatus(err))
	}
}

// A later read that gives up in the middle of skipping the rest of a
// Reader's message still takes the message from that Reader: what the
// Reader would read next is no longer what follows what it read, the skip
// having discarded the bytes between. It is stale, as Reader's doc says,
// and must not go on to return the message's tail, with a hole in it, and
// then io.EOF as if the message were whole.
func TestReaderOfAPartlySkippedMessageIsStale(t *testing.T) {
	both(t, func(t *testing.T, isServer bool) {
		c, p := hostileConn(t, isServer)
		msg := []byte("0123456789abcdef")
		wire := peerFrame(p, Header{Fin: true, Opcode: OpBinary}, msg)
		tail := len(msg) - 10 // sent only after the skip gave up
		r := readerPartway(t, c, p, wire[:len(wire)-tail])
		short, cancelShort := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancelShort()
		if _, _, err := c.Read(short); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Read = %v, want DeadlineExceeded while the message's tail is missing", err)
		}
		next := peerFrame(p, Header{Fin: true, Opcode: OpText}, []byte("next"))
		if _, err := p.conn.Write(append(wire[len(wire)-tail:], next...)); err != nil {
			t.Fatal(err)
		}
		if got, err := io.ReadAll(r); !errors.Is(err, ErrStaleReader) {
			t.Errorf("the Reader after 4 bytes and a cut skip read %q, %v; want ErrStaleReader", got, err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		if typ, got, err := c.Read(ctx); err != nil || typ != MessageText || string(got) != "next" {
			t.Errorf("the next message: %v %q, %v; want text \"next\"", typ, got, err)
		}
	})
}

// readerPartway has p send wire, and returns a Reader of the first message
// on c (under a context of 3 s) once it has read 4 of its bytes.
func readerPartway(t *testing.T, c *Conn, p *rawPeer, wire []byte) io.Reader {
	t.Helper()
	if _, err := p.conn.Write(wire); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	t.Cleanup(cancel)
	_, r, err := c.Reader(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(r, make([]byte, 4)); err != nil {
		t.Fatal(err)
	}
	return r
}

// closeWithAnsweringPeer closes c with 1000 while the peer answers our
// close frame, then closes TCP.
func closeWithAnsweringPeer(t *testing.T, c *Conn, p *rawPeer) {
	go func() {
		if _, _, ok := peerReadClose(p); ok {
			p.conn.Write(peerFrame(p, Header{Fin: true, Opcode: OpClose}, closeBody(StatusNormalClosure, "")))
		}
		p.conn.Close()
	}()
	if err := c.Close(StatusNormalClosure, ""); err != nil {
		t.Fatalf("Close: %v", err)
	}
}
