// Package trust checks ws13's Autobahn runner against implementations that
// are not ws13's: node ws, python websockets and gorilla/websocket, each as
// server (the runner in fuzzingclient mode) and as client (the runner in
// fuzzingserver mode), configured as each project's own Autobahn testee.
// The runner's verdicts must equal the official suite's published verdicts
// for them, kept in testdata/expected/<peer>-<role>.json, except for the
// cases listed in testdata/known_differences.json (each explained in
// autobahn/README.md, "Known differences").
//
// The test is off unless WS13_TRUST=1. It installs nothing (see
// install.sh); a peer that is missing is skipped with the reason.
//
//	WS13_TRUST=1 go test -run TestTrust -v -timeout 90m
//
// WS13_TRUST_PEERS (e.g. "ws,gorilla") and WS13_TRUST_ROLES ("server",
// "client") narrow the runs. By default the cases are every case of groups
// 1–7, 9 and 10 and 36 representative cases of groups 12 and 13 (see
// trustSpec); WS13_TRUST_FULL=1 runs all 517, WS13_TRUST_CASES
// (comma-separated globs) picks others.
// WS13_TRUST_OUTDIR keeps the reports; WS13_TRUST_LOG=1 logs every case.
package trust

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ws13/websocket/autobahn"
)

// runTimeout bounds one peer in one role. The full selection takes a few
// minutes per run on a quiet machine.
const runTimeout = 20 * time.Minute

type verdict struct {
	Behavior      string `json:"behavior"`
	BehaviorClose string `json:"behaviorClose"`
}

func (v verdict) String() string { return v.Behavior + "/" + v.BehaviorClose }

// knownDifference is a case where the runner is known to disagree, always
// or at times, with the official result for one peer in one role. Accept
// lists the verdicts the runner may give instead of the official one.
type knownDifference struct {
	Peer   string    `json:"peer"`
	Role   string    `json:"role"`
	Case   string    `json:"case"`
	Accept []verdict `json:"accept"`
	Reason string    `json:"reason"`
}

// peer knows how to start one implementation as server or client.
type peer struct {
	name string
	// check reports why the peer cannot run here, or nil.
	check func(t *testing.T) error
	// server returns the command of an echo server listening on a free
	// port of 127.0.0.1; it prints "echo server on ws://…" on stderr.
	server func(t *testing.T) *exec.Cmd
	// client returns the command of a fuzzingserver client.
	client func(t *testing.T, ctx context.Context, url, agent string) *exec.Cmd
}

const python = "/usr/bin/python3"

var peers = []peer{
	{
		name:  "gorilla",
		check: func(*testing.T) error { return nil },
		server: func(t *testing.T) *exec.Cmd {
			return exec.Command(goBuild(t, "server"), "-addr", "127.0.0.1:0")
		},
		client: func(t *testing.T, ctx context.Context, url, agent string) *exec.Cmd {
			return exec.CommandContext(ctx, goBuild(t, "client"), "-url", url, "-agent", agent)
		},
	},
	{
		name: "ws",
		check: func(*testing.T) error {
			if _, err := exec.LookPath("node"); err != nil {
				return fmt.Errorf("node is not installed (run autobahn/trust/install.sh)")
			}
			b, err := os.ReadFile("node/node_modules/ws/package.json")
			if err != nil {
				return fmt.Errorf("node ws is not installed in autobahn/trust/node (run autobahn/trust/install.sh)")
			}
			var pkg struct{ Version string }
			json.Unmarshal(b, &pkg)
			if pkg.Version != "8.18.3" {
				return fmt.Errorf("node ws is %q, the expectations are for 8.18.3 (run npm ci in autobahn/trust/node)", pkg.Version)
			}
			return nil
		},
		server: func(*testing.T) *exec.Cmd {
			return exec.Command("node", "node/server.js", "0")
		},
		client: func(_ *testing.T, ctx context.Context, url, agent string) *exec.Cmd {
			return exec.CommandContext(ctx, "node", "node/client.js", url, agent)
		},
	},
	{
		name: "websockets",
		check: func(*testing.T) error {
			out, err := exec.Command(python, "-c", "import websockets; print(websockets.__version__)").Output()
			if err != nil {
				return fmt.Errorf("%s cannot import websockets (install Debian's python3-websockets: autobahn/trust/install.sh)", python)
			}
			if v := strings.TrimSpace(string(out)); !strings.HasPrefix(v, "10.") {
				return fmt.Errorf("python websockets is %s, the expectations are for 10.x (Debian 12's python3-websockets 10.4)", v)
			}
			return nil
		},
		server: func(*testing.T) *exec.Cmd {
			return exec.Command(python, "python/server.py", "0")
		},
		client: func(_ *testing.T, ctx context.Context, url, agent string) *exec.Cmd {
			return exec.CommandContext(ctx, python, "python/client.py", url, agent)
		},
	},
}

