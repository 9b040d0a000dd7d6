package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ws13/websocket"
)

// dialFrom dials the room's /ws from the loopback address local (on Linux
// every 127.x.y.z is this machine), so that a test can play two hosts.
func dialFrom(ctx context.Context, url, local string) (*websocket.Conn, error) {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}}
	c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(url, "http")+"/ws",
		&websocket.DialOptions{NetDialContext: d.DialContext})
	return c, err
}

// needSecondLoopback skips the test where 127.0.0.2 cannot be bound.
func needSecondLoopback(t *testing.T) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.2:0")
	if err != nil {
		t.Skipf("no second loopback address: %v", err)
	}
	ln.Close()
}

// countUntilQuiet reads c until nothing arrives for quiet (or max messages
// arrived, or the connection ends) and returns what it read.
func countUntilQuiet(t *testing.T, c *websocket.Conn, quiet time.Duration, max int) []string {
	t.Helper()
	var got []string
	deadline := time.Now().Add(wait)
	for len(got) < max && time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), quiet)
		_, msg, err := c.Read(ctx)
		cancel()
		if errors.Is(err, context.DeadlineExceeded) {
			break
		}
		if err != nil {
			t.Fatalf("the honest guest's connection ended after %d messages: %v", len(got), err)
		}
		got = append(got, string(msg))
	}
	return got
}

// The room paces each host to lineBurst lines at once: one client that
// opens many connections must not multiply its allowance and flood everyone
// as if there were no pacing.
func TestManyConnectionsDoNotMultiplyTheBurst(t *testing.T) {
	needSecondLoopback(t)
	rm, url := startRoom(t)
	rm.lineInterval = time.Hour // after the burst, nothing more
	reader := dial(t, url)      // from 127.0.0.1
	expect(t, reader, "* guest-1 joined")

	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	const conns = 30
	for i := range conns {
		c, err := dialFrom(ctx, url, "127.0.0.2")
		if err != nil {
			continue // refused: fine
		}
		t.Cleanup(func() { c.CloseNow() })
		for j := range lineBurst {
			if err := c.Write(ctx, websocket.MessageText, fmt.Appendf(nil, "flood %d.%d", i, j)); err != nil {
				break
			}
		}
	}
	lines := 0
	for _, msg := range countUntilQuiet(t, reader, 500*time.Millisecond, 10*conns*lineBurst) {
		if !strings.HasPrefix(msg, "* ") {
			lines++
		}
	}
	if lines > lineBurst {
		t.Fatalf("one host sent %d lines at once through %d connections; one guest may send %d", lines, conns, lineBurst)
	}
}

// "joined" and "left" notices are broadcast to everyone, so they draw on the
// host's allowance too: a client that connects and disconnects in a loop
// must not flood every guest with notices.
func TestReconnectingDoesNotFloodTheRoom(t *testing.T) {
	needSecondLoopback(t)
	rm, url := startRoom(t)
	rm.lineInterval = time.Hour
	reader := dial(t, url)
	expect(t, reader, "* guest-1 joined")

	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	const cycles = 60
	for range cycles {
		c, err := dialFrom(ctx, url, "127.0.0.2")
		if err != nil {
			continue
		}
		c.Close(websocket.StatusNormalClosure, "")
	}
	notices := countUntilQuiet(t, reader, 500*time.Millisecond, 4*cycles)
	if len(notices) > 2*lineBurst {
		t.Fatalf("%d connect/disconnect cycles from one host sent everyone %d notices", cycles, len(notices))
	}
}

// buildAndStart builds the chat command and starts it with -addr addr (a
// port of 0: a random one); it returns the process and the address it
// tells to open in a browser.
func buildAndStart(t *testing.T, addr string) (*exec.Cmd, string) {
	t.Helper()
	if runtime.GOOS == "windows" {
		t.Skip("signals")
	}
	bin := filepath.Join(t.TempDir(), "chat")
	build := exec.Command("go", "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	cmd := exec.Command(bin, "-addr", addr)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	opened := make(chan string, 1)
	go func() {
		re := regexp.MustCompile(`open http://([^/ ]+)/`)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if m := re.FindStringSubmatch(sc.Text()); m != nil {
				opened <- m[1]
			}
		}
	}()
	select {
	case a := <-opened:
		return cmd, a
	case <-time.After(wait):
		t.Fatal("the chat did not say where it listens")
		return nil, ""
	}
}

