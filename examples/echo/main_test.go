package main

import (
	"bufio"
	"context"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ws13/websocket"
)

// eachWayOfServing runs test as a subtest against an httptest server of
// each way the command serves: the read loop and the Poller.
func eachWayOfServing(t *testing.T, test func(t *testing.T, url string)) {
	poller, err := websocket.NewPoller()
	if err != nil {
		t.Fatal(err)
	}
	defer poller.Close()
	for name, handler := range map[string]http.Handler{
		"read loop": http.HandlerFunc(echo),
		"poller":    pollerEcho(poller),
	} {
		t.Run(name, func(t *testing.T) {
			srv := httptest.NewServer(handler)
			defer srv.Close()
			test(t, "ws"+strings.TrimPrefix(srv.URL, "http"))
		})
	}
}

// Both ways of serving echo every message back with its type.
func TestEcho(t *testing.T) {
	eachWayOfServing(t, func(t *testing.T, url string) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		c, _, err := websocket.Dial(ctx, url, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer c.CloseNow()
		for i, msg := range []string{"hello", "", strings.Repeat("x", 70000)} {
			typ := websocket.MessageText
			if i == 1 {
				typ = websocket.MessageBinary
			}
			if err := c.Write(ctx, typ, []byte(msg)); err != nil {
				t.Fatal(err)
			}
			gotTyp, got, err := c.Read(ctx)
			if err != nil || gotTyp != typ || string(got) != msg {
				t.Fatalf("echo of %d bytes: %v %d bytes, %v", len(msg), gotTyp, len(got), err)
			}
		}
		if err := c.Close(websocket.StatusNormalClosure, ""); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
}

// The echo server answers at any path, as the README and the command's
// doc say (ws://127.0.0.1:8080/ is only the shortest URL), both ways of
// serving alike.
func TestEchoAtAnyPath(t *testing.T) {
	eachWayOfServing(t, func(t *testing.T, url string) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		for _, path := range []string{"/echo", "/a/deeper/path", "/?query=1"} {
			c, _, err := websocket.Dial(ctx, url+path, nil)
			if err != nil {
				t.Fatalf("%s: %v", path, err)
			}
			if err := c.Write(ctx, websocket.MessageText, []byte(path)); err != nil {
				t.Fatalf("%s: %v", path, err)
			}
			if _, got, err := c.Read(ctx); err != nil || string(got) != path {
				t.Fatalf("%s: echo %q, %v", path, got, err)
			}
			if err := c.Close(websocket.StatusNormalClosure, ""); err != nil {
				t.Errorf("%s: Close: %v", path, err)
			}
		}
	})
}

// The command says which URL it listens on, and a client can dial that URL:
// with the port the system chose for -addr :0, and a host to connect to
// for a listener on every interface (-addr :9000, as the doc shows), where
// it said ws://:9000/.
func TestTheURLItListensOnCanBeDialed(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "echo")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	cmd := exec.Command(bin, "-addr", ":0")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	listening := make(chan string, 1)
	go func() {
		re := regexp.MustCompile(`listening on (\S+)`)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if m := re.FindStringSubmatch(sc.Text()); m != nil {
				listening <- m[1]
			}
		}
	}()
	var url string
	select {
	case url = <-listening:
	case <-time.After(10 * time.Second):
		t.Fatal("echo did not say where it listens")
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, url, nil)
	if err != nil {
		t.Fatalf("echo says it listens on %s: %v", url, err)
	}
	defer c.CloseNow()
	if err := c.Write(ctx, websocket.MessageText, []byte("hello")); err != nil {
		t.Fatal(err)
	}
	if _, got, err := c.Read(ctx); err != nil || string(got) != "hello" {
		t.Fatalf("echo via %s: %q, %v", url, got, err)
	}
}

// The server drops a connection that is no WebSocket once it has been idle
// or slow too long, and keeps a WebSocket whatever its timeouts: Accept
// takes the connection off net/http's deadlines. The timeouts are cut short
// here; the command's own are checked for being set.
func TestServerTimeoutsSpareWebSockets(t *testing.T) {
	defaults := newServer(http.HandlerFunc(echo))
	if defaults.ReadHeaderTimeout <= 0 || defaults.ReadTimeout <= 0 || defaults.IdleTimeout <= 0 {
		t.Errorf("ReadHeaderTimeout %v, ReadTimeout %v, IdleTimeout %v: a connection that is no WebSocket may be held for ever",
			defaults.ReadHeaderTimeout, defaults.ReadTimeout, defaults.IdleTimeout)
	}
	const short = 200 * time.Millisecond
	srv := newServer(http.HandlerFunc(echo))
	srv.ReadHeaderTimeout, srv.ReadTimeout, srv.IdleTimeout = short, short, short
	srv.ErrorLog = log.New(io.Discard, "", 0)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	defer srv.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, "ws://"+ln.Addr().String()+"/", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.CloseNow()

	// A keep-alive connection that asks for nothing more.
	idle, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	io.WriteString(idle, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(idle), nil)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	idle.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := idle.Read(make([]byte, 1)); err != io.EOF {
		t.Errorf("an idle keep-alive connection: read %v, want the server to close it (EOF)", err)
	}

	// By now the WebSocket has been quiet for longer than every timeout.
	time.Sleep(2 * short)
	if err := ws.Write(ctx, websocket.MessageText, []byte("still here")); err != nil {
		t.Fatal(err)
	}
	if _, msg, err := ws.Read(ctx); err != nil || string(msg) != "still here" {
		t.Fatalf("a WebSocket quiet for longer than the server's timeouts: read %q, %v", msg, err)
	}
}
