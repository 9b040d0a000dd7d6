package websocket

import (
	"bytes"
	"compress/flate"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// checkTimeout fails the test unless err is what a net.Conn returns when a
// deadline has passed.
func checkTimeout(t *testing.T, what string, err error) {
	t.Helper()
	var ne net.Error
	if !errors.Is(err, os.ErrDeadlineExceeded) || !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("%s: %v, want a timeout", what, err)
	}
}

// readN reads exactly n bytes from r with a buffer of size bufSize.
func readN(t *testing.T, r io.Reader, n, bufSize int) []byte {
	t.Helper()
	got := make([]byte, 0, n)
	buf := make([]byte, bufSize)
	for len(got) < n {
		k, err := r.Read(buf[:min(bufSize, n-len(got))])
		got = append(got, buf[:k]...)
		if err != nil {
			t.Fatalf("after %d of %d bytes: %v", len(got), n, err)
		}
	}
	return got
}

// A few MB cross both ways at once: one 4 MB message one way (over the
// default read limit, which NetConn raises), 1000-byte messages the other.
// Closing one side reads as io.EOF on the other.
func TestNetConnCopy(t *testing.T) {
	server, client := connPair(t)
	ctx := context.Background()
	sn, cn := NetConn(ctx, server, MessageBinary), NetConn(ctx, client, MessageBinary)
	a := testPayload(4<<20+3, false)
	b := bytes.Repeat([]byte("0123456789abcdefghijklmnopqrstuvwxyz"), 90000)

	serverGot := make(chan []byte, 1)
	serverErr := make(chan error, 2)
	go func() {
		data, err := io.ReadAll(sn)
		serverGot <- data
		serverErr <- err
	}()
	go func() {
		// Hide ReaderFrom and WriterTo, so that the buffer sets the size
		// of the messages.
		_, err := io.CopyBuffer(struct{ io.Writer }{sn}, struct{ io.Reader }{bytes.NewReader(b)}, make([]byte, 1000))
		serverErr <- err
	}()
	clientErr := make(chan error, 1)
	go func() {
		_, err := io.Copy(cn, bytes.NewReader(a))
		clientErr <- err
	}()
	gotB := make([]byte, len(b))
	if _, err := io.ReadFull(cn, gotB); err != nil || !bytes.Equal(gotB, b) {
		t.Fatalf("client read: %v (equal: %v)", err, bytes.Equal(gotB, b))
	}
	if err := <-clientErr; err != nil {
		t.Fatalf("client write: %v", err)
	}
	if err := <-serverErr; err != nil {
		t.Fatalf("server write: %v", err)
	}
	if err := cn.Close(); err != nil {
		t.Fatalf("client Close: %v", err)
	}
	if got := <-serverGot; !bytes.Equal(got, a) {
		t.Fatalf("server read %d bytes, want %d", len(got), len(a))
	}
	if err := <-serverErr; err != nil {
		t.Fatalf("server ReadAll: %v", err)
	}
	if n, err := sn.Read(make([]byte, 10)); n != 0 || err != io.EOF {
		t.Errorf("Read after the end = %d, %v; want io.EOF again", n, err)
	}
}

// Messages smaller and larger than Read's buffer, empty ones included, make
// one stream.
func TestNetConnMessageSizes(t *testing.T) {
	sizes := []int{0, 1, 125, 126, 0, 4095, 4096, 4097, 65536, 200000}
	var msgs [][]byte
	var want []byte
	for i, size := range sizes {
		msg := testPayload(size, true)
		if i%2 == 0 {
			msg = bytes.ToUpper(msg)
		}
		msgs = append(msgs, msg)
		want = append(want, msg...)
	}
	for _, bufSize := range []int{3, 4096, 1 << 20} {
		t.Run(byteSize(bufSize), func(t *testing.T) {
			server, client := connPair(t)
			ctx := context.Background()
			nc := NetConn(ctx, server, MessageText)
			go func() {
				for _, msg := range msgs {
					if err := client.Write(ctx, MessageText, msg); err != nil {
						return
					}
				}
			}()
			if got := readN(t, nc, len(want), bufSize); !bytes.Equal(got, want) {
				t.Fatal("the stream differs from the messages sent")
			}
		})
	}
}

