package websocket_test

// TestMigrationTable uses every ws13 name that MIGRATING.md names, against
// a real server on 127.0.0.1 (httptest), so that the page cannot drift from
// the API: renaming or removing any of them breaks this test.

import (
	"bufio"
	"bytes"
	"compress/flate"
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ws13/websocket"
	"github.com/ws13/websocket/hub"
)

func TestMigrationTable(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	poller, err := websocket.NewPoller()
	if err != nil {
		t.Fatal(err)
	}
	h := hub.New(nil)

	acceptErr := make(chan error, 1)    // why /echo refused a handshake
	echoEnd := make(chan error, 1)      // how /echo's connection ended, server side
	pollEnd := make(chan error, 1)      // how /poll's connection ended, server side
	keepaliveEnd := make(chan error, 1) // how /keepalive's connection ended, server side
	joined := make(chan struct{}, 1)
	var pushed *websocket.Conn // /push's Conn, handed over through joined

	windowed := websocket.CompressionOptions{
		Mode:                websocket.CompressionContextTakeover,
		ServerMaxWindowBits: 10,
		ClientMaxWindowBits: 10,
	}

	mux := http.NewServeMux()
	// gorilla Upgrader.Upgrade / coder Accept, with every option the table maps.
	mux.HandleFunc("/echo", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Migration", "yes") // gorilla's responseHeader argument
		c, err := websocket.Accept(w, r, &websocket.AcceptOptions{
			Subprotocols:   []string{"echo.v1"},
			OriginPatterns: []string{"*.example.com"},
			ReadLimit:      1 << 16,
			CloseTimeout:   2 * time.Second,
			PingInterval:   time.Minute,
			PingTimeout:    10 * time.Second,
			Compression: websocket.CompressionOptions{
				Mode:      websocket.CompressionNoContextTakeover,
				Threshold: 64,
				Level:     flate.BestSpeed,
			},
		})
		if err != nil {
			acceptErr <- err
			return
		}
		defer c.CloseNow()
		for { // streamed echo: gorilla NextReader/NextWriter, coder Reader/Writer
			typ, rd, err := c.Reader(r.Context())
			if err != nil {
				echoEnd <- err
				return
			}
			wr, err := c.Writer(r.Context(), typ)
			if err != nil {
				echoEnd <- err
				return
			}
			if _, err := io.Copy(wr, rd); err != nil {
				echoEnd <- err
				return
			}
			if err := wr.Close(); err != nil {
				echoEnd <- err
				return
			}
		}
	})
	// A coder-style pattern with a scheme: ws13 matches hosts only.
	mux.HandleFunc("/scheme", func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, &websocket.AcceptOptions{OriginPatterns: []string{"https://app.example.com"}})
		if err != nil {
			return
		}
		c.CloseNow()
	})
	// coder NetConn: a byte stream echoed through a net.Conn.
	mux.HandleFunc("/stream", func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, &websocket.AcceptOptions{InsecureSkipOriginCheck: true})
		if err != nil {
			return
		}
		nc := websocket.NetConn(r.Context(), c, websocket.MessageBinary)
		defer nc.Close()
		io.Copy(nc, nc)
	})
	// A writer-only connection: CloseRead keeps control frames flowing while
	// the hub (gws Broadcaster) writes.
	mux.HandleFunc("/push", func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, &websocket.AcceptOptions{Compression: windowed})
		if err != nil {
			return
		}
		readDone := c.CloseRead(r.Context())
		m, err := h.Join(c)
		if err != nil {
			c.CloseNow()
			return
		}
		defer m.Leave()
		pushed = c
		joined <- struct{}{}
		<-readDone.Done()
	})
	// gws's event model: a Poller calls the handler per message, and once more
	// when the connection ends (gws OnClose).
	mux.HandleFunc("/poll", func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		err = poller.Add(c, func(c *websocket.Conn) {
			typ, msg, err := c.Read(context.Background())
			if err != nil {
				select {
				case pollEnd <- err:
				default:
				}
				return
			}
			c.Write(context.Background(), typ, msg)
		})
		if err != nil {
			c.CloseNow()
		}
	})
	// Two messages one byte over the default read limit, for a client that
	// lifts its limit and then restores the default.
	mux.HandleFunc("/big", func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		big := make([]byte, websocket.DefaultReadLimit+1)
		for range 2 {
			if err := c.Write(r.Context(), websocket.MessageBinary, big); err != nil {
				return
			}
		}
		c.Read(r.Context()) // until the client's 1009 ends the connection
	})
	// The Host the request named: coder's DialOptions.Host is a Host entry in Header.
	mux.HandleFunc("/host", func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		if c.Write(r.Context(), websocket.MessageText, []byte(r.Host)) == nil {
			c.Read(r.Context()) // until the client closes
		}
	})
	// gorilla's chat: serveWs starts its pumps and returns. A read with
	// r.Context() fails once it has; one with a context of its own echoes.
	pumpEnd := make(chan error, 1) // how /pumps' read loop ended
	mux.HandleFunc("/pumps", func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		reqCtx := r.Context()
		go func() {
			defer c.CloseNow()
			<-reqCtx.Done() // the handler has returned
			if _, _, err := c.Read(reqCtx); !errors.Is(err, context.Canceled) {
				pumpEnd <- fmt.Errorf("read with r.Context() after the handler: %v", err)
				return
			}
			for {
				typ, msg, err := c.Read(context.Background())
				if err != nil {
					pumpEnd <- err
					return
				}
				if err := c.Write(context.Background(), typ, msg); err != nil {
					pumpEnd <- err
					return
				}
			}
		}()
	})
	// Keepalive: a peer that never answers pings is dropped.
	mux.HandleFunc("/keepalive", func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, &websocket.AcceptOptions{
			PingInterval: 50 * time.Millisecond,
			PingTimeout:  100 * time.Millisecond,
		})
		if err != nil {
			return
		}
		defer c.CloseNow()
		_, _, err = c.Read(r.Context()) // pongs are seen only while someone reads
		keepaliveEnd <- err
	})

	srv := httptest.NewServer(mux) // listens on 127.0.0.1
	defer srv.Close()
	defer h.Close()
	defer poller.Close()
	base := "ws" + strings.TrimPrefix(srv.URL, "http")

	t.Run("origin refused", func(t *testing.T) {
		_, resp, err := websocket.Dial(ctx, base+"/echo", &websocket.DialOptions{
			Header: http.Header{"Origin": {"https://evil.test"}},
		})
		if !errors.Is(err, websocket.ErrBadHandshake) || resp == nil || resp.StatusCode != http.StatusForbidden {
			t.Fatalf("Dial with a foreign Origin: %v, %v", resp, err)
		}
		if err := <-acceptErr; !errors.Is(err, websocket.ErrOriginRefused) {
			t.Fatalf("Accept: %v, want ErrOriginRefused", err)
		}
		_, resp, err = websocket.Dial(ctx, base+"/scheme", &websocket.DialOptions{
			Header: http.Header{"Origin": {"https://app.example.com"}},
		})
		if !errors.Is(err, websocket.ErrBadHandshake) || resp == nil || resp.StatusCode != http.StatusForbidden {
			t.Fatalf("a pattern with a scheme matched: %v, %v", resp, err)
		}
		resp, err = http.Post(srv.URL+"/echo", "text/plain", strings.NewReader("not a handshake"))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusMethodNotAllowed {
			t.Fatalf("POST: status %d", resp.StatusCode)
		}
		if err := <-acceptErr; !errors.Is(err, websocket.ErrBadMethod) {
			t.Fatalf("Accept: %v, want ErrBadMethod", err)
		}
		// gorilla's IsWebSocketUpgrade has no counterpart: a plain GET gets 400.
		resp, err = http.Get(srv.URL + "/echo")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("plain GET: status %d", resp.StatusCode)
		}
		if err := <-acceptErr; !errors.Is(err, websocket.ErrNotUpgrade) {
			t.Fatalf("Accept: %v, want ErrNotUpgrade", err)
		}
	})

	t.Run("echo", func(t *testing.T) {
		c, resp, err := websocket.Dial(ctx, base+"/echo", &websocket.DialOptions{
			Header:           http.Header{"Origin": {"https://app.example.com"}},
			Subprotocols:     []string{"echo.v1"},
			HandshakeTimeout: 5 * time.Second,
			Proxy:            func(*http.Request) (*url.URL, error) { return nil, nil },
			NetDialContext:   (&net.Dialer{}).DialContext,
			TLSConfig:        &tls.Config{MinVersion: tls.VersionTLS12}, // used by wss:// only
			ReadLimit:        1 << 16,
			CloseTimeout:     2 * time.Second,
			PingInterval:     time.Minute,
			PingTimeout:      10 * time.Second,
			Compression:      websocket.CompressionOptions{Mode: websocket.CompressionNoContextTakeover},
		})
		if err != nil {
			t.Fatal(err)
		}
		defer c.CloseNow()
		if got := resp.Header.Get("X-Migration"); got != "yes" {
			t.Errorf("response header X-Migration = %q", got)
		}
		if got := c.Subprotocol(); got != "echo.v1" {
			t.Errorf("Subprotocol() = %q", got)
		}
		if got, want := c.NetConn().RemoteAddr().String(), srv.Listener.Addr().String(); got != want {
			t.Errorf("NetConn().RemoteAddr() = %s, want %s", got, want)
		}
		c.SetReadLimit(1 << 15)

		// A context in place of SetReadDeadline: a read that times out
		// before a message arrives leaves the Conn usable.
		short, cancelShort := context.WithTimeout(ctx, 20*time.Millisecond)
		_, _, err = c.Read(short)
		cancelShort()
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Read with a short context: %v", err)
		}

		// gorilla WriteMessage/ReadMessage, coder Write/Read.
		if err := c.Write(ctx, websocket.MessageText, []byte("hello")); err != nil {
			t.Fatal(err)
		}
		typ, msg, err := c.Read(ctx)
		if err != nil || typ != websocket.MessageText || string(msg) != "hello" {
			t.Fatalf("Read = %v %q %v", typ, msg, err)
		}

		// Streaming: gorilla NextWriter/NextReader, coder Writer/Reader.
		big := bytes.Repeat([]byte("ab"), 8<<10)
		wr, err := c.Writer(ctx, websocket.MessageBinary)
		if err != nil {
			t.Fatal(err)
		}
		wr.Write(big[:5000])
		wr.Write(big[5000:])
		if err := wr.Close(); err != nil {
			t.Fatal(err)
		}
		typ, rd, err := c.Reader(ctx)
		if err != nil || typ != websocket.MessageBinary {
			t.Fatalf("Reader = %v %v", typ, err)
		}
		if got, err := io.ReadAll(rd); err != nil || !bytes.Equal(got, big) {
			t.Fatalf("streamed echo: %d bytes, %v", len(got), err)
		}

		// gorilla EnableWriteCompression(false) for one message; a reused buffer.
		if err := c.WriteUncompressed(ctx, websocket.MessageBinary, []byte{1, 2, 3}); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 0, 64)
		typ, buf, err = c.AppendMessage(ctx, buf[:0])
		if err != nil || typ != websocket.MessageBinary || !bytes.Equal(buf, []byte{1, 2, 3}) {
			t.Fatalf("AppendMessage = %v %v %v", typ, buf, err)
		}

		// One reader goroutine; Ping and any number of writers beside it.
		msgs := make(chan []byte, 8)
		readEnd := make(chan error, 1)
		go func() {
			for {
				_, m, err := c.Read(ctx)
				if err != nil {
					readEnd <- err
					return
				}
				msgs <- m
			}
		}()
		pingCtx, cancelPing := context.WithTimeout(ctx, 5*time.Second)
		err = c.Ping(pingCtx)
		cancelPing()
		if err != nil {
			t.Fatalf("Ping: %v", err)
		}
		var wg sync.WaitGroup
		for range 4 {
			wg.Go(func() {
				if err := c.Write(ctx, websocket.MessageText, []byte("concurrent")); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		for range 4 {
			if m := <-msgs; string(m) != "concurrent" {
				t.Fatalf("echo of a concurrent write: %q", m)
			}
		}

		// The closing handshake, and the peer's view of it.
		if err := c.Close(websocket.StatusNormalClosure, strings.Repeat("x", 124)); !errors.Is(err, websocket.ErrCloseReasonTooLong) {
			t.Fatalf("Close with a 124-byte reason: %v", err)
		}
		if err := c.Close(websocket.StatusNormalClosure, "bye"); err != nil {
			t.Fatalf("Close: %v", err)
		}
		<-readEnd
		err = <-echoEnd
		var ce *websocket.CloseError // a pointer, unlike coder's CloseError
		if !errors.As(err, &ce) || ce.Code != websocket.StatusNormalClosure || ce.Reason != "bye" {
			t.Fatalf("server's read ended with %v", err)
		}
		var code websocket.StatusCode = websocket.CloseStatus(err)
		if code != websocket.StatusNormalClosure {
			t.Fatalf("CloseStatus(%v) = %v", err, code)
		}
		if websocket.CloseStatus(errors.New("other")) != 0 || websocket.CloseStatus(nil) != 0 {
			t.Fatal("CloseStatus of a non-close error is not 0")
		}
		if err := c.Write(ctx, websocket.MessageText, []byte("late")); !errors.Is(err, websocket.ErrClosed) {
			t.Fatalf("Write after Close: %v", err)
		}
	})

	t.Run("pumps outlive the handler", func(t *testing.T) {
		c, _, err := websocket.Dial(ctx, base+"/pumps", nil)
		if err != nil {
			t.Fatal(err)
		}
		defer c.CloseNow()
		if err := c.Write(ctx, websocket.MessageText, []byte("pump")); err != nil {
			t.Fatal(err)
		}
		if _, msg, err := c.Read(ctx); err != nil || string(msg) != "pump" {
			t.Fatalf("echo from a pump after the handler returned: %q %v", msg, err)
		}
		if err := c.Close(websocket.StatusNormalClosure, ""); err != nil {
			t.Fatalf("Close: %v", err)
		}
		if err := <-pumpEnd; websocket.CloseStatus(err) != websocket.StatusNormalClosure {
			t.Fatalf("the pump's read loop ended with %v", err)
		}
	})

	// gorilla's CloseAbnormalClosure: a peer that vanishes without a close
	// frame ends the read with a *CloseError whose code is 1006.
	t.Run("peer vanished", func(t *testing.T) {
		c, _, err := websocket.Dial(ctx, base+"/echo", nil)
		if err != nil {
			t.Fatal(err)
		}
		c.CloseNow() // no close frame
		err = <-echoEnd
		var ce *websocket.CloseError
		if !errors.As(err, &ce) || ce.Code != websocket.StatusAbnormal || websocket.CloseStatus(err) != websocket.StatusAbnormal {
			t.Fatalf("server's read after the peer vanished: %v", err)
		}
	})

	// gorilla's WriteMessage(CloseMessage, []byte{}): a close frame with no
	// code, which the peer reads as 1005; Write refuses a control type.
	t.Run("close without a code", func(t *testing.T) {
		c, _, err := websocket.Dial(ctx, base+"/echo", nil)
		if err != nil {
			t.Fatal(err)
		}
		defer c.CloseNow()
		if err := c.Write(ctx, websocket.MessageType(websocket.OpClose), nil); !errors.Is(err, websocket.ErrInvalidMessageType) {
			t.Fatalf("Write of a close message: %v", err)
		}
		if err := c.Close(websocket.StatusNoStatusRcvd, ""); err != nil {
			t.Fatalf("Close(StatusNoStatusRcvd): %v", err)
		}
		if err := <-echoEnd; websocket.CloseStatus(err) != websocket.StatusNoStatusRcvd {
			t.Fatalf("server's read after a close frame with no code: %v", err)
		}
	})

	t.Run("Host", func(t *testing.T) {
		// An http:// URL, as coder takes, is dialed as ws://.
		c, _, err := websocket.Dial(ctx, srv.URL+"/host", &websocket.DialOptions{
			Header: http.Header{"Host": {"chat.example.test"}},
		})
		if err != nil {
			t.Fatal(err)
		}
		defer c.CloseNow()
		if _, msg, err := c.Read(ctx); err != nil || string(msg) != "chat.example.test" {
			t.Fatalf("the server saw Host %q, %v", msg, err)
		}
		if err := c.Close(websocket.StatusNormalClosure, ""); err != nil {
			t.Fatalf("Close: %v", err)
		}
	})

	// gws.NewClient and its ReadLoop: a Conn from Dial watched by a Poller.
	t.Run("client poller", func(t *testing.T) {
		cp, err := websocket.NewPoller()
		if err != nil {
			t.Fatal(err)
		}
		defer cp.Close()
		c, _, err := websocket.Dial(ctx, base+"/host", nil)
		if err != nil {
			t.Fatal(err)
		}
		defer c.CloseNow()
		got, end := make(chan string, 1), make(chan error, 1)
		if err := cp.Add(c, func(c *websocket.Conn) {
			_, msg, err := c.Read(context.Background())
			if err != nil {
				end <- err
				return
			}
			got <- string(msg)
		}); err != nil {
			t.Fatal(err)
		}
		if msg := <-got; msg != srv.Listener.Addr().String() {
			t.Fatalf("the client's handler read %q", msg)
		}
		if err := c.Close(websocket.StatusNormalClosure, ""); err != nil {
			t.Fatalf("Close: %v", err)
		}
		if err := <-end; !errors.Is(err, websocket.ErrClosed) && websocket.CloseStatus(err) == 0 {
			t.Fatalf("the client's handler, told of the end, read %v", err)
		}
	})

	t.Run("read limit", func(t *testing.T) {
		c, _, err := websocket.Dial(ctx, base+"/poll", nil)
		if err != nil {
			t.Fatal(err)
		}
		defer c.CloseNow()
		c.SetReadLimit(16)
		if err := c.Write(ctx, websocket.MessageText, []byte("hi")); err != nil {
			t.Fatal(err)
		}
		if _, msg, err := c.Read(ctx); err != nil || string(msg) != "hi" {
			t.Fatalf("Read = %q %v", msg, err)
		}
		if err := c.Write(ctx, websocket.MessageText, bytes.Repeat([]byte("x"), 100)); err != nil {
			t.Fatal(err)
		}
		_, _, err = c.Read(ctx)
		var pe *websocket.ProtocolError
		if !errors.Is(err, websocket.ErrMessageTooBig) || !errors.As(err, &pe) || pe.Code != websocket.StatusMessageTooBig {
			t.Fatalf("Read over the limit: %v", err)
		}
		if websocket.CloseStatus(err) != websocket.StatusMessageTooBig {
			t.Fatalf("CloseStatus(%v) = %v", err, websocket.CloseStatus(err))
		}
		if err := <-pollEnd; websocket.CloseStatus(err) != websocket.StatusMessageTooBig {
			t.Fatalf("the Poller's handler saw %v", err)
		}

		// SetReadLimit(math.MaxInt64) lifts the limit; n <= 0 restores the
		// default, -1 too (coder's way to disable the limit).
		for _, n := range []int64{0, -1} {
			big, _, err := websocket.Dial(ctx, base+"/big", nil)
			if err != nil {
				t.Fatal(err)
			}
			big.SetReadLimit(math.MaxInt64)
			if _, msg, err := big.Read(ctx); err != nil || len(msg) != websocket.DefaultReadLimit+1 {
				big.CloseNow()
				t.Fatalf("Read with the limit lifted = %d bytes, %v", len(msg), err)
			}
			big.SetReadLimit(n)
			_, _, err = big.Read(ctx)
			big.CloseNow()
			if !errors.Is(err, websocket.ErrMessageTooBig) {
				t.Fatalf("Read over the default, restored by SetReadLimit(%d): %v", n, err)
			}
		}
	})

	t.Run("NetConn", func(t *testing.T) {
		c, _, err := websocket.Dial(ctx, base+"/stream", &websocket.DialOptions{
			Header: http.Header{"Origin": {"https://anywhere.test"}}, // InsecureSkipOriginCheck
		})
		if err != nil {
			t.Fatal(err)
		}
		defer c.CloseNow()
		nc := websocket.NetConn(ctx, c, websocket.MessageBinary)
		nc.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := nc.Write([]byte("tunnel")); err != nil {
			t.Fatal(err)
		}
		got := make([]byte, 6)
		if _, err := io.ReadFull(nc, got); err != nil || string(got) != "tunnel" {
			t.Fatalf("ReadFull = %q %v", got, err)
		}
		// A passed deadline fails the Read and leaves the connection open.
		nc.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
		if _, err := nc.Read(got); !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("Read past its deadline: %v", err)
		}
		nc.SetReadDeadline(time.Time{})
		if _, err := nc.Write([]byte("again!")); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(nc, got); err != nil || string(got) != "again!" {
			t.Fatalf("ReadFull after a deadline = %q %v", got, err)
		}
		if err := nc.Close(); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("hub and CloseRead", func(t *testing.T) {
		c, _, err := websocket.Dial(ctx, base+"/push", &websocket.DialOptions{Compression: windowed})
		if err != nil {
			t.Fatal(err)
		}
		defer c.CloseNow()
		<-joined
		if err := h.Broadcast(ctx, websocket.MessageText, []byte("news")); err != nil {
			t.Fatal(err)
		}
		if _, msg, err := c.Read(ctx); err != nil || string(msg) != "news" {
			t.Fatalf("Read = %q %v", msg, err)
		}
		// gorilla NewPreparedMessage/WritePreparedMessage.
		pm, err := websocket.NewPreparedMessage(websocket.MessageText, bytes.Repeat([]byte("prepared "), 40))
		if err != nil {
			t.Fatal(err)
		}
		if err := pushed.WritePrepared(ctx, pm); err != nil {
			t.Fatal(err)
		}
		if _, msg, err := c.Read(ctx); err != nil || len(msg) != 9*40 {
			t.Fatalf("Read of a prepared message = %d bytes, %v", len(msg), err)
		}
		if err := c.Close(websocket.StatusGoingAway, ""); err != nil {
			t.Fatalf("Close: %v", err)
		}
	})

	t.Run("keepalive", func(t *testing.T) {
		c, _, err := websocket.Dial(ctx, base+"/keepalive", nil)
		if err != nil {
			t.Fatal(err)
		}
		defer c.CloseNow()
		// This client never reads, so it never answers the server's pings.
		if err := <-keepaliveEnd; !errors.Is(err, websocket.ErrKeepaliveTimeout) {
			t.Fatalf("server's read ended with %v, want ErrKeepaliveTimeout", err)
		}
	})

	t.Run("status names", func(t *testing.T) {
		// Renamed from coder: StatusAbnormalClosure, StatusInvalidFramePayloadData.
		if websocket.StatusAbnormal != 1006 || websocket.StatusInvalidPayload != 1007 {
			t.Fatal("status codes moved")
		}
		// Renamed from gorilla: CloseNoStatusReceived, CloseInternalServerErr.
		if websocket.StatusNoStatusRcvd != 1005 || websocket.StatusInternalError != 1011 {
			t.Fatal("status codes moved")
		}
		// Renamed from gobwas: StatusMandatoryExt.
		if websocket.StatusMandatoryExtension != 1010 {
			t.Fatal("status codes moved")
		}
		if websocket.DefaultReadLimit != 1<<20 || websocket.DefaultCloseTimeout != 5*time.Second {
			t.Fatal("defaults moved")
		}
		if websocket.CompressionContextTakeover == websocket.CompressionNoContextTakeover {
			t.Fatal("compression modes")
		}
	})

	// gobwas/ws's frame level: Header, ParseHeader, ReadHeader, AppendHeader, Mask.
	t.Run("frames", func(t *testing.T) {
		key := [4]byte{1, 2, 3, 4}
		payload := []byte("Hello")
		hd := websocket.Header{Fin: true, Opcode: websocket.OpText, Masked: true, Mask: key, Length: int64(len(payload))}
		wire := websocket.AppendHeader(nil, hd)
		if len(wire) != hd.EncodedLen() || len(wire) > websocket.MaxHeaderSize {
			t.Fatalf("AppendHeader wrote %d bytes, EncodedLen %d", len(wire), hd.EncodedLen())
		}
		masked := append([]byte(nil), payload...)
		if pos := websocket.Mask(key, 0, masked[:2]); websocket.Mask(key, pos, masked[2:]) != 5%4 {
			t.Fatal("Mask's key offset")
		}
		got, n, err := websocket.ParseHeader(append(wire, masked...))
		if err != nil || n != len(wire) || got != hd {
			t.Fatalf("ParseHeader = %+v %d %v", got, n, err)
		}
		got, err = websocket.ReadHeader(bytes.NewReader(wire))
		if err != nil || got != hd || got.Opcode.IsControl() {
			t.Fatalf("ReadHeader = %+v %v", got, err)
		}
		websocket.Mask(key, 0, masked)
		if !bytes.Equal(masked, payload) {
			t.Fatal("Mask twice is not the identity")
		}
		// RFC 6455 §1.3's example key.
		if websocket.AcceptKey("dGhlIHNhbXBsZSBub25jZQ==") != "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" {
			t.Fatal("AcceptKey")
		}
	})

	// gobwas's WriteFrame, ReadHeader and NewCloseFrameBody, by hand on a
	// raw connection to a server that Accept made.
	t.Run("frames on the wire", func(t *testing.T) {
		nc, err := net.Dial("tcp", srv.Listener.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		nc.SetDeadline(time.Now().Add(10 * time.Second))
		key := "dGhlIHNhbXBsZSBub25jZQ=="
		fmt.Fprintf(nc, "GET /echo HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
			"Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n", srv.Listener.Addr(), key)
		br := bufio.NewReader(nc)
		resp, err := http.ReadResponse(br, nil)
		if err != nil || resp.StatusCode != http.StatusSwitchingProtocols || resp.Header.Get("Sec-WebSocket-Accept") != websocket.AcceptKey(key) {
			t.Fatalf("handshake: %v %v", resp, err)
		}
		mask := [4]byte{9, 8, 7, 6}
		writeFrame := func(op websocket.Opcode, p []byte) {
			h := websocket.Header{Fin: true, Opcode: op, Masked: true, Mask: mask, Length: int64(len(p))}
			b := websocket.AppendHeader(nil, h)
			b = append(b, p...)
			websocket.Mask(mask, 0, b[h.EncodedLen():])
			if _, err := nc.Write(b); err != nil {
				t.Fatal(err)
			}
		}
		readFrame := func() (websocket.Header, []byte) {
			h, err := websocket.ReadHeader(br)
			if err != nil {
				t.Fatal(err)
			}
			p := make([]byte, h.Length)
			if _, err := io.ReadFull(br, p); err != nil {
				t.Fatal(err)
			}
			return h, p
		}
		writeFrame(websocket.OpText, []byte("raw"))
		if h, p := readFrame(); h.Opcode != websocket.OpText || !h.Fin || h.Masked || string(p) != "raw" {
			t.Fatalf("echo: %+v %q", h, p)
		}
		body := binary.BigEndian.AppendUint16(nil, uint16(websocket.StatusGoingAway))
		writeFrame(websocket.OpClose, append(body, "bye"...))
		if h, p := readFrame(); h.Opcode != websocket.OpClose || len(p) < 2 || binary.BigEndian.Uint16(p) != uint16(websocket.StatusGoingAway) {
			t.Fatalf("close reply: %+v %q", h, p)
		}
		err = <-echoEnd
		var ce *websocket.CloseError
		if !errors.As(err, &ce) || ce.Code != websocket.StatusGoingAway || ce.Reason != "bye" {
			t.Fatalf("server's read after a hand-made close frame: %v", err)
		}
	})

	// Accept answers invalid Compression options with 500.
	t.Run("bad compression options", func(t *testing.T) {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.Header.Set("Connection", "Upgrade")
		r.Header.Set("Upgrade", "websocket")
		r.Header.Set("Sec-WebSocket-Version", "13")
		r.Header.Set("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
		r.Header.Set("Sec-WebSocket-Extensions", "permessage-deflate")
		w := httptest.NewRecorder()
		_, err := websocket.Accept(w, r, &websocket.AcceptOptions{Compression: websocket.CompressionOptions{
			Mode: websocket.CompressionContextTakeover, ServerMaxWindowBits: 20,
		}})
		if !errors.Is(err, websocket.ErrCompressionOptions) || w.Code != http.StatusInternalServerError {
			t.Fatalf("Accept with a 20-bit window: %v, status %d", err, w.Code)
		}
	})

	// A compressed message that inflates past the read limit is refused with
	// 1009 too, with its own error.
	t.Run("compressed message too big", func(t *testing.T) {
		readErr := make(chan error, 1)
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			c, err := websocket.Accept(w, r, &websocket.AcceptOptions{
				ReadLimit:   1 << 10,
				Compression: websocket.CompressionOptions{Mode: websocket.CompressionNoContextTakeover},
			})
			if err != nil {
				return
			}
			defer c.CloseNow()
			_, _, err = c.Read(r.Context())
			readErr <- err
		}))
		defer srv.Close()
		c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http"), &websocket.DialOptions{
			Compression: websocket.CompressionOptions{Mode: websocket.CompressionNoContextTakeover},
		})
		if err != nil {
			t.Fatal(err)
		}
		defer c.CloseNow()
		// 64 KiB of zeros compress to a few hundred bytes, under the limit
		// on the wire and far over it inflated.
		if err := c.Write(ctx, websocket.MessageBinary, make([]byte, 64<<10)); err != nil {
			t.Fatal(err)
		}
		_, _, err = c.Read(ctx)
		if websocket.CloseStatus(err) != websocket.StatusMessageTooBig {
			t.Fatalf("after a compressed message too big: %v, want the server's 1009", err)
		}
		if err := <-readErr; !errors.Is(err, websocket.ErrDeflateTooLarge) || websocket.CloseStatus(err) != websocket.StatusMessageTooBig {
			t.Fatalf("the server's read: %v, want ErrDeflateTooLarge and 1009", err)
		}
	})
}
