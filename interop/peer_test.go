package interop

// Peers and how the driver talks to them. Every peer runs the same small
// agent on each connection (README.md, "The agent protocol"): it echoes data
// messages and obeys a few commands, and it reports what it saw (open,
// close code and reason, errors) as events. ws13 is always the side that
// asserts.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ws13/websocket"
)

// event is what a peer reports about one of its connections.
type event struct {
	ID     string            `json:"id"`
	Event  string            `json:"event"` // listening, ready, open, close, error
	Code   int               `json:"code"`
	Reason string            `json:"reason"`
	Clean  *bool             `json:"clean,omitempty"`
	Detail string            `json:"detail"`
	URLs   map[string]string `json:"urls"`
}

// job asks a client peer to open one connection and run its agent on it.
type job struct {
	ID        string   `json:"id"`
	URL       string   `json:"url"`
	Protocols []string `json:"protocols,omitempty"`
	// Deflate is the peer's offer: "off", "default" (what the library
	// offers unless told otherwise) or "nct" (no context takeover both
	// ways, where the library can ask for it).
	// "offer": exactly the parameters in Offer.
	Deflate string `json:"deflate,omitempty"`
	// Offer is a permessage-deflate offer by RFC 7692 parameter name: true
	// for a parameter without a value, a number for window bits. The
	// peers add a client_max_window_bits without a value, as their
	// libraries do by default, unless Offer gives it one.
	Offer  map[string]any `json:"offer,omitempty"`
	Origin string         `json:"origin,omitempty"`
	// Prime, for the browser, is a URL to fetch before it opens the
	// connection, so that it holds an HTTP/2 connection to the server.
	Prime string `json:"prime,omitempty"`
	// Frag asks for a connection that fragments what it sends, for peers
	// that cannot cut fragments on demand (gorilla: a small write buffer).
	Frag bool `json:"frag,omitempty"`
}

// hub routes events to whoever waits for a connection id.
type hub struct {
	mu      sync.Mutex
	waiters map[string]chan event
	seq     int
}

var events = &hub{waiters: map[string]chan event{}}

// idSafe keeps ids plain in a URL's query.
var idSafe = strings.NewReplacer(" ", "-", "/", "-")

// newID returns a fresh connection id and the channel of its events.
func (h *hub) newID(prefix string) (string, <-chan event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.seq++
	id := fmt.Sprintf("%s-%d", idSafe.Replace(prefix), h.seq)
	ch := make(chan event, 16)
	h.waiters[id] = ch
	return id, ch
}

func (h *hub) deliver(ev event) {
	h.mu.Lock()
	ch := h.waiters[ev.ID]
	h.mu.Unlock()
	if ch == nil {
		return
	}
	select {
	case ch <- ev:
	default: // nobody listens any more
	}
}

// waitEvent returns the next event of kind for a connection.
func waitEvent(ch <-chan event, kind string, timeout time.Duration) (event, error) {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		select {
		case ev := <-ch:
			if ev.Event == kind {
				return ev, nil
			}
		case <-timer.C:
			return event{}, fmt.Errorf("peer reported no %q event within %v", kind, timeout)
		}
	}
}

// waitEvents returns the first event of each kind, whatever their order.
func waitEvents(ch <-chan event, timeout time.Duration, kinds ...string) (map[string]event, error) {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	got := map[string]event{}
	for len(got) < len(kinds) {
		select {
		case ev := <-ch:
			if _, seen := got[ev.Event]; !seen && slices.Contains(kinds, ev.Event) {
				got[ev.Event] = ev
			}
		case <-timer.C:
			return got, fmt.Errorf("peer reported %d of the events %q within %v", len(got), kinds, timeout)
		}
	}
	return got, nil
}

// role says which side the peer plays.
type role int

const (
	peerServer role = iota // the peer serves, ws13 dials
	peerClient             // the peer dials, ws13 accepts
)

func (r role) String() string {
	if r == peerServer {
		return "server"
	}
	return "client"
}

