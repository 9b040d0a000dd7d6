package autobahn

import (
	"bufio"
	"context"
	"errors"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// runAgainst runs the given cases in fuzzingclient mode against a reference
// server and returns the verdicts by case id.
func runAgainst(t *testing.T, o peerOpts, cases ...string) map[string]*Result {
	t.Helper()
	url := startRefServer(t, o)
	spec := &Spec{Servers: []Server{{Agent: "ref", URL: url}}, Cases: cases, Outdir: t.TempDir()}
	rn, err := NewRunner(spec, testLog{t})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if err := rn.RunClient(ctx); err != nil {
		t.Fatal(err)
	}
	return rn.Results()["ref"]
}

type testLog struct{ t *testing.T }

func (l testLog) Write(p []byte) (int, error) {
	if testing.Verbose() {
		l.t.Log(strings.TrimSpace(string(p)))
	}
	return len(p), nil
}

// wantOK lists the verdict a strictly correct peer earns.
func wantOK(id string) (string, string) {
	switch id {
	case "7.1.6", "7.13.1", "7.13.2":
		return Informational, Informational
	}
	return OK, OK
}

func TestStrictServerAllOK(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a few hundred cases over 127.0.0.1")
	}
	t.Parallel()
	res := runAgainst(t, peerOpts{}, "1.*", "2.*", "3.*", "4.*", "5.*", "6.*", "7.*", "10.*")
	if len(res) != 16+11+7+10+20+145+37+1 {
		t.Errorf("%d results", len(res))
	}
	for id, r := range res {
		b, bc := wantOK(id)
		if r.Behavior != b || r.BehaviorClose != bc {
			t.Errorf("case %s: %s / %s, want %s / %s", id, r.Behavior, r.BehaviorClose, b, bc)
		}
	}
}

func TestVerdicts(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		o    peerOpts
		want map[string][2]string
	}{
		// An endpoint that never checks UTF-8 echoes the invalid text and
		// the runner has to close: the case fails (wrong endpoint closed).
		{"noUTF8", peerOpts{noUTF8: true}, map[string][2]string{
			"6.3.1": {Failed, Failed}, "6.2.1": {OK, OK},
		}},
		// Checking only at the end of a message is NON-STRICT for 6.4.x.
		{"lateUTF8", peerOpts{lateUTF8: true}, map[string][2]string{
			"6.4.1": {NonStrict, OK}, "6.4.3": {NonStrict, OK}, "6.3.1": {OK, OK},
		}},
		// A wrong code in the close reply: WRONG CODE, and group 7 fails the case.
		{"closeCode", peerOpts{closeCode: 1001}, map[string][2]string{
			"1.1.1": {OK, WrongCode}, "7.7.1": {Failed, WrongCode}, "7.7.2": {OK, OK},
		}},
		// A server that does not close TCP after the closing handshake: the
		// runner drops it after a second, which is unclean; in 1.1.1 the
		// case's own one-second kill timer comes first (as in the official
		// suite), so the runner is blamed for dropping TCP.
		{"noTCPClose", peerOpts{noTCPClose: true}, map[string][2]string{
			"1.1.1": {OK, FailedByClient}, "1.1.6": {OK, Unclean},
		}},
		// Pings left unanswered.
		{"noPong", peerOpts{noPingAnswer: true}, map[string][2]string{
			"2.2": {Failed, OK},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var ids []string
			for id := range tc.want {
				ids = append(ids, id)
			}
			res := runAgainst(t, tc.o, ids...)
			for id, w := range tc.want {
				r := res[id]
				if r == nil {
					t.Errorf("case %s: no result", id)
					continue
				}
				if r.Behavior != w[0] || r.BehaviorClose != w[1] {
					t.Errorf("case %s: %s / %s, want %s / %s", id, r.Behavior, r.BehaviorClose, w[0], w[1])
				}
			}
		})
	}
}

