package websocket

// A NetConn against what any net.Conn must do: the checks of
// golang.org/x/net/nettest's TestConn (racy reads, concurrent methods,
// Close unblocking, past, present and future deadlines), written for
// NetConn by hand, since the root module has no dependencies; and what
// concurrent readers see when the stream ends.

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"sync"
	"testing"
	"time"
)

// Two goroutines Read a NetConn (Reads are taken one at a time), and the
// stream ends: both Reads report the end as the doc comment says (io.EOF
// for a 1000 close, the *ProtocolError of a message of the wrong type); the
// second, waiting for the NetConn's read lock while the first handles the
// end, must not get the bare ErrClosed of the Conn.
func TestNetConnConcurrentReadersSeeTheEnd(t *testing.T) {
	ends := []struct {
		name string
		end  func(peer *Conn)
		want error
	}{
		{"normal close", func(peer *Conn) { peer.Close(StatusNormalClosure, "") }, io.EOF},
		{"unexpected type", func(peer *Conn) { peer.Write(context.Background(), MessageText, []byte("text")) }, ErrUnexpectedMessageType},
	}
	for _, tt := range ends {
		t.Run(tt.name, func(t *testing.T) {
			for i := range 20 {
				server, client := connPair(t)
				nc := NetConn(context.Background(), server, MessageBinary)
				errs := make(chan error, 2)
				for range 2 {
					go func() {
						_, err := nc.Read(make([]byte, 10))
						errs <- err
					}()
				}
				waitLocked(t, &nc.(*netConn).readLock)
				time.Sleep(10 * time.Millisecond) // the other Read queues
				go tt.end(client)
				for range 2 {
					select {
					case err := <-errs:
						if !errors.Is(err, tt.want) {
							t.Fatalf("run %d: Read = %v, want %v", i, err, tt.want)
						}
					case <-time.After(5 * time.Second):
						t.Fatalf("run %d: Read still blocked", i)
					}
				}
				server.CloseNow()
				client.CloseNow()
			}
		})
	}
}

// nettest's RacyRead: ten readers, deadlines of a millisecond renewed on
// each timeout, the peer writing a stream of random chunks. Every error is
// a timeout, and the stream is intact afterwards.
func TestNetConnRacyRead(t *testing.T) {
	server, client := connPair(t)
	ctx := context.Background()
	c1, c2 := NetConn(ctx, server, MessageBinary), NetConn(ctx, client, MessageBinary)
	stop := make(chan struct{})
	wrote := make(chan struct{})
	go func() {
		defer close(wrote)
		rng := rand.New(rand.NewPCG(1, 2))
		buf := make([]byte, 4096)
		for {
			select {
			case <-stop:
				return
			default:
			}
			n := rng.IntN(len(buf)) + 1
			for i := range buf[:n] {
				buf[i] = byte(rng.Uint32())
			}
			c2.SetWriteDeadline(time.Now().Add(200 * time.Millisecond))
			if _, err := c2.Write(buf[:n]); err != nil {
				if !errors.Is(err, os.ErrDeadlineExceeded) {
					t.Errorf("peer Write: %v", err)
					return
				}
			}
		}
	}()
	var wg sync.WaitGroup
	c1.SetReadDeadline(time.Now().Add(time.Millisecond))
	for range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			b1 := make([]byte, 1024)
			b2 := make([]byte, 1024)
			for range 100 {
				_, err := c1.Read(b1)
				copy(b1, b2)
				if err != nil {
					var ne net.Error
					if !errors.As(err, &ne) || !ne.Timeout() || !errors.Is(err, os.ErrDeadlineExceeded) {
						t.Errorf("Read: %v, want a timeout", err)
						return
					}
					c1.SetReadDeadline(time.Now().Add(time.Millisecond))
				}
			}
		}()
	}
	wg.Wait()
	close(stop)
	// drain so the writer can stop
	c1.SetReadDeadline(time.Now().Add(2 * time.Second))
	go func() {
		for {
			if _, err := c1.Read(make([]byte, 4096)); err != nil {
				return
			}
		}
	}()
	<-wrote
}