func TestTrust(t *testing.T) {
	if os.Getenv("WS13_TRUST") == "" {
		t.Skip("set WS13_TRUST=1 to check the Autobahn runner against ws, websockets and gorilla (install them with autobahn/trust/install.sh)")
	}
	known := loadKnown(t)
	for _, p := range peers {
		if !selected("WS13_TRUST_PEERS", p.name) {
			continue
		}
		for _, role := range []string{"server", "client"} {
			if !selected("WS13_TRUST_ROLES", role) {
				continue
			}
			t.Run(p.name+"-"+role, func(t *testing.T) {
				if err := p.check(t); err != nil {
					t.Skipf("skipping %s: %v", p.name, err)
				}
				spec := trustSpec(t, p.name+"-"+role)
				var got map[string]*autobahn.Result
				var cases []*autobahn.Case
				if role == "server" {
					got, cases = runServer(t, p, spec)
				} else {
					got, cases = runClient(t, p, spec)
				}
				compare(t, p.name, role, cases, got, known)
			})
		}
	}
}

func selected(env, name string) bool {
	v := os.Getenv(env)
	return v == "" || slices.Contains(strings.Split(v, ","), name)
}

func trustSpec(t *testing.T, sub string) *autobahn.Spec {
	cases := []string{"1.*", "2.*", "3.*", "4.*", "5.*", "6.*", "7.*", "9.*", "10.*"}
	// Groups 12 and 13 take over ten minutes per run for the fastest
	// peer. By default each of their twelve subgroups (every negotiation
	// of permessage-deflate) is represented by three cases: 1000 messages
	// of 16 characters unfragmented (.1), of 1024 unfragmented (.4) and of
	// 8192 in frames of 256 octets (.11).
	for _, sub := range []string{"12.1", "12.2", "12.3", "12.4", "12.5", "13.1", "13.2", "13.3", "13.4", "13.5", "13.6", "13.7"} {
		cases = append(cases, sub+".1", sub+".4", sub+".11")
	}
	if os.Getenv("WS13_TRUST_FULL") != "" {
		cases = []string{"*"}
	}
	if v := os.Getenv("WS13_TRUST_CASES"); v != "" {
		cases = strings.Split(v, ",")
	}
	out := t.TempDir()
	if v := os.Getenv("WS13_TRUST_OUTDIR"); v != "" {
		out = filepath.Join(v, sub)
	}
	return &autobahn.Spec{Cases: cases, Outdir: out}
}

// goBuild compiles ./gorilla/<name> once per test binary.
var built = map[string]string{}

func goBuild(t *testing.T, name string) string {
	if bin, ok := built[name]; ok {
		return bin
	}
	dir, err := os.MkdirTemp("", "ws13-trust-")
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, name)
	if out, err := exec.Command("go", "build", "-o", bin, "./gorilla/"+name).CombinedOutput(); err != nil {
		t.Fatalf("building gorilla %s: %v\n%s", name, err, out)
	}
	built[name] = bin
	return bin
}

func TestMain(m *testing.M) {
	code := m.Run()
	for _, bin := range built {
		os.RemoveAll(filepath.Dir(bin))
	}
	os.Exit(code)
}