// A peer that does not answer the handshake at all.
func TestHandshakeNeverCompleted(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err == nil {
			c.Write([]byte("HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n"))
			c.Close()
		}
	}()
	spec := &Spec{Servers: []Server{{Agent: "bad", URL: "ws://" + ln.Addr().String()}}, Cases: []string{"1.1.1"}, Outdir: t.TempDir()}
	rn, _ := NewRunner(spec, nil)
	if err := rn.RunClient(context.Background()); err != nil {
		t.Fatal(err)
	}
	r := rn.Results()["bad"]["1.1.1"]
	if r == nil || r.Behavior != Failed || r.BehaviorClose != Failed {
		t.Fatalf("got %+v", r)
	}
}

func TestFuzzingServerWithReferenceClient(t *testing.T) {
	t.Parallel()
	spec := &Spec{Cases: []string{"1.1.1", "2.2", "3.1", "5.6", "6.3.2", "7.3.2", "7.9.1", "10.1.1", "12.1.1", "13.2.1"}, Outdir: t.TempDir()}
	rn, addr := serveFuzzing(t, spec)
	if err := runRefClient("ws://"+addr, "refclient", peerOpts{deflate: true}); err != nil {
		t.Fatal(err)
	}
	res := rn.Results()["refclient"]
	if len(res) != len(spec.Cases) {
		t.Fatalf("%d results, want %d", len(res), len(spec.Cases))
	}
	for id, r := range res {
		if r.Behavior != OK || r.BehaviorClose != OK {
			t.Errorf("case %s: %s / %s", id, r.Behavior, r.BehaviorClose)
		}
	}
	for _, f := range []string{"index.json", "index.html", "refclient_case_1_1_1.json"} {
		if _, err := os.Stat(filepath.Join(spec.Outdir, f)); err != nil {
			t.Error(err)
		}
	}
}

func TestDeflateCasesAgainstReferenceServer(t *testing.T) {
	if testing.Short() {
		t.Skip("slow")
	}
	t.Parallel()
	res := runAgainst(t, peerOpts{deflate: true}, "12.1.1", "12.2.11", "12.4.3", "13.3.1", "13.5.2", "13.7.10")
	for id, r := range res {
		if r.Behavior != OK || r.BehaviorClose != OK {
			t.Errorf("case %s: %s / %s", id, r.Behavior, r.BehaviorClose)
		}
	}
	// Without the extension, the compression cases are UNIMPLEMENTED.
	res = runAgainst(t, peerOpts{}, "12.1.1")
	if r := res["12.1.1"]; r == nil || r.Behavior != Unimplemented {
		t.Errorf("12.1.1 without deflate: %+v", r)
	}
}

// The Sec-WebSocket-Extensions header is read as the official suite reads
// it: names and keys in any case, "k=" apart from "k", and a repeated header
// or an offer it cannot parse failing the handshake in every case, not only
// in the compression cases.
func TestExtensionHeaderAsTheOfficialSuite(t *testing.T) {
	t.Parallel()
	ext := parseExtensions("Permessage-Deflate; Client_Max_Window_Bits; SERVER_MAX_WINDOW_BITS=10")
	if len(ext) != 1 || ext[0].name != "permessage-deflate" {
		t.Fatalf("parsed %+v", ext)
	}
	if o, err := parseOffer(ext[0]); err != nil || !o.acceptMaxWindowBits || o.requestMaxWindowBits != 10 {
		t.Errorf("offer %+v, %v", o, err)
	}
	for _, bad := range []string{
		"permessage-deflate; client_max_window_bits=",
		"permessage-deflate; client_no_context_takeover=1",
		"permessage-deflate; server_max_window_bits",
		"permessage-deflate; client_max_window_bits=16",
	} {
		if _, err := parseOffer(parseExtensions(bad)[0]); err == nil {
			t.Errorf("offer %q accepted", bad)
		}
	}
	for _, bad := range []string{
		"permessage-deflate; client_no_context_takeover=x",
		"permessage-deflate; server_no_context_takeover=",
	} {
		if _, err := parseResponse(parseExtensions(bad)[0]); err == nil {
			t.Errorf("response %q accepted", bad)
		}
	}

	_, addr := serveFuzzing(t, &Spec{Cases: []string{"1.1.1"}, Outdir: t.TempDir()})
	for _, extensions := range [][]string{
		{"permessage-deflate", "permessage-deflate; client_max_window_bits"},
		{"permessage-deflate; server_max_window_bits=20"},
	} {
		if status := runCaseStatus(t, addr, "1", http.Header{"Sec-Websocket-Extensions": extensions}); status != http.StatusBadRequest {
			t.Errorf("extensions %q: status %d, want 400", extensions, status)
		}
	}
}