// A read deadline that passes in the middle of a frame's payload cuts the
// Read; after the deadline is cleared, the next Read goes on from the very
// byte where the cut one stopped (the peer masks on the server's side, so
// the masking position must carry on too).
func TestNetConnReadDeadlineMidFrame(t *testing.T) {
	both(t, func(t *testing.T, isServer bool) {
		c, p := hostileConn(t, isServer)
		nc := NetConn(context.Background(), c, MessageBinary)
		msg := testPayload(10000, false)
		wire := peerFrame(p, Header{Fin: true, Opcode: OpBinary}, msg)
		const later = 6000 // payload bytes sent after the deadline
		cut := len(wire) - later
		if _, err := p.conn.Write(wire[:cut]); err != nil {
			t.Fatal(err)
		}
		got := readN(t, nc, len(msg)-later, 1000)

		// The Read blocks; the deadline passes while it waits.
		start := time.Now()
		nc.SetReadDeadline(start.Add(50 * time.Millisecond))
		n, err := nc.Read(make([]byte, 1000))
		if n != 0 {
			t.Fatalf("cut Read returned %d bytes", n)
		}
		checkTimeout(t, "Read past the deadline", err)
		if waited := time.Since(start); waited < 40*time.Millisecond {
			t.Errorf("Read timed out after %v, before its deadline", waited)
		}
		_, err = nc.Read(make([]byte, 1000))
		checkTimeout(t, "Read with the deadline still past", err)

		nc.SetReadDeadline(time.Time{})
		if _, err := p.conn.Write(wire[cut:]); err != nil {
			t.Fatal(err)
		}
		if _, err := p.conn.Write(peerFrame(p, Header{Fin: true, Opcode: OpBinary}, []byte("next"))); err != nil {
			t.Fatal(err)
		}
		got = append(got, readN(t, nc, later+4, 1000)...)
		if want := append(msg, "next"...); !bytes.Equal(got, want) {
			t.Fatalf("bytes lost or changed across the deadline (%d bytes, want %d)", len(got), len(want))
		}
	})
}

// The same across fragments sent with Writer: a deadline set in the past
// by another goroutine cuts a Read waiting between fragment 1 and fragment
// 2, and one waiting between messages; nothing is lost.
func TestNetConnReadDeadlineBetweenFragments(t *testing.T) {
	server, client := connPair(t)
	ctx := context.Background()
	nc := NetConn(ctx, server, MessageBinary)

	// Nothing to read yet: a deadline cuts the wait for a message.
	nc.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
	_, err := nc.Read(make([]byte, 10))
	checkTimeout(t, "Read with nothing sent", err)
	nc.SetReadDeadline(time.Time{})

	part1 := testPayload(fragmentSize+1000, false) // large: sent as a fragment at once
	part2 := bytes.Repeat([]byte("second part "), 500)
	w, err := client.Writer(ctx, MessageBinary)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(part1); err != nil {
		t.Fatal(err)
	}
	got := readN(t, nc, len(part1), 4096)

	// Pending Read, cut by a deadline moved into the past by another goroutine.
	timer := time.AfterFunc(30*time.Millisecond, func() { nc.SetReadDeadline(time.Unix(1, 0)) })
	defer timer.Stop()
	_, err = nc.Read(make([]byte, 4096))
	checkTimeout(t, "Read between fragments", err)

	nc.SetReadDeadline(time.Time{})
	if _, err := w.Write(part2); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := client.Write(ctx, MessageBinary, []byte("tail")); err != nil {
		t.Fatal(err)
	}
	got = append(got, readN(t, nc, len(part2)+4, 4096)...)
	want := append(append(part1, part2...), "tail"...)
	if !bytes.Equal(got, want) {
		t.Fatalf("bytes lost or changed across the deadline (%d bytes, want %d)", len(got), len(want))
	}
}

// A deadline moved later while a Read waits applies to that Read. The move
// must come before the first deadline passes, and on a loaded machine the
// goroutine making it may be scheduled too late: such a round proves
// nothing, and is run again.
func TestNetConnReadDeadlineExtended(t *testing.T) {
	server, client := connPair(t)
	ctx := context.Background()
	nc := NetConn(ctx, server, MessageBinary)
	for round := 1; ; round++ {
		first := time.Now().Add(300 * time.Millisecond)
		nc.SetReadDeadline(first)
		movedInTime := make(chan bool, 1)
		done := make(chan struct{})
		go func() {
			defer close(done)
			time.Sleep(50 * time.Millisecond)
			nc.SetReadDeadline(time.Now().Add(10 * time.Second))
			movedInTime <- time.Now().Before(first)
			time.Sleep(400 * time.Millisecond)
			client.Write(ctx, MessageBinary, []byte("late"))
		}()
		buf := make([]byte, 10)
		n, err := nc.Read(buf)
		<-done
		if !<-movedInTime && round < 5 {
			if err != nil { // cut by the first deadline: "late" is still unread
				nc.SetReadDeadline(time.Time{})
				readN(t, nc, len("late"), 10)
			}
			continue
		}
		if err != nil || string(buf[:n]) != "late" {
			t.Fatalf("Read = %q, %v; want the data sent after the first deadline", buf[:n], err)
		}
		return
	}
}