// peer is one implementation under test.
type peer struct {
	name string
	// startServer runs the peer as a server and returns its URLs by
	// configuration: "plain" (no compression, subprotocols chat.v1 and
	// chat.v2), "deflate" (permessage-deflate with the library's defaults),
	// "frag" (plain, fragmenting what it sends) and "tls" (plain, on
	// wss:// with theCert). nil if it cannot serve. It gives up at the
	// deadline, if not zero (startWait).
	startServer func(t *testing.T, deadline time.Time) (map[string]string, error)
	// startClient runs the peer as a client and returns the function that
	// makes it open a connection. nil if it cannot dial.
	startClient func(t *testing.T, deadline time.Time) (func(job) error, error)
	// na gives the reason a feature cannot be expressed by this peer in a
	// role, or "".
	na func(r role, f string) string
	// splitsExact: the peer cuts fragments where the frag command says
	// (binary, and text at code point boundaries).
	splitsExact bool
	// ownPingPayload, if set, says why the peer's ping cannot carry the
	// payload the test gives it (its library picks one itself).
	ownPingPayload string
	// unsendableClose, if set, says why the peer cannot send a close frame
	// with a code (StatusNoStatusRcvd: with none), or "".
	unsendableClose func(code websocket.StatusCode) string
	// ownCloseAnswerUnseen: when the peer closes first, its agent may not
	// learn the code of ws13's answer, and reports 1006 (coder's Close
	// reads the answer itself when it takes the read lock before the
	// agent's Read, which then returns only net.ErrClosed).
	ownCloseAnswerUnseen bool
	// needsProtocol, if set, says why the peer's client fails a
	// connection on which the server chose none of the subprotocols it
	// offered.
	needsProtocol string
	// nctOffer: the deflate value that makes the peer offer no context
	// takeover.
	nctOffer string
	// h2: the peer's client opens WebSockets over HTTP/2 (RFC 8441).
	h2 bool
	// noOff: the peer cannot leave compression out of its offer.
	noOff bool
	// missing, if set, says why the peer is not installed.
	missing func() string
}

// process is a peer program run by the tests, speaking JSON lines.
type process struct {
	cmd       *exec.Cmd
	stdin     io.WriteCloser
	mu        sync.Mutex
	listening chan event
	stderr    *tailBuffer
}

// startProcess runs a peer program in its own process group, so that
// cleanup ends it and everything it started. Should the test binary die
// before its cleanup, the child dies too: by Pdeathsig on Linux
// (childAttr), and because the programs exit when their stdin, a pipe that
// only this process holds, reaches EOF.
func startProcess(t *testing.T, env []string, dir string, name string, args ...string) (*process, error) {
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = childAttr()
	p := &process{cmd: cmd, listening: make(chan event, 1), stderr: &tailBuffer{max: 8 << 10}}
	cmd.Stderr = p.stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if p.stdin, err = cmd.StdinPipe(); err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	t.Cleanup(func() {
		p.stdin.Close()
		killGroup(cmd)
		cmd.Wait()
		if t.Failed() && p.stderr.Len() > 0 {
			t.Logf("%s stderr:\n%s", name, p.stderr.String())
		}
	})
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			var ev event
			if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
				continue
			}
			if ev.Event == "listening" {
				p.listening <- ev
				continue
			}
			events.deliver(ev)
		}
	}()
	return p, nil
}

// startWait is how long a peer may take to start: limit, or less if the
// deadline (if not zero) comes first.
func startWait(limit time.Duration, deadline time.Time) time.Duration {
	if !deadline.IsZero() {
		limit = min(limit, time.Until(deadline))
	}
	return max(limit, 0)
}

// urls waits for the server's listening line.
func (p *process) urls(deadline time.Time) (map[string]string, error) {
	wait := startWait(20*time.Second, deadline)
	select {
	case ev := <-p.listening:
		return ev.URLs, nil
	case <-time.After(wait):
		return nil, fmt.Errorf("no listening line within %v; stderr: %s", wait.Round(time.Millisecond), p.stderr.String())
	}
}

// send writes a job line to the client program.
func (p *process) send(j job) error {
	b, err := json.Marshal(j)
	if err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	_, err = p.stdin.Write(append(b, '\n'))
	return err
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
	max int
}

