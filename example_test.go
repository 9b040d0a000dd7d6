package websocket_test

// Runnable examples: go test runs each one and compares what it prints with
// its Output comment, so they cannot drift from the API. Every server here
// listens on 127.0.0.1 (httptest).

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"time"

	"github.com/ws13/websocket"
)

// An echo server and a client that talks to it: the whole life of a
// connection, from the opening handshake to the closing one.
func Example() {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return // Accept has answered the request with an HTTP error
		}
		defer c.CloseNow()
		for {
			typ, msg, err := c.Read(r.Context())
			if err != nil {
				return // the client closed (the close has been answered), or broke the protocol
			}
			if err := c.Write(r.Context(), typ, msg); err != nil {
				return
			}
		}
	}))
	defer srv.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		log.Fatal(err)
	}
	defer c.CloseNow()
	if err := c.Write(ctx, websocket.MessageText, []byte("hello")); err != nil {
		log.Fatal(err)
	}
	typ, reply, err := c.Read(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(typ, string(reply))
	fmt.Println(c.Close(websocket.StatusNormalClosure, "bye"))
	// Output:
	// text hello
	// <nil>
}

// echoURL starts an echo server for the examples below and returns its
// ws:// URL and a function that stops it.
func echoURL() (string, func()) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, &websocket.AcceptOptions{
			Subprotocols: []string{"echo.v1"},
			Compression:  websocket.CompressionOptions{Mode: websocket.CompressionContextTakeover},
		})
		if err != nil {
			return
		}
		defer c.CloseNow()
		var buf []byte
		for {
			typ, msg, err := c.AppendMessage(r.Context(), buf[:0])
			if err != nil {
				return
			}
			buf = msg
			if err := c.Write(r.Context(), typ, msg); err != nil {
				return
			}
		}
	}))
	return "ws" + strings.TrimPrefix(srv.URL, "http"), srv.Close
}

// A server chooses the first of its subprotocols that the client offers;
// the client learns the choice from the handshake.
func ExampleAccept_subprotocol() {
	url, stop := echoURL()
	defer stop()
	ctx := context.Background()
	c, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{Subprotocols: []string{"echo.v2", "echo.v1"}})
	if err != nil {
		log.Fatal(err)
	}
	defer c.CloseNow()
	fmt.Printf("agreed on %q\n", c.Subprotocol())
	// Output: agreed on "echo.v1"
}

// Dial reports a refusal with the server's response, for its status and
// body; the error wraps ErrBadHandshake.
func ExampleDial_refused() {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "log in first", http.StatusForbidden)
	}))
	defer srv.Close()
	_, resp, err := websocket.Dial(context.Background(), "ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	fmt.Println(errors.Is(err, websocket.ErrBadHandshake), resp.StatusCode)
	// Output: true 403
}