// A deadline in the past fails Reads and Writes at once, and sends
// nothing; once cleared, both work.
func TestNetConnPastDeadline(t *testing.T) {
	server, client := connPair(t)
	ctx := context.Background()
	nc := NetConn(ctx, server, MessageBinary)
	nc.SetDeadline(time.Now().Add(-time.Second))
	for i := 0; i < 3; i++ {
		_, err := nc.Read(make([]byte, 10))
		checkTimeout(t, "Read", err)
		n, err := nc.Write([]byte("never sent"))
		if n != 0 {
			t.Fatalf("Write reported %d bytes", n)
		}
		checkTimeout(t, "Write", err)
	}
	// A deadline set again in the past, over one already past.
	nc.SetDeadline(time.Now().Add(-time.Minute))
	_, err := nc.Read(make([]byte, 10))
	checkTimeout(t, "Read", err)

	nc.SetDeadline(time.Time{})
	if n, err := nc.Write([]byte("sent")); n != 4 || err != nil {
		t.Fatalf("Write after clearing = %d, %v", n, err)
	}
	if _, msg, err := client.Read(ctx); err != nil || string(msg) != "sent" {
		t.Fatalf("peer read %q, %v; want only the message sent after clearing", msg, err)
	}
	if err := client.Write(ctx, MessageBinary, []byte("reply")); err != nil {
		t.Fatal(err)
	}
	if got := readN(t, nc, 5, 10); string(got) != "reply" {
		t.Fatalf("Read after clearing = %q", got)
	}
}

// A Write waiting for another message to finish is cut by its deadline and
// may be retried; a Write cut in the middle of its frame drops the
// connection, and later Writes say so rather than time out again.
func TestNetConnWriteDeadline(t *testing.T) {
	t.Run("waiting", func(t *testing.T) {
		server, client := connPair(t)
		ctx := context.Background()
		nc := NetConn(ctx, server, MessageBinary)
		w, err := server.Writer(ctx, MessageBinary) // holds the message lock
		if err != nil {
			t.Fatal(err)
		}
		nc.SetWriteDeadline(time.Now().Add(30 * time.Millisecond))
		_, err = nc.Write([]byte("waits"))
		checkTimeout(t, "Write waiting for a message", err)
		w.Write([]byte("first"))
		w.Close()
		nc.SetWriteDeadline(time.Time{})
		if _, err := nc.Write([]byte("second")); err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{"first", "second"} {
			if _, msg, err := client.Read(ctx); err != nil || string(msg) != want {
				t.Fatalf("peer read %q, %v; want %q", msg, err, want)
			}
		}
	})
	t.Run("mid-frame", func(t *testing.T) {
		server, _ := connPair(t) // the client does not read
		nc := NetConn(context.Background(), server, MessageBinary)
		big := make([]byte, 32<<20) // more than loopback's socket buffers hold
		nc.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
		n, err := nc.Write(big)
		if n != 0 {
			t.Errorf("Write reported %d bytes", n)
		}
		checkTimeout(t, "Write cut mid-frame", err)
		nc.SetWriteDeadline(time.Time{})
		_, err = nc.Write([]byte("more"))
		if !errors.Is(err, ErrClosed) || errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("Write after a torn frame: %v; want ErrClosed, not a timeout", err)
		}
	})
}

