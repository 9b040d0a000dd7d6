package autobahn

// The conformance gate: the runner against ws13's own testees. It is off
// by default so that `go test ./...` stays fast and does not depend on the
// state of the root package. Turn it on with
//
//	WS13_AUTOBAHN=1 go test ./autobahn -run TestAutobahn -count=1 -v -timeout 80m
//
// WS13_AUTOBAHN_CASES (comma-separated globs, default "*") narrows the
// selection and WS13_AUTOBAHN_OUTDIR keeps the reports (default: a
// temporary directory). Every selected case must be OK; the cases whose
// outcome the RFC leaves open (7.1.6, 7.13.x) may be INFORMATIONAL.

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func autobahnSpec(t *testing.T, sub string) *Spec {
	if os.Getenv("WS13_AUTOBAHN") == "" {
		t.Skip("set WS13_AUTOBAHN=1 to run the Autobahn suite against the ws13 testees")
	}
	cases := []string{"*"}
	if v := os.Getenv("WS13_AUTOBAHN_CASES"); v != "" {
		cases = strings.Split(v, ",")
	}
	out := t.TempDir()
	if v := os.Getenv("WS13_AUTOBAHN_OUTDIR"); v != "" {
		out = filepath.Join(v, sub)
	}
	return &Spec{Cases: cases, Outdir: out}
}

// buildTestee compiles ./testee/<name> and returns the binary's path.
func buildTestee(t *testing.T, name string) string {
	bin := filepath.Join(t.TempDir(), name)
	cmd := exec.Command("go", "build", "-o", bin, "./testee/"+name)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building testee %s: %v\n%s", name, err, out)
	}
	return bin
}

func checkAllOK(t *testing.T, rn *Runner, agent string) {
	res := rn.Results()[agent]
	var failed []string
	for _, c := range rn.Cases() {
		r := res[c.ID]
		switch {
		case r == nil:
			failed = append(failed, c.ID+" (missing)")
		case r.Behavior == OK && r.BehaviorClose == OK:
		case r.Behavior == Informational && slices.Contains([]string{"7.1.6", "7.13.1", "7.13.2"}, c.ID):
		default:
			failed = append(failed, c.ID+" ("+r.Behavior+"/"+r.BehaviorClose+")")
		}
	}
	if len(failed) > 0 {
		t.Errorf("%d of %d cases not OK: %s\nreports in %s", len(failed), len(rn.Cases()), strings.Join(failed, ", "), rn.spec.Outdir)
	}
}

func TestAutobahnServer(t *testing.T) {
	t.Parallel() // the sides share nothing; on 2 cores this halves the wall time
	runServerTestee(t, "servers", "ws13")
}

// TestAutobahnServerPoller runs the suite against the testee serving its
// connections with a Poller, which reads control frames between messages
// itself.
func TestAutobahnServerPoller(t *testing.T) {
	t.Parallel()
	runServerTestee(t, "servers-poller", "ws13-poller", "-poller")
}

// runServerTestee runs the fuzzingclient against the testee server started
// with args, under the name agent; reports go to the outdir's sub.
func runServerTestee(t *testing.T, sub, agent string, args ...string) {
	spec := autobahnSpec(t, sub)
	bin := buildTestee(t, "server")
	cmd := exec.Command(bin, append([]string{"-addr", "127.0.0.1:0"}, args...)...)
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cmd.Process.Kill()
		cmd.Wait()
	}()
	// The testee logs "echo server on ws://ADDR".
	sc := bufio.NewScanner(stderr)
	url := ""
	for sc.Scan() {
		if _, after, ok := strings.Cut(sc.Text(), "echo server on "); ok {
			url = after
			break
		}
	}
	if url == "" {
		t.Fatal("the testee server did not report its address")
	}
	go func() {
		for sc.Scan() {
		}
	}()
	spec.Servers = []Server{{Agent: agent, URL: url}}
	rn, err := NewRunner(spec, testLog{t})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 55*time.Minute)
	defer cancel()
	if err := rn.RunClient(ctx); err != nil {
		t.Fatal(err)
	}
	checkAllOK(t, rn, agent)
}

func TestAutobahnClient(t *testing.T) {
	t.Parallel()
	spec := autobahnSpec(t, "clients")
	bin := buildTestee(t, "client")
	rn, addr := serveFuzzing(t, spec)
	ctx, cancel := context.WithTimeout(context.Background(), 55*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "-url", "ws://"+addr, "-agent", "ws13")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("testee client: %v\n%s", err, out)
	}
	checkAllOK(t, rn, "ws13")
}
