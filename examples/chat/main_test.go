package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/ws13/websocket"
)

// wait bounds every wait of these tests.
const wait = 10 * time.Second

// startRoom serves a new room on 127.0.0.1 and returns its http:// URL.
func startRoom(t *testing.T) (*room, string) {
	t.Helper()
	rm := newRoom()
	srv := httptest.NewServer(rm)
	t.Cleanup(srv.Close)
	t.Cleanup(rm.Close) // runs first
	return rm, srv.URL
}

func dial(t *testing.T, url string) *websocket.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(url, "http")+"/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.CloseNow() })
	// The room tells each guest its name first.
	typ, msg, err := c.Read(ctx)
	if err != nil || typ != websocket.MessageText || !strings.HasPrefix(string(msg), "* you are guest-") {
		t.Fatalf("first message %v %q, %v; want the guest's name", typ, msg, err)
	}
	return c
}

// expect fails the test unless the next message on c is the text want.
func expect(t *testing.T, c *websocket.Conn, want string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	typ, got, err := c.Read(ctx)
	if err != nil {
		t.Fatalf("waiting for %q: %v", want, err)
	}
	if typ != websocket.MessageText || string(got) != want {
		t.Fatalf("got %v %q, want text %q", typ, got, want)
	}
}

// expectClose reads from c, skipping what the room says, until the
// connection ends, and fails the test unless it ends with code.
func expectClose(t *testing.T, c *websocket.Conn, code websocket.StatusCode) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	for range 10 {
		_, _, err := c.Read(ctx)
		if err == nil {
			continue
		}
		if got := websocket.CloseStatus(err); got != code {
			t.Fatalf("closed with %v (%v), want %v", got, err, code)
		}
		return
	}
	t.Fatal("the connection was not closed")
}

func TestPageIsServed(t *testing.T) {
	_, url := startRoom(t)
	resp, err := http.Get(url + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("GET /: %s, Content-Type %q", resp.Status, resp.Header.Get("Content-Type"))
	}
	if !bytes.Equal(body, page) || !strings.Contains(string(body), "new WebSocket(") {
		t.Fatalf("GET / did not return the page:\n%s", body)
	}

	resp, err = http.Get(url + "/elsewhere")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("GET /elsewhere: %s, want 404", resp.Status)
	}
}

// Each step waits for the one before, so every guest sees the room's
// messages in one order and each read below knows what comes next.
func TestGuestsSeeEachOther(t *testing.T) {
	_, url := startRoom(t)
	a := dial(t, url)
	expect(t, a, "* guest-1 joined") // a is in the hub: it hears its own arrival
	b := dial(t, url)
	expect(t, b, "* guest-2 joined")
	expect(t, a, "* guest-2 joined")

	ctx := context.Background()
	if err := a.Write(ctx, websocket.MessageText, []byte("hello from a")); err != nil {
		t.Fatal(err)
	}
	expect(t, b, "guest-1: hello from a")
	expect(t, a, "guest-1: hello from a")

	if err := b.Write(ctx, websocket.MessageText, []byte("hi from b")); err != nil {
		t.Fatal(err)
	}
	expect(t, a, "guest-2: hi from b")
	expect(t, b, "guest-2: hi from b")

	if err := b.Close(websocket.StatusNormalClosure, "bye"); err != nil {
		t.Fatal(err)
	}
	expect(t, a, "* guest-2 left")
}

func TestOnlyShortTextIsRelayed(t *testing.T) {
	_, url := startRoom(t)
	ctx := context.Background()

	big := dial(t, url)
	if err := big.Write(ctx, websocket.MessageText, bytes.Repeat([]byte("x"), maxMessage+1)); err != nil {
		t.Fatal(err)
	}
	expectClose(t, big, websocket.StatusMessageTooBig)

	binary := dial(t, url)
	if err := binary.Write(ctx, websocket.MessageBinary, []byte{1, 2, 3}); err != nil {
		t.Fatal(err)
	}
	expectClose(t, binary, websocket.StatusUnsupportedData)
}