// The peer's close with 1000 or 1001, or with no code (1005, what a browser
// sends for close() without arguments), is the end of the stream; other
// codes come through as a *CloseError.
func TestNetConnPeerClose(t *testing.T) {
	for _, code := range []StatusCode{StatusNormalClosure, StatusGoingAway, StatusNoStatusRcvd, StatusInternalError, 4000} {
		t.Run(code.String(), func(t *testing.T) {
			reason := "bye"
			if code == StatusNoStatusRcvd {
				reason = "" // a close frame without a code has no reason either
			}
			server, client := connPair(t)
			nc := NetConn(context.Background(), server, MessageBinary)
			client.Write(context.Background(), MessageBinary, []byte("last"))
			closed := make(chan error, 1)
			go func() { closed <- client.Close(code, reason) }()
			if got := readN(t, nc, 4, 10); string(got) != "last" {
				t.Fatalf("Read = %q", got)
			}
			for i := 0; i < 2; i++ { // and the same again
				_, err := nc.Read(make([]byte, 10))
				var ce *CloseError
				switch {
				case code == StatusNormalClosure || code == StatusGoingAway || code == StatusNoStatusRcvd:
					if err != io.EOF {
						t.Fatalf("Read = %v, want io.EOF", err)
					}
				case !errors.As(err, &ce) || ce.Code != code || ce.Reason != reason:
					t.Fatalf("Read = %v, want a *CloseError with %v", err, code)
				}
			}
			if err := <-closed; err != nil {
				t.Fatalf("peer's Close: %v", err)
			}
			if err := nc.Close(); err != nil {
				t.Errorf("Close after the peer's: %v", err)
			}
		})
	}
}

// Close after the connection already ended (the peer vanished, or the
// NetConn failed it) returns nil, as a TCP connection's first Close does
// after the peer reset it: the end was Read's to report, and there is
// nothing left for Close to fail at. A second Close returns the same.
func TestNetConnCloseAfterAbnormalEnd(t *testing.T) {
	for _, end := range []string{"peer vanished", "unexpected type"} {
		t.Run(end, func(t *testing.T) {
			server, client := connPair(t)
			nc := NetConn(context.Background(), server, MessageBinary)
			if end == "peer vanished" {
				client.CloseNow()
			} else {
				go client.Write(context.Background(), MessageText, []byte("text"))
			}
			if _, err := nc.Read(make([]byte, 10)); err == nil || err == io.EOF {
				t.Fatalf("Read = %v, want the abnormal end", err)
			}
			for i := 0; i < 2; i++ {
				if err := nc.Close(); err != nil {
					t.Fatalf("Close %d after the end: %v, want nil", i+1, err)
				}
			}
		})
	}
}

// A message of the other type fails the connection with 1003.
func TestNetConnUnexpectedType(t *testing.T) {
	server, client := connPair(t)
	ctx := context.Background()
	nc := NetConn(ctx, server, MessageBinary)
	peerErr := make(chan error, 1)
	go func() {
		client.Write(ctx, MessageText, []byte("text"))
		_, _, err := client.Read(ctx)
		peerErr <- err
	}()
	_, err := nc.Read(make([]byte, 10))
	if !errors.Is(err, ErrUnexpectedMessageType) || CloseStatus(err) != StatusUnsupportedData {
		t.Fatalf("Read = %v, want ErrUnexpectedMessageType with 1003", err)
	}
	if _, again := nc.Read(make([]byte, 10)); again != err {
		t.Errorf("next Read = %v, want the same error", again)
	}
	if err := <-peerErr; CloseStatus(err) != StatusUnsupportedData {
		t.Errorf("peer's Read = %v, want its close with 1003", err)
	}
	if _, err := NetConn(ctx, server, MessageType(7)).Write([]byte("x")); err != ErrInvalidMessageType {
		t.Errorf("Write of an invalid type = %v", err)
	}
}

// A message of the other type fails the connection at once: the Read does
// not wait for a close frame from a peer that sends none, for the whole
// close timeout. A client waits for the server's FIN, as after any close,
// but no longer than its read deadline.
func TestNetConnUnexpectedTypeDoesNotWaitForThePeer(t *testing.T) {
	for _, side := range []string{"server", "client"} {
		t.Run(side, func(t *testing.T) {
			patient := connConfig{closeTimeout: time.Hour}
			server, client := connPairConfig(t, patient, patient)
			local, peer := server, client
			if side == "client" {
				local, peer = client, server
			}
			nc := NetConn(context.Background(), local, MessageBinary)
			// The peer writes a text message and then reads nothing: no
			// close frame comes back, and it does not close TCP.
			if err := peer.Write(context.Background(), MessageText, []byte("text")); err != nil {
				t.Fatal(err)
			}
			nc.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
			done := make(chan error, 1)
			go func() {
				_, err := nc.Read(make([]byte, 10))
				done <- err
			}()
			select {
			case err := <-done:
				if !errors.Is(err, ErrUnexpectedMessageType) || CloseStatus(err) != StatusUnsupportedData {
					t.Fatalf("Read = %v, want ErrUnexpectedMessageType with 1003", err)
				}
			case <-time.After(10 * time.Second):
				local.CloseNow()
				t.Fatal("Read still waiting for the peer")
			}
			// The close frame went out before the connection was dropped.
			_, _, err := peer.Read(context.Background())
			if CloseStatus(err) != StatusUnsupportedData {
				t.Errorf("peer's Read = %v, want the close with 1003", err)
			}
		})
	}
}