// The chat says goodbye (1001) to every guest when it is interrupted or
// terminated: SIGTERM is what docker stop, systemd and kill send, and
// without a goodbye every page would see 1006.
func TestSignalsSayGoodbye(t *testing.T) {
	for _, sig := range []os.Signal{os.Interrupt, syscall.SIGTERM} {
		t.Run(sig.String(), func(t *testing.T) {
			cmd, addr := buildAndStart(t, "127.0.0.1:0")
			c := dial(t, "http://"+addr)
			expect(t, c, "* guest-1 joined")
			if err := cmd.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			expectClose(t, c, websocket.StatusGoingAway)
		})
	}
}

// Served on every interface (-addr :9000, as the command's doc shows), the
// chat must not tell the user to open http://[::]:9000/: the unspecified
// address names no host to connect to. The address it gives serves the
// page, and the page's own origin may join.
func TestEveryInterfaceGivesAnAddressToOpen(t *testing.T) {
	_, addr := buildAndStart(t, ":0")
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		t.Fatalf("the chat says to open http://%s/, an address no browser can connect to", addr)
	}
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := client.Get("http://" + addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET http://%s/: %s", addr, resp.Status)
	}
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	opts := &websocket.DialOptions{Header: http.Header{"Origin": {"http://" + addr}}}
	c, _, err := websocket.Dial(ctx, "ws://"+addr+"/ws", opts)
	if err != nil {
		t.Fatalf("a page from http://%s/ could not join: %v", addr, err)
	}
	c.CloseNow()
}

// Every HTTP connection ends in bounded time unless it becomes a guest:
// net/http waits for ever for the next request on a keep-alive connection
// without IdleTimeout (ReadTimeout stands in for it), and for a request's
// body without ReadTimeout, and neither kind counts toward
// maxGuestsPerHost. The timeouts themselves are net/http's, tested there,
// and too long to wait out here: this checks that the server has them.
func TestServerHoldsNoConnectionForEver(t *testing.T) {
	srv := newServer(newRoom())
	idle := srv.IdleTimeout
	if idle == 0 {
		idle = srv.ReadTimeout // as net/http does
	}
	for _, tt := range []struct {
		name string
		d    time.Duration
	}{
		{"ReadHeaderTimeout (a header that never ends)", srv.ReadHeaderTimeout},
		{"ReadTimeout (a body that never ends)", srv.ReadTimeout},
		{"IdleTimeout (a keep-alive connection that sends nothing more)", idle},
	} {
		if tt.d <= 0 {
			t.Errorf("%s is not set: such a connection is held for ever", tt.name)
		}
	}
	if srv.MaxHeaderBytes <= 0 || srv.MaxHeaderBytes > 64<<10 {
		t.Errorf("MaxHeaderBytes %d: a request header may take 1 MiB", srv.MaxHeaderBytes)
	}
}

// A page on another site can rebind its own name to 127.0.0.1 (DNS
// rebinding): the browser then sends that name as both Origin and Host, so
// the origin check alone lets it in. On a loopback listener, only a name
// that cannot be rebound (localhost, an IP address) may join.
func TestRebindingNamesAreRefused(t *testing.T) {
	_, url := startRoom(t) // on 127.0.0.1
	port := url[strings.LastIndex(url, ":")+1:]
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	for _, host := range []string{"evil.example", "localhost.evil.example", "127.0.0.1.nip.io"} {
		hostPort := host + ":" + port
		opts := &websocket.DialOptions{Header: http.Header{"Host": {hostPort}, "Origin": {"http://" + hostPort}}}
		c, resp, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(url, "http")+"/ws", opts)
		if err == nil {
			c.CloseNow()
			t.Errorf("a page of http://%s, rebound to 127.0.0.1, could join", hostPort)
			continue
		}
		if resp == nil || resp.StatusCode != http.StatusForbidden {
			t.Errorf("Host %s: %v, want a 403 response", hostPort, err)
		}
	}
	for _, host := range []string{"localhost", "chat.localhost", "127.0.0.1", "[::1]"} {
		hostPort := host + ":" + port
		opts := &websocket.DialOptions{Header: http.Header{"Host": {hostPort}, "Origin": {"http://" + hostPort}}}
		c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(url, "http")+"/ws", opts)
		if err != nil {
			t.Errorf("a page of http://%s could not join: %v", hostPort, err)
			continue
		}
		c.Close(websocket.StatusNormalClosure, "")
	}
}