// runServer starts the peer's echo server and runs the cases against it.
func runServer(t *testing.T, p peer, spec *autobahn.Spec) (map[string]*autobahn.Result, []*autobahn.Case) {
	cmd := p.server(t)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting the %s server: %v", p.name, err)
	}
	defer func() {
		cmd.Process.Kill()
		cmd.Wait()
	}()
	urlc := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		sent := false
		for sc.Scan() {
			if _, after, ok := strings.Cut(sc.Text(), "echo server on "); ok && !sent {
				urlc <- after
				sent = true
			}
		}
		if !sent {
			close(urlc)
		}
	}()
	var url string
	select {
	case url = <-urlc:
	case <-time.After(30 * time.Second):
	}
	if url == "" {
		t.Fatalf("the %s server did not report its address", p.name)
	}
	spec.Servers = []autobahn.Server{{Agent: p.name, URL: url}}
	rn, err := autobahn.NewRunner(spec, logWriter(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), runTimeout)
	defer cancel()
	if err := rn.RunClient(ctx); err != nil {
		t.Fatalf("runner: %v", err)
	}
	return rn.Results()[p.name], rn.Cases()
}

// runClient serves the cases and lets the peer's client run them all.
func runClient(t *testing.T, p peer, spec *autobahn.Spec) (map[string]*autobahn.Result, []*autobahn.Case) {
	rn, err := autobahn.NewRunner(spec, logWriter(t))
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), runTimeout)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- rn.Serve(ctx, ln) }()
	cmd := p.client(t, ctx, "ws://"+ln.Addr().String(), p.name)
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Errorf("the %s client: %v\n%s", p.name, err, tail(out))
	}
	cancel()
	<-done
	return rn.Results()[p.name], rn.Cases()
}

func tail(b []byte) []byte {
	if len(b) > 4000 {
		return b[len(b)-4000:]
	}
	return b
}

func loadKnown(t *testing.T) []knownDifference {
	b, err := os.ReadFile("testdata/known_differences.json")
	if err != nil {
		t.Fatal(err)
	}
	var k []knownDifference
	if err := json.Unmarshal(b, &k); err != nil {
		t.Fatalf("testdata/known_differences.json: %v", err)
	}
	return k
}

// compare fails on every case whose verdict differs from the official one,
// unless it is a listed known difference and the runner gives one of the
// verdicts listed for it.
func compare(t *testing.T, name, role string, cases []*autobahn.Case, got map[string]*autobahn.Result, known []knownDifference) {
	file := filepath.Join("testdata", "expected", name+"-"+role+".json")
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var want map[string]verdict
	if err := json.Unmarshal(b, &want); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	var diffs []string
	agree, knownDiff := 0, 0
	for _, c := range cases {
		w, ok := want[c.ID]
		if !ok {
			diffs = append(diffs, c.ID+": no official verdict in "+file)
			continue
		}
		r := got[c.ID]
		if r == nil {
			diffs = append(diffs, c.ID+": not run (official "+w.String()+")")
			continue
		}
		g := verdict{r.Behavior, r.BehaviorClose}
		if g == w {
			agree++
			continue
		}
		i := slices.IndexFunc(known, func(k knownDifference) bool {
			return k.Peer == name && k.Role == role && k.Case == c.ID
		})
		if i >= 0 && slices.Contains(known[i].Accept, g) {
			knownDiff++
			t.Logf("%s: %s, official %s (known difference: %s)", c.ID, g, w, known[i].Reason)
			continue
		}
		diffs = append(diffs, fmt.Sprintf("%s: runner %s, official %s", c.ID, g, w))
	}
	t.Logf("%s as %s: %d cases agree with the official verdicts, %d known differences, %d unexpected differences",
		name, role, agree, knownDiff, len(diffs))
	if len(diffs) > 0 {
		t.Errorf("%d unexpected differences from %s:\n  %s", len(diffs), file, strings.Join(diffs, "\n  "))
	}
}

// logWriter sends the runner's progress to the test log when
// WS13_TRUST_LOG is set.
func logWriter(t *testing.T) io.Writer {
	if os.Getenv("WS13_TRUST_LOG") == "" {
		return nil
	}
	return tWriter{t}
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