// The NetConn's context ends its Reads and Writes, but not the connection:
// Close still runs the closing handshake.
func TestNetConnContext(t *testing.T) {
	server, client := connPair(t)
	ctx, cancel := context.WithCancel(context.Background())
	nc := NetConn(ctx, server, MessageBinary)
	nc.SetReadDeadline(time.Now().Add(time.Hour)) // a child context is in use
	cancelled := make(chan struct{})
	time.AfterFunc(30*time.Millisecond, func() {
		cancel()
		close(cancelled)
	})
	if _, err := nc.Read(make([]byte, 10)); !errors.Is(err, context.Canceled) {
		t.Fatalf("Read = %v, want context.Canceled", err)
	}
	// The Read may return while cancel is still cancelling the children
	// of ctx, the Write's among them.
	<-cancelled
	nc.SetDeadline(time.Time{})
	if _, err := nc.Write([]byte("x")); !errors.Is(err, context.Canceled) {
		t.Fatalf("Write = %v, want context.Canceled", err)
	}
	peerErr := make(chan error, 1)
	go func() {
		_, _, err := client.Read(context.Background())
		peerErr <- err
	}()
	if err := nc.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := <-peerErr; CloseStatus(err) != StatusNormalClosure {
		t.Errorf("peer's Read = %v, want the close with 1000", err)
	}
}

// A context that ends by its own deadline ends the NetConn's life, which no
// deadline moved can undo: its errors are not timeouts, or a caller that
// retries on Timeout() would spin.
func TestNetConnContextDeadlineIsNoTimeout(t *testing.T) {
	server, _ := connPair(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	nc := NetConn(ctx, server, MessageBinary)
	_, readErr := nc.Read(make([]byte, 10))
	// The Read may return while ctx's end is still reaching the Write's
	// context, a child of it like the Read's.
	<-nc.(*netConn).wr.context().Done()
	nc.SetDeadline(time.Now().Add(time.Hour))
	_, writeErr := nc.Write([]byte("x"))
	for op, err := range map[string]error{"Read": readErr, "Write": writeErr} {
		var ne net.Error
		if !errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout() {
			t.Errorf("%s = %v, want context.DeadlineExceeded and no timeout", op, err)
		}
	}
}

// Close ends a Read in progress; afterwards everything fails with
// net.ErrClosed, and no goroutine is left.
func TestNetConnClose(t *testing.T) {
	checkLeaks(t)
	server, client := connPair(t)
	go func() { client.Read(context.Background()) }() // answers the close
	nc := NetConn(context.Background(), server, MessageBinary)
	nc.SetDeadline(time.Now().Add(time.Hour))
	readErr := make(chan error, 1)
	go func() {
		_, err := nc.Read(make([]byte, 10))
		readErr <- err
	}()
	time.Sleep(20 * time.Millisecond)
	if err := nc.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := <-readErr; !errors.Is(err, net.ErrClosed) {
		t.Errorf("Read in progress = %v, want net.ErrClosed", err)
	}
	if _, err := nc.Read(make([]byte, 10)); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Read = %v", err)
	}
	if _, err := nc.Write([]byte("x")); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Write = %v", err)
	}
	if err := nc.SetDeadline(time.Now()); err == nil {
		t.Error("SetDeadline after Close succeeded")
	}
	if err := nc.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

// A Read waiting when its deadline passes reports the timeout, even when a
// Write torn by its own deadline drops the connection at the same moment
// (nettest's PresentTimeout, with a Write stuck mid-frame); the next Read
// meets the closed connection.
func TestNetConnReadDeadlineBeatsTornWrite(t *testing.T) {
	for i := range 10 {
		server, _ := connPair(t) // the client reads nothing
		nc := NetConn(context.Background(), server, MessageBinary)
		readErr := make(chan error, 1)
		go func() {
			_, err := nc.Read(make([]byte, 10))
			readErr <- err
		}()
		go nc.Write(make([]byte, 32<<20))      // fills the socket buffers, then blocks mid-frame
		waitLocked(t, &nc.(*netConn).readLock) // the Read waits
		waitLocked(t, &server.frameLock)       // the Write holds the wire
		time.Sleep(20 * time.Millisecond)      // and is blocked on it
		nc.SetReadDeadline(aLongTimeAgo)
		nc.SetWriteDeadline(aLongTimeAgo)
		if err := <-readErr; !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("run %d: Read past its deadline = %v, want a timeout", i, err)
		}
		nc.SetReadDeadline(time.Time{})
		if _, err := nc.Read(make([]byte, 10)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("run %d: Read after the deadline moved = %v, want the connection's end", i, err)
		}
		server.CloseNow()
	}
}

