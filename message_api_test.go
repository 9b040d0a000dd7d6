package websocket

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"testing"
	"time"
)

// SetReadLimit lowered, from another goroutine, below what AppendMessage
// already holds of a large frame: the message is refused with 1009, as a
// continuation frame past the new limit would be, and promptly. Growing
// the buffer by the room left under the limit, which is then none, grew it
// a byte at a time, copying all of it for every byte that came.
func TestReadLimitLoweredMidFrame(t *testing.T) {
	checkLeaks(t)
	both(t, func(t *testing.T, isServer bool) {
		c, p := hostileConn(t, isServer, withReadLimit(16<<20))
		const size, first = 4 << 20, 256 << 10
		wire := peerFrame(p, Header{Fin: true, Opcode: OpBinary}, make([]byte, size))
		sent := make(chan struct{})
		go func() {
			defer close(sent)
			p.conn.Write(wire[:len(wire)-size+first])
			time.Sleep(200 * time.Millisecond) // the reader takes in the first part
			c.SetReadLimit(1024)
			p.conn.Write(wire[len(wire)-size+first:]) // fails once our side closed: fine
		}()
		closed := make(chan StatusCode, 1)
		go func() {
			code, _, _ := peerReadClose(p)
			p.conn.Close()
			closed <- code
		}()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		start := time.Now()
		_, _, err := c.AppendMessage(ctx, nil)
		if errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("AppendMessage still reading after %v", time.Since(start))
		}
		if !errors.Is(err, ErrMessageTooBig) || CloseStatus(err) != StatusMessageTooBig {
			t.Errorf("AppendMessage: %v, want 1009", err)
		}
		if code := <-closed; code != StatusMessageTooBig {
			t.Errorf("close code %v, want 1009", code)
		}
		<-sent
	})
}

// A Writer whose context ends between its fragments cannot finish its
// message, and the connection is dropped for it; the Writer's errors say
// so, matching ErrClosed as well as the context's error, as a frame cut in
// the middle does (TestWriteCutMidFrameSaysTheConnectionIsGone): the
// context's error alone reads as "try again later". The calls after it
// learn that the connection is gone, and not that their context ended (the
// context that ended was the Writer's): they match ErrClosed alone,
// whatever reads the error, a Write, a Ping, a Read or Close.
func TestWriterContextEndsBetweenFragments(t *testing.T) {
	for _, viaClose := range []bool{false, true} {
		t.Run(map[bool]string{false: "Write", true: "Close"}[viaClose], func(t *testing.T) {
			server, _ := connPair(t)
			ctx, cancel := context.WithCancel(context.Background())
			w, err := server.Writer(ctx, MessageBinary)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := w.Write(make([]byte, fragmentSize)); err != nil {
				t.Fatal(err) // the first fragment is out
			}
			cancel()
			if viaClose {
				err = w.Close()
			} else {
				_, err = w.Write(make([]byte, fragmentSize))
			}
			if !errors.Is(err, ErrClosed) || !errors.Is(err, context.Canceled) {
				t.Errorf("the next fragment = %v, want ErrClosed and context.Canceled", err)
			}
			if !server.isNetClosed() {
				t.Error("the connection is still open with half a message sent")
			}
			if err := w.Close(); !errors.Is(err, ErrClosed) {
				t.Errorf("Close = %v, want ErrClosed", err)
			}
			background := context.Background()
			_, _, readErr := server.Read(background)
			for _, call := range []struct {
				name string
				err  error
			}{
				{"Write", server.Write(background, MessageBinary, []byte("x"))},
				{"Ping", server.Ping(background)},
				{"Read", readErr},
				{"Close", server.Close(StatusNormalClosure, "")},
			} {
				if !errors.Is(call.err, ErrClosed) || errors.Is(call.err, context.Canceled) {
					t.Errorf("%s after the Writer gave up = %v, want ErrClosed alone", call.name, call.err)
				}
			}
		})
	}
}