func TestOtherOriginsAreRefused(t *testing.T) {
	_, url := startRoom(t)
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	opts := &websocket.DialOptions{Header: http.Header{"Origin": {"http://elsewhere.example"}}}
	c, resp, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(url, "http")+"/ws", opts)
	if err == nil {
		c.CloseNow()
		t.Fatal("a page of another site could join")
	}
	if resp == nil || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("Dial: %v, want a 403 response", err)
	}
}

func TestCloseSaysGoodbye(t *testing.T) {
	rm, url := startRoom(t)
	a := dial(t, url)
	expect(t, a, "* guest-1 joined")
	done := make(chan struct{})
	go func() {
		defer close(done)
		rm.Close() // returns once a's connection is closed, which a's reading below allows
	}()
	expectClose(t, a, websocket.StatusGoingAway)
	select {
	case <-done:
	case <-time.After(wait):
		t.Fatal("Close did not return")
	}
	// Whoever comes now is turned away.
	late := dial(t, url)
	expectClose(t, late, websocket.StatusGoingAway)
}

// A guest that arrives as the room closes is told goodbye by its own
// handler, which wait waits for: a server that stopped there would leave it
// with no close frame (1006).
func TestWaitOutlastsALateGoodbye(t *testing.T) {
	rm, url := startRoom(t)
	rm.Close()
	late := dial(t, url) // its handler now closes it, and waits for its answer
	waited := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		waited <- rm.wait(ctx)
	}()
	select {
	case err := <-waited:
		t.Fatalf("wait returned (%v) while the late guest's handler was still closing it", err)
	case <-time.After(100 * time.Millisecond):
	}
	expectClose(t, late, websocket.StatusGoingAway) // reading, the guest answers the close
	if err := <-waited; err != nil {
		t.Fatalf("wait: %v", err)
	}
}

// A guest cannot start a line of its own inside a message: line breaks and
// other control characters reach the others as spaces.
func TestALineCannotPassForAnother(t *testing.T) {
	_, url := startRoom(t)
	a := dial(t, url)
	expect(t, a, "* guest-1 joined")
	b := dial(t, url)
	expect(t, b, "* guest-2 joined")
	expect(t, a, "* guest-2 joined")
	forged := "ok\nguest-2: my password is hunter2\r\u2028* guest-2 left\x1b[2J"
	if err := a.Write(context.Background(), websocket.MessageText, []byte(forged)); err != nil {
		t.Fatal(err)
	}
	expect(t, b, "guest-1: ok guest-2: my password is hunter2  * guest-2 left [2J")
}

// A guest that sends faster than the room allows is paced, not relayed at
// once: after lineBurst lines its next one waits (here for an hour), while
// the others are relayed as they come.
func TestAFloodIsPaced(t *testing.T) {
	rm, url := startRoom(t)
	needSecondLoopback(t) // the pacing is per host: the flooder must be another
	rm.lineInterval = time.Hour
	reader := dial(t, url)
	expect(t, reader, "* guest-1 joined")
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	flooder, err := dialFrom(ctx, url, "127.0.0.2")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { flooder.CloseNow() })
	expect(t, reader, "* guest-2 joined")
	for i := range lineBurst + 1 {
		if err := flooder.Write(ctx, websocket.MessageText, fmt.Appendf(nil, "flood %d", i)); err != nil {
			t.Fatal(err)
		}
	}
	for i := range lineBurst - 1 { // its "joined" was the first of its lineBurst
		expect(t, reader, fmt.Sprintf("guest-2: flood %d", i))
	}
	if err := reader.Write(ctx, websocket.MessageText, []byte("still here")); err != nil {
		t.Fatal(err)
	}
	expect(t, reader, "guest-1: still here") // not the flooder's next line
	// rm.Close, at cleanup, ends the flooder's wait.
}

// A guest's first message is its name, before it hears itself join.
func TestGuestLearnsItsName(t *testing.T) {
	_, url := startRoom(t)
	dial(t, url)
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(url, "http")+"/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	expect(t, c, "* you are guest-2")
	expect(t, c, "* guest-2 joined")
}