// AppendMessage reads into a buffer the caller keeps, so that a read loop
// allocates nothing once the buffer has grown to the largest message.
func ExampleConn_AppendMessage() {
	url, stop := echoURL()
	defer stop()
	ctx := context.Background()
	c, _, err := websocket.Dial(ctx, url, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer c.CloseNow()
	buf := make([]byte, 0, 512)
	for _, word := range []string{"one", "two", "three"} {
		if err := c.Write(ctx, websocket.MessageText, []byte(word)); err != nil {
			log.Fatal(err)
		}
		_, msg, err := c.AppendMessage(ctx, buf[:0])
		if err != nil {
			log.Fatal(err)
		}
		fmt.Print(string(msg), " ")
	}
	fmt.Println()
	// Output: one two three
}

// Writer streams a message whose size is not known in advance, in
// fragments; Reader reads one without holding all of it.
func ExampleConn_Writer() {
	url, stop := echoURL()
	defer stop()
	ctx := context.Background()
	c, _, err := websocket.Dial(ctx, url, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer c.CloseNow()

	w, err := c.Writer(ctx, websocket.MessageText)
	if err != nil {
		log.Fatal(err)
	}
	for i := range 3 {
		fmt.Fprintf(w, "line %d\n", i)
	}
	if err := w.Close(); err != nil { // sends the final fragment
		log.Fatal(err)
	}

	_, r, err := c.Reader(ctx)
	if err != nil {
		log.Fatal(err)
	}
	lines := bufio.NewScanner(r)
	for lines.Scan() {
		fmt.Println(lines.Text())
	}
	// Output:
	// line 0
	// line 1
	// line 2
}

// Ping waits for the pong, which the goroutine that reads takes in: an
// application that only writes lets CloseRead read for it.
func ExampleConn_Ping() {
	url, stop := echoURL()
	defer stop()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, url, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer c.CloseNow()
	c.CloseRead(ctx)
	fmt.Println(c.Ping(ctx))
	// Output: <nil>
}

// A registry of connections learns that one has closed without a goroutine
// waiting on Done for each: here a set of the clients still connected.
func ExampleConn_AfterClose() {
	url, stop := echoURL()
	defer stop()
	ctx := context.Background()
	var mu sync.Mutex
	connected := map[string]*websocket.Conn{}
	removed := make(chan string, 2)
	for _, name := range []string{"ann", "bob"} {
		c, _, err := websocket.Dial(ctx, url, nil)
		if err != nil {
			log.Fatal(err)
		}
		defer c.CloseNow()
		mu.Lock()
		connected[name] = c
		mu.Unlock()
		c.AfterClose(func() {
			mu.Lock()
			delete(connected, name)
			mu.Unlock()
			removed <- name
		})
	}
	mu.Lock()
	ann := connected["ann"]
	mu.Unlock()
	ann.Close(websocket.StatusNormalClosure, "bye")
	fmt.Println("removed:", <-removed)
	mu.Lock()
	fmt.Println("still connected:", len(connected))
	mu.Unlock()
	// Output:
	// removed: ann
	// still connected: 1
}

// The side that reads learns why the other closed: a *CloseError with the
// code and reason, or CloseStatus for the code alone.
func ExampleCloseStatus() {
	reasons := make(chan error, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		_, _, err = c.Read(r.Context())
		reasons <- err
	}))
	defer srv.Close()
	c, _, err := websocket.Dial(context.Background(), "ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		log.Fatal(err)
	}
	c.Close(websocket.StatusGoingAway, "shutting down")

	err = <-reasons
	var ce *websocket.CloseError
	if errors.As(err, &ce) {
		fmt.Printf("%d %q\n", ce.Code, ce.Reason)
	}
	fmt.Println(websocket.CloseStatus(err) == websocket.StatusGoingAway)
	// Output:
	// 1001 "shutting down"
	// true
}

// With the same options on both sides, permessage-deflate is negotiated in
// the handshake; reads and writes then compress without further calls.
func ExampleCompressionOptions() {
	url, stop := echoURL() // accepts CompressionContextTakeover
	defer stop()
	ctx := context.Background()
	c, resp, err := websocket.Dial(ctx, url, &websocket.DialOptions{
		Compression: websocket.CompressionOptions{Mode: websocket.CompressionContextTakeover},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer c.CloseNow()
	fmt.Println(resp.Header.Get("Sec-WebSocket-Extensions"))
	msg := strings.Repeat(`{"user":"ada","text":"hello"} `, 20)
	if err := c.Write(ctx, websocket.MessageText, []byte(msg)); err != nil {
		log.Fatal(err)
	}
	_, reply, err := c.Read(ctx)
	fmt.Println(string(reply) == msg, err)
	// Output:
	// permessage-deflate
	// true <nil>
}

// NetConn turns a Conn into a byte stream, for code written for a net.Conn:
// here a line protocol through bufio.
func ExampleNetConn() {
	url, stop := echoURL()
	defer stop()
	ctx := context.Background()
	c, _, err := websocket.Dial(ctx, url, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer c.CloseNow()
	stream := websocket.NetConn(ctx, c, websocket.MessageBinary)
	io.WriteString(stream, "first line\nsecond ")
	io.WriteString(stream, "line\n")
	lines := bufio.NewReader(stream)
	for range 2 {
		line, err := lines.ReadString('\n')
		if err != nil {
			log.Fatal(err)
		}
		fmt.Print(line)
	}
	// Output:
	// first line
	// second line
}

// A Poller serves many connections without a goroutine each while they are
// quiet: the handler that accepted a connection hands it over and returns.
// The Poller calls the callback for each message, and once for the end.
func ExamplePoller() {
	poller, err := websocket.NewPoller()
	if err != nil {
		log.Fatal(err)
	}
	defer poller.Close()
	ended := make(chan error, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		err = poller.Add(c, func(c *websocket.Conn) {
			// Not r.Context(): it ended when the HTTP handler returned.
			typ, msg, err := c.Read(context.Background())
			if err != nil {
				ended <- err // the Poller forgets c
				return
			}
			c.Write(context.Background(), typ, []byte(strings.ToUpper(string(msg))))
		})
		if err != nil {
			c.CloseNow()
		}
	}))
	defer srv.Close()

	ctx := context.Background()
	c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		log.Fatal(err)
	}
	defer c.CloseNow()
	c.Write(ctx, websocket.MessageText, []byte("quiet, mostly"))
	_, reply, err := c.Read(ctx)
	fmt.Println(string(reply), err)
	c.Close(websocket.StatusNormalClosure, "")
	fmt.Println(websocket.CloseStatus(<-ended))
	// Output:
	// QUIET, MOSTLY <nil>
	// 1000 (normal closure)
}