// AppendMessage into a buffer with exactly the message's capacity fills it
// and returns it as it is, allocating nothing, also where the end of the
// message shows only after its last byte: a final fragment that is empty
// (a Writer sends one when the message fills its last fragment), and a
// compressed message, whose end the decompressor reports on the read after.
func TestAppendMessageIntoExactCapacity(t *testing.T) {
	ctx := context.Background()
	check := func(t *testing.T, to *Conn, msg []byte) {
		t.Helper()
		buf := make([]byte, 0, len(msg))
		_, got, err := to.AppendMessage(ctx, buf)
		if err != nil || !bytes.Equal(got, msg) {
			t.Fatalf("read %d bytes, %v", len(got), err)
		}
		if &got[:1][0] != &buf[:1][0] {
			t.Errorf("the message (%d bytes) was read into a new buffer, not the one given, of its exact size", len(msg))
		}
	}
	t.Run("empty final fragment", func(t *testing.T) {
		server, client := connPair(t)
		msg := testPayload(3000, false)
		go func() {
			client.writeFrame(ctx, Header{Opcode: OpBinary}, msg[:1000])
			client.writeFrame(ctx, Header{Opcode: OpContinuation}, msg[1000:])
			client.writeFrame(ctx, Header{Fin: true, Opcode: OpContinuation}, nil)
		}()
		check(t, server, msg)
	})
	t.Run("a Writer's message filling its last fragment", func(t *testing.T) {
		server, client := connPair(t)
		msg := testPayload(2*fragmentSize, false)
		go func() {
			w, err := client.Writer(ctx, MessageBinary)
			if err == nil {
				w.Write(msg)
				w.Close()
			}
		}()
		check(t, server, msg)
	})
	for _, mode := range []CompressionMode{CompressionNoContextTakeover, CompressionContextTakeover} {
		t.Run(fmt.Sprintf("compressed, %v", mode), func(t *testing.T) {
			server, client := deflateConnPair(t, mode)
			msg := bytes.Join(deflateJSONCorpus(), nil)[:1024]
			for range 2 { // with takeover, the second refers back to the first
				go client.Write(ctx, MessageText, msg)
				check(t, server, msg)
			}
		})
	}
}

// SetReadLimit lowered while a Reader is inside a compressed message holds
// that message to the new limit, which applies to its decompressed size:
// the Read that finds it past the limit fails with 1009, as AppendMessage
// and the next fragment of an uncompressed message do. The decompressor
// kept the limit in force when the message began, so a Reader took in a
// whole mebibyte under a limit of 2 KiB.
func TestReaderHeldToAReadLimitLoweredInsideACompressedMessage(t *testing.T) {
	checkLeaks(t)
	for _, mode := range []CompressionMode{CompressionNoContextTakeover, CompressionContextTakeover} {
		t.Run(mode.String(), func(t *testing.T) {
			server, client := deflateConnPair(t, mode)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			sent := make(chan error, 1)
			go func() { sent <- client.Write(ctx, MessageBinary, make([]byte, 1<<20)) }()
			_, r, err := server.Reader(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := io.ReadFull(r, make([]byte, 4096)); err != nil {
				t.Fatal(err)
			}
			server.SetReadLimit(2048)
			n, err := io.Copy(io.Discard, r)
			if !errors.Is(err, ErrMessageTooBig) || CloseStatus(err) != StatusMessageTooBig {
				t.Errorf("Read past the lowered limit: %d more bytes, %v; want 1009", n, err)
			}
			if err := <-sent; err != nil {
				t.Fatal(err)
			}
			if _, _, err := client.Read(ctx); CloseStatus(err) != StatusMessageTooBig {
				t.Errorf("the peer read %v, want a close with 1009", err)
			}
		})
	}
}

// SetReadLimit lowered while a Reader is inside a single large frame holds
// the message to the new limit: the next Read fails with 1009, as
// AppendMessage does (TestReadLimitLoweredMidFrame) and as the frame's
// header would had it come after the change. The limit was looked at only
// at frame headers, so a Reader took in the whole frame under a limit of
// 2 KiB.
func TestReaderHeldToAReadLimitLoweredInsideAFrame(t *testing.T) {
	checkLeaks(t)
	server, client := connPair(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// The frame fits in the socket buffers, so that the client's Write
	// ends before the server fails the connection: a Write cut mid-frame
	// drops the client's connection before its reader sees the close.
	sent := make(chan error, 1)
	go func() { sent <- client.Write(ctx, MessageBinary, make([]byte, 48<<10)) }()
	_, r, err := server.Reader(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(r, make([]byte, 4096)); err != nil {
		t.Fatal(err)
	}
	if err := <-sent; err != nil {
		t.Fatal(err)
	}
	server.SetReadLimit(2048)
	n, err := io.Copy(io.Discard, r)
	if !errors.Is(err, ErrMessageTooBig) || CloseStatus(err) != StatusMessageTooBig {
		t.Errorf("Read past the lowered limit: %d more bytes, %v; want 1009", n, err)
	}
	readCtx, cancelRead := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancelRead()
	if _, _, err := client.Read(readCtx); CloseStatus(err) != StatusMessageTooBig {
		t.Errorf("the peer read %v, want a close with 1009", err)
	}
}