func (b *tailBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf.Write(p)
	if over := b.buf.Len() - b.max; over > 0 {
		b.buf.Next(over)
	}
	return len(p), nil
}

func (b *tailBuffer) Len() int { b.mu.Lock(); defer b.mu.Unlock(); return b.buf.Len() }
func (b *tailBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// tlsEnv hands a server program the certificate for its wss:// listener.
func tlsEnv(t *testing.T, mode string) ([]string, error) {
	if mode != "server" {
		return nil, nil
	}
	cert, key, err := certFiles(t)
	if err != nil {
		return nil, err
	}
	return []string{"INTEROP_TLS_CERT=" + cert, "INTEROP_TLS_KEY=" + key}, nil
}

// childRoles are the roles of a peer program run in a child process, in
// dir, by command followed by the mode: "server" or "client".
func childRoles(dir string, command ...string) (
	startServer func(*testing.T, time.Time) (map[string]string, error),
	startClient func(*testing.T, time.Time) (func(job) error, error),
) {
	run := func(t *testing.T, mode string) (*process, error) {
		env, err := tlsEnv(t, mode)
		if err != nil {
			return nil, err
		}
		return startProcess(t, env, dir, command[0], append(command[1:], mode)...)
	}
	startServer = func(t *testing.T, deadline time.Time) (map[string]string, error) {
		p, err := run(t, "server")
		if err != nil {
			return nil, err
		}
		return p.urls(deadline)
	}
	startClient = func(t *testing.T, _ time.Time) (func(job) error, error) {
		p, err := run(t, "client")
		if err != nil {
			return nil, err
		}
		return p.send, nil
	}
	return startServer, startClient
}

// nodePeer is node's ws library, run by node/peer.mjs.
func nodePeer() *peer {
	startServer, startClient := childRoles("node", "node", "peer.mjs")
	return &peer{
		name:        "node ws",
		startServer: startServer,
		startClient: startClient,
		na: func(r role, f string) string {
			return ""
		},
		splitsExact:   true,
		nctOffer:      "nct",
		needsProtocol: "node ws's client fails a connection whose server chose none of the subprotocols offered",
		missing: func() string {
			if _, err := exec.LookPath("node"); err != nil {
				return "node is not installed"
			}
			if _, err := os.Stat("node_modules/ws/package.json"); err != nil {
				return "node_modules/ws is missing (npm ci)"
			}
			return ""
		},
	}
}

// python is Debian's python3 (with python3-websockets), not whatever
// python3 comes first on PATH.
const python = "/usr/bin/python3"

// pythonPeer is python's websockets library, run by python/peer.py.
func pythonPeer() *peer {
	startServer, startClient := childRoles("python", python, "-u", "peer.py")
	return &peer{
		name:        "python websockets",
		startServer: startServer,
		startClient: startClient,
		na: func(r role, f string) string {
			if f == featUTF8FromPeer || f == featUTF8EdgesFromPeer {
				return "websockets sends text fragments as str, which cannot split a code point"
			}
			if f == featDeflateW8 {
				return "python's zlib cannot deflate raw in 8 bits (compressobj(wbits=-8) fails), and websockets does not raise it to 9"
			}
			return ""
		},
		splitsExact: true,
		nctOffer:    "nct",
		unsendableClose: func(code websocket.StatusCode) string {
			if code == websocket.StatusNoStatusRcvd {
				return "websockets' close() always sends a code (1005 is refused)"
			}
			return ""
		},
		missing: func() string {
			ctx, cancel := context.WithTimeout(context.Background(), probeTimeout)
			defer cancel()
			if err := exec.CommandContext(ctx, python, "-c", "import websockets").Run(); err != nil {
				return "python3-websockets is not installed"
			}
			return ""
		},
	}
}

// probeTimeout bounds a command run to see whether a peer is there or
// which version it is.
const probeTimeout = 10 * time.Second

// versionOf returns the first line of a command's output, for the matrix.
func versionOf(name string, args ...string) string {
	ctx, cancel := context.WithTimeout(context.Background(), probeTimeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, name, args...).Output()
	if err != nil {
		return "?"
	}
	line, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
	return line
}