// A Write or Read that begins as Close runs fails with net.ErrClosed, never
// with the context.Canceled of the deadline context Close cancels.
func TestNetConnOperationRacingClose(t *testing.T) {
	for i := range 200 {
		server, client := connPair(t)
		go func() {
			for {
				if _, _, err := client.Read(context.Background()); err != nil {
					return
				}
			}
		}()
		nc := NetConn(context.Background(), server, MessageBinary)
		writeErr := make(chan error, 1)
		spinning := make(chan struct{})
		go func() {
			for n := 0; ; n++ {
				if n == 100 {
					close(spinning)
				}
				// Empty writes send nothing: the loop spins through the
				// checks Close races with.
				if _, err := nc.Write(nil); err != nil {
					writeErr <- err
					return
				}
			}
		}()
		<-spinning
		readErr := make(chan error, 1)
		go func() {
			_, err := nc.Read(make([]byte, 1))
			readErr <- err
		}()
		nc.Close()
		if err := <-writeErr; !errors.Is(err, net.ErrClosed) {
			t.Fatalf("run %d: Write racing Close = %v, want net.ErrClosed", i, err)
		}
		if err := <-readErr; !errors.Is(err, net.ErrClosed) {
			t.Fatalf("run %d: Read racing Close = %v, want net.ErrClosed", i, err)
		}
	}
}

// Concurrent writers each send whole messages; two readers share the
// stream; deadlines, addresses and a final deadline that wakes the idle
// reader are used from other goroutines meanwhile (nettest's
// ConcurrentMethods and RacyRead, without x/net).
func TestNetConnConcurrent(t *testing.T) {
	server, client := connPair(t)
	ctx := context.Background()
	sn, cn := NetConn(ctx, server, MessageBinary), NetConn(ctx, client, MessageBinary)
	const writers, perWriter, size = 4, 100, 1000
	total := writers * perWriter * size

	var wg sync.WaitGroup
	for id := 0; id < writers; id++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			chunk := bytes.Repeat([]byte{byte('a' + id)}, size)
			for i := 0; i < perWriter; i++ {
				if _, err := cn.Write(chunk); err != nil {
					t.Errorf("writer %d: %v", id, err)
					return
				}
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; i < 50; i++ {
			cn.SetDeadline(time.Now().Add(time.Minute))
			sn.SetWriteDeadline(time.Now().Add(time.Minute))
			_, _ = cn.LocalAddr(), sn.RemoteAddr()
		}
	}()

	var got atomic.Int64
	var mu sync.Mutex
	counts := map[byte]int{}
	readers := make(chan error, 2)
	for r := 0; r < 2; r++ {
		go func() {
			buf := make([]byte, 700)
			for i := 0; i < total; i++ {
				n, err := sn.Read(buf)
				mu.Lock()
				for _, b := range buf[:n] {
					counts[b]++
				}
				mu.Unlock()
				if got.Add(int64(n)) == int64(total) {
					sn.SetReadDeadline(time.Unix(1, 0)) // wake the other reader
				}
				if err != nil {
					readers <- err
					return
				}
			}
			readers <- errors.New("reader did not stop")
		}()
	}
	for r := 0; r < 2; r++ {
		if err := <-readers; !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Errorf("reader ended with %v", err)
		}
	}
	wg.Wait()
	for id := 0; id < writers; id++ {
		if n := counts[byte('a'+id)]; n != perWriter*size {
			t.Errorf("writer %d: %d bytes arrived, want %d", id, n, perWriter*size)
		}
	}
}