// A PreparedMessage is written to many connections and compressed once for
// all those that compress alike without context takeover.
func ExampleNewPreparedMessage() {
	url, stop := echoURL()
	defer stop()
	ctx := context.Background()
	news, err := websocket.NewPreparedMessage(websocket.MessageText, []byte(strings.Repeat("news ", 100)))
	if err != nil {
		log.Fatal(err)
	}
	for range 3 {
		c, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{
			Compression: websocket.CompressionOptions{Mode: websocket.CompressionNoContextTakeover},
		})
		if err != nil {
			log.Fatal(err)
		}
		defer c.CloseNow()
		if err := c.WritePrepared(ctx, news); err != nil {
			log.Fatal(err)
		}
		_, echo, err := c.Read(ctx)
		fmt.Println(len(echo), err)
	}
	// Output:
	// 500 <nil>
	// 500 <nil>
	// 500 <nil>
}

// Several prepared messages in one call go out in order, each a message of
// its own, and those that fit in a write buffer together in one system call.
func ExampleConn_WritePrepared() {
	url, stop := echoURL()
	defer stop()
	ctx := context.Background()
	c, _, err := websocket.Dial(ctx, url, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer c.CloseNow()
	var queued []*websocket.PreparedMessage
	for _, text := range []string{"first", "second", "third"} {
		m, err := websocket.NewPreparedMessage(websocket.MessageText, []byte(text))
		if err != nil {
			log.Fatal(err)
		}
		queued = append(queued, m)
	}
	if err := c.WritePrepared(ctx, queued...); err != nil {
		log.Fatal(err)
	}
	for range queued {
		_, echo, err := c.Read(ctx)
		fmt.Println(string(echo), err)
	}
	// Output:
	// first <nil>
	// second <nil>
	// third <nil>
}

// A sender that must not wait, writing to many connections from one
// goroutine, tries each; what a connection did not take at once goes to
// a goroutine that may wait (the hub package works this way).
func ExampleConn_TryWritePrepared() {
	url, stop := echoURL()
	defer stop()
	ctx := context.Background()
	c, _, err := websocket.Dial(ctx, url, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer c.CloseNow()
	m, err := websocket.NewPreparedMessage(websocket.MessageText, []byte("news"))
	if err != nil {
		log.Fatal(err)
	}
	n, err := c.TryWritePrepared(10*time.Second, m)
	if err != nil {
		log.Fatal(err)
	}
	if n == 0 {
		// Busy, or its socket full. A broadcaster hands the message to a
		// goroutine of this connection's own, which may wait:
		if err := c.WritePrepared(ctx, m); err != nil {
			log.Fatal(err)
		}
	}
	_, echo, err := c.Read(ctx)
	fmt.Println(string(echo), err)
	// Output:
	// news <nil>
}

// The frame layer on its own, no connection needed: the masked "Hello" a
// client sends, from RFC 6455 §5.7, built with AppendHeader and Mask, then
// taken apart again with ParseHeader.
func ExampleAppendHeader() {
	key := [4]byte{0x37, 0xfa, 0x21, 0x3d}
	payload := []byte("Hello")
	frame := websocket.AppendHeader(nil, websocket.Header{
		Fin: true, Opcode: websocket.OpText, Masked: true, Mask: key, Length: int64(len(payload)),
	})
	start := len(frame)
	frame = append(frame, payload...)
	websocket.Mask(key, 0, frame[start:]) // masking is its own inverse
	fmt.Printf("% x\n", frame)

	h, n, err := websocket.ParseHeader(frame)
	if err != nil {
		log.Fatal(err)
	}
	body := frame[n : n+int(h.Length)]
	websocket.Mask(h.Mask, 0, body)
	fmt.Printf("fin=%v opcode=%v masked=%v length=%d payload=%q\n", h.Fin, h.Opcode, h.Masked, h.Length, body)
	// Output:
	// 81 85 37 fa 21 3d 7f 9f 4d 51 58
	// fin=true opcode=text masked=true length=5 payload="Hello"
}