// nettest's ConcurrentMethods, then resync and a round trip.
func TestNetConnConcurrentMethods(t *testing.T) {
	server, client := connPair(t)
	ctx := context.Background()
	c1, c2 := NetConn(ctx, server, MessageBinary), NetConn(ctx, client, MessageBinary)
	go io.Copy(struct{ io.Writer }{c2}, struct{ io.Reader }{c2})
	var wg sync.WaitGroup
	for range 100 {
		wg.Add(5)
		go func() {
			defer wg.Done()
			c1.Read(make([]byte, 1024))
		}()
		go func() {
			defer wg.Done()
			c1.Write(make([]byte, 1024))
		}()
		go func() {
			defer wg.Done()
			c1.SetDeadline(time.Now().Add(10 * time.Millisecond))
		}()
		go func() {
			defer wg.Done()
			c1.SetReadDeadline(aLongTimeAgo)
		}()
		go func() {
			defer wg.Done()
			c1.SetWriteDeadline(aLongTimeAgo)
		}()
	}
	wg.Wait()
	resync(t, c1)
}

// resync, after a test has left c's stream at an unknown place, writes a
// marker, reads through the peer's echo up to it, and makes a round trip:
// nothing left over, nothing broken.
func resync(t *testing.T, c net.Conn) {
	t.Helper()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	errc := make(chan error, 1)
	go func() {
		_, err := c.Write([]byte{0xff})
		errc <- err
	}()
	buf := make([]byte, 1024)
	for {
		n, err := c.Read(buf)
		if n > 0 && bytes.IndexByte(buf[:n], 0xff) == n-1 {
			break
		}
		if err != nil {
			t.Fatalf("resync Read: %v", err)
		}
	}
	if err := <-errc; err != nil {
		t.Fatalf("resync Write: %v", err)
	}
	if _, err := c.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	if got := readN(t, c, 4, 10); string(got) != "ping" {
		t.Fatalf("round trip %q", got)
	}
}

// nettest's CloseTimeout: Close from another goroutine ends a Read loop and
// a Write loop promptly, with net.ErrClosed.
func TestNetConnCloseUnblocks(t *testing.T) {
	checkLeaks(t)
	server, client := connPair(t)
	ctx := context.Background()
	c1, c2 := NetConn(ctx, server, MessageBinary), NetConn(ctx, client, MessageBinary)
	c1.SetDeadline(time.Now().Add(time.Minute))
	var wg sync.WaitGroup
	wg.Add(3)
	go func() {
		defer wg.Done()
		time.Sleep(50 * time.Millisecond)
		c1.Close()
	}()
	var rerr, werr error
	go func() {
		defer wg.Done()
		buf := make([]byte, 1024)
		for rerr == nil {
			_, rerr = c1.Read(buf)
		}
	}()
	go func() {
		defer wg.Done()
		buf := make([]byte, 1024)
		for werr == nil {
			_, werr = c1.Write(buf)
		}
	}()
	go func() {
		buf := make([]byte, 1024)
		for {
			if _, err := c2.Read(buf); err != nil {
				return
			}
		}
	}()
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(3 * time.Second):
		t.Fatal("Read or Write still blocked after Close")
	}
	if !errors.Is(rerr, net.ErrClosed) || !errors.Is(werr, net.ErrClosed) {
		t.Fatalf("Read %v, Write %v; want net.ErrClosed", rerr, werr)
	}
	c2.Close()
}

// No goroutine is left after Close, with a cancellable base context,
// deadlines moved and passed, Reads and Writes cut, and the peer closing
// first.
func TestNetConnNoLeaks(t *testing.T) {
	checkLeaks(t)
	for _, peerFirst := range []bool{false, true} {
		base, cancel := context.WithCancel(context.Background())
		server, client := connPair(t)
		nc := NetConn(base, server, MessageBinary)
		pn := NetConn(context.Background(), client, MessageBinary)
		nc.SetDeadline(time.Now().Add(time.Hour))
		nc.SetReadDeadline(time.Now().Add(10 * time.Millisecond))
		if _, err := nc.Read(make([]byte, 10)); !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatal(err)
		}
		nc.SetReadDeadline(time.Now().Add(time.Hour))
		pn.Write([]byte("abc"))
		readN(t, nc, 3, 1)
		if peerFirst {
			go func() { pn.Read(make([]byte, 1)) }()
			readErr := make(chan error, 1)
			go func() {
				_, err := nc.Read(make([]byte, 10))
				readErr <- err
			}()
			pn.Close()
			if err := <-readErr; err != io.EOF {
				t.Fatalf("Read after peer close: %v", err)
			}
		} else {
			go func() { io.Copy(io.Discard, pn) }()
		}
		cancel()
		nc.Close()
		pn.Close()
	}
}