// One writer's messages arrive whole and in order in the stream, whichever
// way Reads cut it.
func TestNetConnWritesWhole(t *testing.T) {
	server, client := connPair(t)
	ctx := context.Background()
	sn, cn := NetConn(ctx, server, MessageBinary), NetConn(ctx, client, MessageBinary)
	const writers, perWriter, size = 3, 50, 999
	errc := make(chan error, writers)
	for id := 0; id < writers; id++ {
		go func() {
			chunk := bytes.Repeat([]byte{byte('a' + id)}, size)
			for i := 0; i < perWriter; i++ {
				if _, err := cn.Write(chunk); err != nil {
					errc <- err
					return
				}
			}
			errc <- nil
		}()
	}
	stream := readN(t, sn, writers*perWriter*size, 4000)
	for i := 0; i < len(stream); i += size {
		if run := stream[i : i+size]; !bytes.Equal(run, bytes.Repeat(run[:1], size)) {
			t.Fatalf("message at offset %d is not whole", i)
		}
	}
	for id := 0; id < writers; id++ {
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
	}
}

// nilAddrConn is a net.Conn that knows no addresses.
type nilAddrConn struct{ net.Conn }

func (nilAddrConn) LocalAddr() net.Addr  { return nil }
func (nilAddrConn) RemoteAddr() net.Addr { return nil }

func TestNetConnAddr(t *testing.T) {
	server, client := connPair(t)
	sn, cn := NetConn(context.Background(), server, MessageBinary), NetConn(context.Background(), client, MessageBinary)
	if sn.LocalAddr() != server.NetConn().LocalAddr() || sn.RemoteAddr() != server.NetConn().RemoteAddr() {
		t.Errorf("server addresses %v %v", sn.LocalAddr(), sn.RemoteAddr())
	}
	if cn.LocalAddr().String() != sn.RemoteAddr().String() {
		t.Errorf("client's local address %v, server's remote %v", cn.LocalAddr(), sn.RemoteAddr())
	}
	a, b := net.Pipe()
	defer b.Close()
	c := newConn(nilAddrConn{a}, nil, connConfig{})
	defer c.CloseNow()
	nc := NetConn(context.Background(), c, MessageBinary)
	for _, addr := range []net.Addr{nc.LocalAddr(), nc.RemoteAddr()} {
		if addr == nil || addr.Network() != "websocket" {
			t.Errorf("placeholder address %v", addr)
		}
	}
}

// With permessage-deflate the stream crosses whole; a read deadline that
// passes inside a compressed message cannot be resumed (the decompressor
// does not survive it), so the connection is failed with 1011 rather than
// lose bytes.
func TestNetConnDeflate(t *testing.T) {
	for _, mode := range []CompressionMode{CompressionNoContextTakeover, CompressionContextTakeover} {
		t.Run(mode.String(), func(t *testing.T) {
			server, client := deflateConnPair(t, mode)
			ctx := context.Background()
			sn, cn := NetConn(ctx, server, MessageBinary), NetConn(ctx, client, MessageBinary)
			text := bytes.Repeat([]byte(`{"op":"ls","args":["-l","/tmp"]} `), 20000)
			go func() {
				io.CopyBuffer(struct{ io.Writer }{cn}, struct{ io.Reader }{bytes.NewReader(text)}, make([]byte, 10000))
			}()
			if got := readN(t, sn, len(text), 3000); !bytes.Equal(got, text) {
				t.Fatal("compressed stream differs")
			}

			// Fragment 1 of a compressed message, then nothing.
			// flate holds back up to a window, deflate.go's encoder what
			// fills no block: 256 KiB is 8 of its 32 KiB blocks, so 1000
			// bytes more.
			noise := make([]byte, 256<<10+1000)
			rng := rand.NewChaCha8([32]byte{1})
			rng.Read(noise)
			w, err := client.Writer(ctx, MessageBinary)
			if err != nil {
				t.Fatal(err)
			}
			w.Write(noise)
			buf := make([]byte, 4096)
			var n int
			for i := 0; i < len(noise); i++ {
				// A deadline per Read: reads of what has arrived finish in
				// time however slow the machine, and the Read that waits
				// for fragment 2 is cut.
				sn.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
				k, err := sn.Read(buf)
				n += k
				if err != nil {
					if !errors.Is(err, ErrDeflateInterrupted) || CloseStatus(err) != StatusInternalError {
						t.Fatalf("Read cut in a compressed message, after %d bytes: %v", n, err)
					}
					break
				}
			}
			if n == 0 || n >= len(noise) {
				t.Errorf("read %d bytes of the first fragment, of %d", n, len(noise))
			}
			sn.SetReadDeadline(time.Time{})
			if _, err := sn.Read(buf); !errors.Is(err, ErrDeflateInterrupted) {
				t.Errorf("next Read = %v, want the same failure", err)
			}
			if _, _, err := client.Read(ctx); CloseStatus(err) != StatusInternalError {
				t.Errorf("peer's Read = %v, want the close with 1011", err)
			}
		})
	}
}