// serveFuzzing runs a fuzzing server for spec on 127.0.0.1 until the test
// ends, and returns it with its address.
func serveFuzzing(t *testing.T, spec *Spec) (*Runner, string) {
	t.Helper()
	rn, err := NewRunner(spec, testLog{t})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go rn.Serve(ctx, ln)
	return rn, ln.Addr().String()
}

// runCaseStatus asks the fuzzing server at addr to run caseNumber with a
// hand-made opening handshake, whose entries of extra (canonical names,
// one header line per value) are added to or replace the usual ones, and
// returns the status of its answer.
func runCaseStatus(t *testing.T, addr, caseNumber string, extra http.Header) int {
	t.Helper()
	req, _ := http.NewRequest("GET", "http://"+addr+"/runCase?case="+caseNumber+"&agent=x", nil)
	req.Header.Set("Upgrade", "websocket")
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
	req.Header.Set("Sec-WebSocket-Version", "13")
	for name, values := range extra {
		req.Header[name] = values
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestServeLeavesNoGoroutineWhenServingFails: Serve returns when its
// listener fails as well as when ctx is done, and with a ctx that is never
// done (context.Background, as a command line tool may pass) nothing it
// started may stay behind waiting for that ctx.
func TestServeLeavesNoGoroutineWhenServingFails(t *testing.T) {
	rn, err := NewRunner(&Spec{Cases: []string{"1.1.1"}, Outdir: t.TempDir()}, testLog{t})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln.Close() // Serve's Accept fails at once
	if err := rn.Serve(context.Background(), ln); err == nil {
		t.Fatal("Serve on a closed listener returned nil")
	}
	if stacks, left := goroutinesLeft(5*time.Second, "autobahn.(*Runner).Serve"); left {
		t.Fatalf("a goroutine started by Serve outlived it:\n%s", stacks)
	}
}

// goroutinesLeft waits up to wait for no goroutine's stack to name any of
// funcs, and reports whether one still does, with all the stacks.
func goroutinesLeft(wait time.Duration, funcs ...string) (stacks string, left bool) {
	for deadline := time.Now().Add(wait); ; time.Sleep(10 * time.Millisecond) {
		buf := make([]byte, 1<<20)
		stacks = string(buf[:runtime.Stack(buf, true)])
		if !slices.ContainsFunc(funcs, func(f string) bool { return strings.Contains(stacks, f) }) {
			return stacks, false
		}
		if !time.Now().Before(deadline) {
			return stacks, true
		}
	}
}

// serveOneSession runs a Runner's Serve (fuzzingserver mode) for the case
// selected by cases, and opens one WebSocket session on path with a raw
// client whose I/O is bounded by deadline. It returns the Runner, Serve's
// result to come, the cancel that stops Serve, and the client's reader,
// past the 101.
func serveOneSession(t *testing.T, cases, path string, deadline time.Duration) (*Runner, <-chan error, context.CancelFunc, *bufio.Reader) {
	t.Helper()
	rn, err := NewRunner(&Spec{Cases: []string{cases}, Outdir: t.TempDir()}, testLog{t})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	served := make(chan error, 1)
	go func() { served <- rn.Serve(ctx, ln) }()

	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	client.SetDeadline(time.Now().Add(deadline))
	io.WriteString(client, "GET "+path+" HTTP/1.1\r\nHost: "+ln.Addr().String()+
		"\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
	br := bufio.NewReader(client)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("status %s, want 101", resp.Status)
	}
	return rn, served, cancel, br
}

// TestServeEndsItsSessions: a session of the fuzzing server runs on a
// hijacked connection, which stopping the http.Server does not close. Once
// Serve has returned for its ctx, no session may go on: here a client
// waiting for the status of a case that never runs, which the session
// would otherwise poll for until its safety deadline, 15 minutes on.
func TestServeEndsItsSessions(t *testing.T) {
	_, served, cancel, _ := serveOneSession(t, "1.1.1", "/getCaseStatus?case=1&agent=x", 5*time.Second)
	cancel()
	if err := <-served; err != nil {
		t.Fatalf("Serve: %v", err)
	}
	if stacks, left := goroutinesLeft(5*time.Second, "autobahn.(*session)", "autobahn.(*Runner).serveWS"); left {
		t.Fatalf("a session of the fuzzing server outlived Serve:\n%s", stacks)
	}
}

// TestCancelEndsTheCaseUnderWay: Ctrl-C (a cancelled ctx) must not wait for
// the case under way, which can take minutes (9.1.3 waits 100 s for its
// echo), and that case, cut short, must get no verdict: it did not fail,
// the runner stopped it.
func TestCancelEndsTheCaseUnderWay(t *testing.T) {
	messageArrived := make(chan struct{})
	connectionClosed := make(chan struct{})
	url := startScriptedServer(t, "", func(p *refPeer) {
		defer close(connectionClosed)
		p.conn.SetReadDeadline(time.Now().Add(time.Minute))
		first := true
		for {
			// Never echoes: the case waits for its timer.
			if _, _, err := p.readFrame(); err != nil {
				return
			}
			if first {
				close(messageArrived)
				first = false
			}
		}
	})
	spec := &Spec{Servers: []Server{{Agent: "scripted", URL: url}}, Cases: []string{"9.1.3", "9.1.4"}, Outdir: t.TempDir()}
	rn, err := NewRunner(spec, testLog{t})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ran := make(chan error, 1)
	go func() { ran <- rn.RunClient(ctx) }()

	select {
	case <-messageArrived:
	case <-time.After(30 * time.Second):
		t.Fatal("the runner sent no message for 9.1.3")
	}
	cancel()
	select {
	case err := <-ran:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("RunClient after cancel: %v, want an error wrapping context.Canceled", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("RunClient still runs the case after its context was cancelled")
	}
	select {
	case <-connectionClosed:
	case <-time.After(10 * time.Second):
		t.Error("the case's connection stayed open after RunClient returned")
	}
	if res := rn.Results()["scripted"]; len(res) != 0 {
		t.Errorf("results after a cancel during the first case: %v, want none", res)
	}
	if _, err := os.Stat(filepath.Join(spec.Outdir, "index.json")); !os.IsNotExist(err) {
		t.Errorf("reports written for a run cut short (stat index.json: %v)", err)
	}
	if stacks, left := goroutinesLeft(5*time.Second, "autobahn.(*session)"); left {
		t.Fatalf("a session outlived RunClient:\n%s", stacks)
	}
}

// TestServeRecordsNoVerdictForACaseItCutShort: when Serve stops, it drops
// the connections of the cases under way; such a case did not fail, the
// runner stopped it, so it must get no result (which Results and a later
// WriteReports would show).
func TestServeRecordsNoVerdictForACaseItCutShort(t *testing.T) {
	rn, served, cancel, br := serveOneSession(t, "9.1.3", "/runCase?case=1&agent=x", 30*time.Second)
	// The case is under way once its message starts to arrive; it waits
	// 100 s for an echo that never comes.
	if _, err := br.ReadByte(); err != nil {
		t.Fatal(err)
	}

	cancel()
	if err := <-served; err != nil {
		t.Fatalf("Serve: %v", err)
	}
	if stacks, left := goroutinesLeft(10*time.Second, "autobahn.(*session)", "autobahn.(*Runner).serveWS"); left {
		t.Fatalf("a session of the fuzzing server outlived Serve:\n%s", stacks)
	}
	if res := rn.Results()["x"]; len(res) != 0 {
		t.Errorf("results after Serve stopped during the case: %v, want none", res)
	}
}

// The judge shares no code with what it judges (README.md's file tour,
// doc.go): the runner and its commands take from the root package only
// its frame API (the exported names of frame.go and mask.go), AcceptKey
// and the status codes, never a Conn, Dial, Accept or anything else that
// reads or writes messages. ws13's own testees are what is judged, and may.
func TestJudgeUsesOnlyTheRootPackagesFrameAPI(t *testing.T) {
	const rootImport = "github.com/ws13/websocket"
	allowed := map[string]bool{"AcceptKey": true, "StatusCode": true}
	fset := token.NewFileSet()
	for _, name := range []string{"frame.go", "mask.go", "close.go"} {
		f, err := parser.ParseFile(fset, filepath.Join("..", name), nil, parser.SkipObjectResolution)
		if err != nil {
			t.Fatal(err)
		}
		for _, decl := range f.Decls {
			switch d := decl.(type) {
			case *ast.FuncDecl:
				if d.Recv == nil && name != "close.go" {
					allowed[d.Name.Name] = true
				}
			case *ast.GenDecl:
				for _, spec := range d.Specs {
					switch s := spec.(type) {
					case *ast.TypeSpec:
						if name != "close.go" {
							allowed[s.Name.Name] = true
						}
					case *ast.ValueSpec:
						for _, id := range s.Names {
							if name != "close.go" || strings.HasPrefix(id.Name, "Status") && d.Tok == token.CONST {
								allowed[id.Name] = true
							}
						}
					}
				}
			}
		}
	}
	if !allowed["ParseHeader"] || !allowed["Mask"] || !allowed["StatusProtocolError"] || allowed["Conn"] {
		t.Fatalf("the frame API read from the root package is wrong: %v", allowed)
	}

	used := 0
	for _, dir := range []string{".", "cmd/wstest", "cmd/summary"} {
		files, err := filepath.Glob(filepath.Join(dir, "*.go"))
		if err != nil {
			t.Fatal(err)
		}
		for _, path := range files {
			if strings.HasSuffix(path, "_test.go") {
				continue
			}
			f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
			if err != nil {
				t.Fatal(err)
			}
			local := ""
			for _, imp := range f.Imports {
				p, _ := strconv.Unquote(imp.Path.Value)
				if p == rootImport {
					local = "websocket"
					if imp.Name != nil {
						local = imp.Name.Name
					}
				} else if strings.HasPrefix(p, rootImport+"/") && !strings.HasPrefix(p, rootImport+"/autobahn") {
					t.Errorf("%s imports %s, a package of what the judge judges", path, p)
				}
			}
			if local == "." || local == "_" {
				t.Errorf("%s imports the root package as %q", path, local)
				continue
			}
			if local == "" {
				continue
			}
			ast.Inspect(f, func(n ast.Node) bool {
				sel, ok := n.(*ast.SelectorExpr)
				if !ok {
					return true
				}
				if x, ok := sel.X.(*ast.Ident); ok && x.Name == local {
					used++
					if !allowed[sel.Sel.Name] {
						t.Errorf("%s: %s.%s is not the root package's frame API", fset.Position(sel.Pos()), local, sel.Sel.Name)
					}
				}
				return true
			})
		}
	}
	if used == 0 {
		t.Fatal("no use of the root package found: the check looked at nothing")
	}
}