// nettest's PastTimeout, FutureTimeout and PresentTimeout over net.Pipe,
// each followed by a resync and a round trip through an echoing peer.
func TestNetConnPipeTimeouts(t *testing.T) {
	for _, name := range []string{"past", "future", "present"} {
		t.Run(name, func(t *testing.T) {
			server, client := pipePair(t)
			ctx := context.Background()
			c1, c2 := NetConn(ctx, server, MessageBinary), NetConn(ctx, client, MessageBinary)
			var wg sync.WaitGroup
			switch name {
			case "past":
				c1.SetDeadline(aLongTimeAgo)
				for range 3 {
					_, err := c1.Read(make([]byte, 10))
					checkTimeout(t, "Read", err)
					_, err = c1.Write(make([]byte, 10))
					checkTimeout(t, "Write", err)
				}
			case "future":
				c1.SetDeadline(time.Now().Add(100 * time.Millisecond))
			case "present":
				wg.Add(1)
				go func() {
					defer wg.Done()
					time.Sleep(100 * time.Millisecond)
					c1.SetReadDeadline(aLongTimeAgo)
					c1.SetWriteDeadline(aLongTimeAgo)
				}()
			}
			if name != "past" {
				// A Read and a stream of Writes, both blocked when the
				// deadline comes (or is moved into the past).
				wg.Add(2)
				go func() {
					defer wg.Done()
					_, err := c1.Read(make([]byte, 1024))
					checkTimeout(t, "Read", err)
				}()
				go func() {
					defer wg.Done()
					var err error
					for err == nil {
						_, err = c1.Write(make([]byte, 1024))
					}
					checkTimeout(t, "Write", err)
				}()
			}
			wg.Wait()
			go io.Copy(struct{ io.Writer }{c2}, struct{ io.Reader }{c2})
			resync(t, c1)
		})
	}
}

// Close racing Reads, Writes and deadline setters: no panic, no race, every
// call returns promptly, and afterwards everything reports net.ErrClosed.
func TestNetConnCloseRacingEverything(t *testing.T) {
	for i := range 30 {
		server, client := connPair(t)
		ctx := context.Background()
		c1, c2 := NetConn(ctx, server, MessageBinary), NetConn(ctx, client, MessageBinary)
		go io.Copy(struct{ io.Writer }{c2}, struct{ io.Reader }{c2})
		var wg sync.WaitGroup
		stop := make(chan struct{})
		for g := range 6 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				buf := make([]byte, 100)
				for {
					select {
					case <-stop:
						return
					default:
					}
					switch g % 3 {
					case 0:
						c1.Read(buf)
					case 1:
						c1.Write(buf)
					case 2:
						c1.SetDeadline(time.Now().Add(time.Duration(rand.IntN(2000)) * time.Microsecond))
					}
				}
			}()
		}
		time.Sleep(5 * time.Millisecond)
		closed := make(chan error, 1)
		go func() { closed <- c1.Close() }()
		select {
		case <-closed:
		case <-time.After(4 * time.Second):
			t.Fatalf("run %d: Close blocked", i)
		}
		close(stop)
		done := make(chan struct{})
		go func() { wg.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(2 * time.Second):
			t.Fatalf("run %d: calls blocked after Close", i)
		}
		if _, err := c1.Read(make([]byte, 1)); !errors.Is(err, net.ErrClosed) {
			t.Fatalf("run %d: Read after Close: %v", i, err)
		}
		if _, err := c1.Write(make([]byte, 1)); !errors.Is(err, net.ErrClosed) {
			t.Fatalf("run %d: Write after Close: %v", i, err)
		}
		c2.Close()
	}
}