// Over a real handshake: an echo server copies the stream back to a client.
func TestNetConnHTTP(t *testing.T) {
	url := startServer(t, nil, func(c *Conn) {
		nc := NetConn(context.Background(), c, MessageBinary)
		io.Copy(nc, nc)
		nc.Close()
	})
	c := dialTest(t, url, nil)
	nc := NetConn(context.Background(), c, MessageBinary)
	nc.SetDeadline(time.Now().Add(20 * time.Second))
	data := testPayload(1<<20, false)
	go nc.Write(data)
	if got := readN(t, nc, len(data), 32<<10); !bytes.Equal(got, data) {
		t.Fatal("echo differs")
	}
	if err := nc.Close(); err != nil {
		t.Fatal(err)
	}
}

// A Read cut by its deadline inside a compressed message fails the
// connection with 1011 and returns the *ProtocolError wrapping
// ErrDeflateInterrupted, with context takeover or without: not a timeout,
// which would look as if the Read could be tried again.
func TestNetConnDeflateCutIsNotATimeout(t *testing.T) {
	for _, takeover := range []bool{false, true} {
		t.Run(map[bool]string{false: "no_takeover", true: "takeover"}[takeover], func(t *testing.T) {
			server, peer := hostileConn(t, true, withDeflate(takeover))
			sn := NetConn(context.Background(), server, MessageBinary)
			// First fragment of a compressed message: "hello", sync-flushed.
			var b bytes.Buffer
			fw, _ := flate.NewWriter(&b, flate.BestSpeed)
			fw.Write([]byte("hello"))
			fw.Flush()
			peer.writeFrame(Header{Rsv: Rsv1, Opcode: OpBinary}, b.Bytes())
			buf := make([]byte, 100)
			sn.SetReadDeadline(time.Now().Add(5 * time.Second))
			if n, err := sn.Read(buf); err != nil || string(buf[:n]) != "hello" {
				t.Fatalf("first Read: %q %v", buf[:n], err)
			}
			// The rest never comes: this Read is cut by its deadline.
			sn.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
			_, err := sn.Read(buf)
			if errors.Is(err, os.ErrDeadlineExceeded) {
				if CloseStatus(server.rd.err) == StatusInternalError {
					t.Fatalf("cut Read = %v (a timeout), but the Conn was failed with 1011 (%v); want *ProtocolError{ErrDeflateInterrupted}", err, server.rd.err)
				}
			}
			if !errors.Is(err, ErrDeflateInterrupted) {
				t.Fatalf("cut Read = %v; want ErrDeflateInterrupted", err)
			}
		})
	}
}

// A Read cut by its deadline inside a compressed message may still return
// bytes: compress/flate hands over what it decoded before its source failed,
// and only then the failure. The Reads after it, while the deadline is still
// past, must report that failure, 1011 with ErrDeflateInterrupted, not a
// bare timeout, which would look as if moving the deadline let the stream go
// on; and the peer must be told with 1011 then, not only once a later Read
// gets past the deadline.
func TestNetConnDeflateCutAfterDecodedBytesIsNotATimeout(t *testing.T) {
	for _, takeover := range []bool{false, true} {
		t.Run(map[bool]string{false: "no_takeover", true: "takeover"}[takeover], func(t *testing.T) {
			server, peer := hostileConn(t, true, withDeflate(takeover))
			sn := NetConn(context.Background(), server, MessageBinary)
			// A first fragment whose deflate block is whole but whose sync
			// flush is cut short: flate decodes the block into its window
			// and hands it over only once its source fails.
			data := make([]byte, 10000)
			rand.NewChaCha8([32]byte{2}).Read(data)
			peer.writeFrame(Header{Rsv: Rsv1, Opcode: OpBinary}, deflateRaw(t, data))
			buf := make([]byte, 100)
			sn.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
			n, err := sn.Read(buf)
			if err != nil || !bytes.Equal(buf[:n], data[:n]) {
				t.Fatalf("cut Read: %d bytes, %v; want decoded bytes", n, err)
			}
			_, err = sn.Read(buf)
			if !errors.Is(err, ErrDeflateInterrupted) || CloseStatus(err) != StatusInternalError {
				t.Fatalf("Read after the cut, deadline past = %v; want *ProtocolError{1011, ErrDeflateInterrupted}", err)
			}
			if code := peer.expectClose(); code != StatusInternalError {
				t.Fatalf("peer got close %v, want 1011", code)
			}
		})
	}
}
