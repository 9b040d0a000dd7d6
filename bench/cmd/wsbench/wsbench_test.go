package main

import (
	"bytes"
	"compress/flate"
	"io"
	"net"
	"os/exec"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// Every library echoes every size through both clients, and the echo is
// byte-exact: the figures measure working code.
func TestEchoEveryLibrary(t *testing.T) {
	for _, l := range append(libraries, extraLibraries...) {
		for _, own := range []bool{false, true} {
			for _, size := range []int{0, 16, 125, 126, 65535, 65536, 1 << 20} {
				connect, stop := startEcho(target{lib: l, own: own}, size)
				c, err := connect()
				if err != nil {
					stop()
					t.Fatalf("%s own=%v: connect: %v", l.name, own, err)
				}
				for range 3 {
					n, err := c.Echo()
					if err != nil || n != size {
						t.Errorf("%s own=%v size %d: echo gave %d, %v", l.name, own, size, n, err)
						break
					}
				}
				c.Close()
				stop()
			}
		}
	}
}

// Every library's broadcast, and plain TCP's, reaches every client with
// every message, the right size, and counts what it delivered: the figure
// measures working code. A library without one is refused, not measured as
// something else.
func TestBroadcastEveryLibrary(t *testing.T) {
	const conns, size = 5, 1000
	for _, l := range append([]*library{nil}, broadcastLibs...) {
		tg := target{lib: l}
		s, err := openBroadcast(tg, conns, size)
		if err != nil {
			t.Fatalf("%s: %v", tg.name(), err)
		}
		sent := 1 // openBroadcast's check
		for _, burst := range broadcastBursts {
			s.burst = burst
			n, _, err := s.count(0) // one burst
			if err != nil || n != burst*conns {
				t.Errorf("%s: one burst of %d delivered %d messages, %v; want %d", tg.name(), burst, n, err, burst*conns)
			}
			sent += burst
		}
		if got, want := s.received.Load(), int64(sent*conns); got != want {
			t.Errorf("%s: the clients read %d messages, want %d", tg.name(), got, want)
		}
		s.close()
	}
	if _, err := openBroadcast(target{lib: ws13PollLib}, 1, size); err == nil {
		t.Error("ws13-poll has no broadcast of its own, but openBroadcast took it")
	}
}

// Every library's server refuses a message over its read limit: none gets
// the head start of reading without one.
func TestEveryLibraryEnforcesTheReadLimit(t *testing.T) {
	for _, l := range libraries {
		ln := listen()
		stop := echoServer(l, ln, config{readLimit: 1000, dial: dialTCP})
		c, err := l.dial(ln.Addr().String(), config{readLimit: 4 << 20, dial: dialTCP})
		if err != nil {
			t.Fatalf("%s: %v", l.name, err)
		}
		if err := c.Write(payload(999)); err != nil {
			t.Fatalf("%s: %v", l.name, err)
		}
		if got, err := c.Read(nil); err != nil || len(got) != 999 {
			t.Errorf("%s: a message under the limit: %d bytes back, %v", l.name, len(got), err)
		}
		c.Write(payload(2000))
		if got, err := c.Read(nil); err == nil {
			t.Errorf("%s: a message over the limit came back (%d bytes)", l.name, len(got))
		}
		c.Close()
		stop()
	}
}

func TestOwnClientEchoesContent(t *testing.T) {
	for _, l := range libraries {
		ln := listen()
		cfg := config{readLimit: 4 << 20, dial: dialTCP}
		stop := echoServer(l, ln, cfg)
		c, err := l.dial(ln.Addr().String(), cfg)
		if err != nil {
			t.Fatalf("%s: %v", l.name, err)
		}
		msg := payload(70000)
		if err := c.Write(msg); err != nil {
			t.Fatalf("%s: %v", l.name, err)
		}
		got, err := c.Read(nil)
		if err != nil || !bytes.Equal(got, msg) {
			t.Errorf("%s: echo changed the message (%d bytes, %v)", l.name, len(got), err)
		}
		c.Close()
		stop()
	}
}

func TestReportRenders(t *testing.T) {
	o := &options{runs: 1, dur: time.Millisecond, conns: 2, connDur: time.Millisecond, idle: 4, idleDeflate: 2, allocN: 20,
		deflateDur: time.Millisecond, libs: []*library{ws13Lib, gwsLib}, corpus: "../../../testdata/deflate/messages.jsonl",
		sections: map[string]bool{"echo": true, "conc": true, "alloc": true, "floor": true}}
	echoSizes = []int{16}
	res := newResults()
	run(o, res)
	if len(res.errors) > 0 {
		t.Fatal(res.errors)
	}
	md := res.markdown(o)
	for _, want := range []string{"16 B round trips/s", "ws13", "gws", "allocs/op", "Mask ÷ memmove"} {
		if !strings.Contains(md, want) {
			t.Errorf("report lacks %q", want)
		}
	}
	if svg := res.svg(o); !strings.HasPrefix(svg, "<svg") || !strings.HasSuffix(svg, "</svg>\n") {
		t.Error("chart is not an SVG document")
	}
}

// Allocation and memory rows compare medians: one run in which a peer
// allocated almost nothing does not blow a ratio up, and where the best
// peer's median is 0 there is no ratio at all.
func TestLowerRowsCompareMedians(t *testing.T) {
	s := &series{row: "allocs/op", lower: true, vals: map[string][]float64{
		"ws13": {0, 0, 0}, "gorilla": {1, 1, 1}, "coder": {0.0005, 0, 0},
	}, runs: map[string][]int{"ws13": {0, 1, 2}, "gorilla": {0, 1, 2}, "coder": {0, 1, 2}}}
	for _, col := range []string{"ws13", "gorilla"} {
		if got := s.cell(col); strings.Contains(got, "×") {
			t.Errorf("%s: cell %q has a ratio to a best peer of 0", col, got)
		}
	}
	s.vals["coder"] = []float64{0.5, 0.001, 0.5}
	if got, want := s.cell("gorilla"), "1.00 (2.00×)"; got != want {
		t.Errorf("gorilla: cell %q, want %q", got, want)
	}
}

// Every library echoes the deflate corpus byte-exact in each mode it lists,
// and compresses it: the deflate figures measure compression that happens.
func TestDeflateEveryLibrary(t *testing.T) {
	corpus, err := loadCorpus("../../../testdata/deflate/messages.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range libraries {
		for _, m := range l.deflate {
			s, err := openDeflate(l, m, corpus)
			if err != nil {
				t.Errorf("%s, %s: %v", l.name, m, err)
				continue
			}
			ratio := s.ratio
			s.close()
			if ratio <= 0 || ratio >= 1 {
				t.Errorf("%s, %s: wire ÷ payload %.3f, want under 1", l.name, m, ratio)
			}
		}
	}
	if !slices.Contains(gobwasLib.deflate, deflateNoTakeover) {
		t.Error("gobwas measures no deflate mode")
	}
}

// gobwas's deflate speaks RFC 7692 with another implementation: ws13's
// client against gobwas's server and gobwas's client against ws13's server,
// and the hand-built compressed frame of the idle measurement.
func TestGobwasDeflateInterop(t *testing.T) {
	corpus, err := loadCorpus("../../../testdata/deflate/messages.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	cfg := config{readLimit: 4 << 20, text: true, deflate: deflateNoTakeover, dial: dialTCP}
	for _, pair := range []struct {
		server, client *library
	}{
		{
			server: gobwasLib,
			client: ws13Lib,
		},
		{
			server: ws13Lib,
			client: gobwasLib,
		},
	} {
		ln := listen()
		stop := echoServer(pair.server, ln, cfg)
		c, err := pair.client.dial(ln.Addr().String(), cfg)
		if err != nil {
			stop()
			t.Fatalf("%s client, %s server: %v", pair.client.name, pair.server.name, err)
		}
		if _, ok := c.(*gobwasFlateConn); pair.client == gobwasLib && !ok {
			t.Errorf("gobwas client did not negotiate deflate with %s", pair.server.name)
		}
		for i, msg := range corpus[:100] {
			if err := c.Write(msg); err != nil {
				t.Fatalf("%s client, %s server: %v", pair.client.name, pair.server.name, err)
			}
			got, err := c.Read(nil)
			if err != nil || !bytes.Equal(got, msg) {
				t.Fatalf("%s client, %s server: message %d came back as %q, %v", pair.client.name, pair.server.name, i, got, err)
			}
		}
		c.Close()
		stop()
	}

	// The common client's compressed frame: the reply comes back
	// compressed (RSV1), and inflates to the message.
	ln := listen()
	stop := echoServer(gobwasLib, ln, cfg)
	defer stop()
	rc, err := dialRaw(ln.Addr().String(), "permessage-deflate")
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	rc.frame = compressedFrame(corpus[0])
	n, err := rc.Echo()
	if err != nil {
		t.Fatal(err)
	}
	if rc.buf[0] != 0x80|rsv1|opText {
		t.Fatalf("reply starts %#x, want a final compressed text frame", rc.buf[0])
	}
	hl, _ := frameLengths(rc.buf)
	got, err := io.ReadAll(flate.NewReader(io.MultiReader(bytes.NewReader(rc.buf[hl:hl+n]), bytes.NewReader([]byte{0, 0, 0xff, 0xff, 1, 0, 0, 0xff, 0xff}))))
	if err != nil || !bytes.Equal(got, corpus[0]) {
		t.Errorf("reply inflates to %q, %v", got, err)
	}
}

// plainConn is a msgConn that allocates nothing per message: it writes a
// 4-byte header and the payload, and reads server frames of allocMsgSize
// bytes (a 4-byte header), so that measureConnAllocs, measuring it, must
// count 0.
type plainConn struct {
	nc   net.Conn
	hdr  [4]byte
	whdr [4]byte
}

func (c *plainConn) Write(p []byte) error {
	if _, err := c.nc.Write(c.whdr[:]); err != nil {
		return err
	}
	_, err := c.nc.Write(p)
	return err
}
func (c *plainConn) Read(buf []byte) ([]byte, error) {
	if _, err := io.ReadFull(c.nc, c.hdr[:]); err != nil {
		return buf, err
	}
	buf = buf[:allocMsgSize]
	_, err := io.ReadFull(c.nc, buf)
	return buf, err
}
func (c *plainConn) Close() error { return c.nc.Close() }

// The harness of the allocation counts allocates nothing inside them
// itself (the drain goroutine's buffer, above all, is made before): a
// connection that allocates nothing counts exactly 0.
func TestAllocHarnessCountsNothingOfItsOwn(t *testing.T) {
	for i := range 5 {
		ln := listen()
		acc := make(chan net.Conn, 1)
		go func() {
			nc, _ := ln.Accept()
			acc <- nc
		}()
		nc, err := dialTCP(bg, "tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		peer := <-acc
		ln.Close()
		if peer == nil {
			t.Fatal("accept failed")
		}
		got, err := measureConnAllocs(&plainConn{nc: nc}, peer, peer, false, 500)
		nc.Close()
		peer.Close()
		if err != nil {
			t.Fatal(err)
		}
		if got.writeAllocs != 0 || got.writeBytes != 0 || got.readAllocs != 0 || got.readBytes != 0 {
			t.Fatalf("try %d: %+v, want all 0", i, got)
		}
	}
}

// The 0-allocation target is met at exactly 0 only: one allocation in
// 2,000 messages misses it.
func TestZeroAllocsMeansZero(t *testing.T) {
	for _, c := range []struct {
		v    float64
		want string
	}{{0, "| 0 | met |"}, {0.0005, "| 0.0005 | **missed** |"}, {0.004, "| 0.004 | **missed** |"}} {
		r := newResults()
		r.record(secAlloc, "server: write 1 KiB, allocs/op", lower, "ws13", c.v, nil)
		if got := r.targets(); !strings.Contains(got, "0 allocs: server: write 1 KiB, allocs/op "+c.want) {
			t.Errorf("ws13 at %g allocs/op: targets say\n%s\nwant %q", c.v, got, c.want)
		}
	}
}

// A verdict near its target prints enough digits to be read: 94.6% of TCP
// is not "95% … missed". Idle RSS is ahead of the peers only strictly
// below them, for ws13 as for its variants.
func TestTargetsReadConsistently(t *testing.T) {
	r := newResults()
	for run := range 3 {
		r.run = run
		r.record(secEchoRaw, "16 B round trips/s", higher, "tcp", 1000, nil)
		r.record(secEchoRaw, "16 B round trips/s", higher, "ws13", 946, nil)
	}
	if got := r.targets(); !strings.Contains(got, "| 94.6% of plain TCP | **missed** |") {
		t.Errorf("94.6%% of TCP against 95%%:\n%s", got)
	}
	r = newResults()
	row := "10 idle: server RSS, KiB per connection"
	for _, lib := range []string{"ws13", "ws13-go", "ws13-poll", "gorilla"} {
		r.record(secIdle, row, lower, lib, 3.5, nil)
	}
	got := r.targets()
	for _, name := range []string{"idle RSS below every peer |", "idle RSS below every peer (ws13-go) |", "idle RSS below every peer (ws13-poll) |"} {
		if !strings.Contains(got, name+" 3.5 vs best peer 3.5 | **missed** |") {
			t.Errorf("%q level with the best peer is not missed:\n%s", name, got)
		}
	}
}

// -render draws the header from the saved run, not from the rendering
// process and its flags; a results.json from before the header was saved
// falls back to them.
func TestRenderKeepsTheRunsHeader(t *testing.T) {
	run := &options{runs: 7, dur: 3 * time.Second, connDur: 4 * time.Second, conns: 321}
	r := newResults()
	r.date = time.Date(2025, 3, 4, 5, 6, 0, 0, time.UTC)
	r.describe(run)
	r.machine, r.goVersion, r.peers = "Saved CPU, 64 cores", "go1.0.0", "saved peers"
	r.record(secConcRaw, "321 connections × 1 KiB, messages/s", higher, "tcp", 100, nil)
	r.record(secConcRaw, "321 connections × 1 KiB, messages/s", higher, "ws13", 90, nil)
	back, err := loadResults(r.json())
	if err != nil {
		t.Fatal(err)
	}
	now := &options{runs: 1, dur: time.Millisecond, connDur: time.Millisecond, conns: 5, short: true}
	md, svg := back.markdown(now), back.svg(now)
	for _, want := range []string{"- Machine: Saved CPU, 64 cores\n", "- Go: go1.0.0\n", "- Run: full; median of 7 runs; 3s per echo figure, 4s per concurrent figure", "- Peers: saved peers\n"} {
		if !strings.Contains(md, want) {
			t.Errorf("report lacks %q:\n%s", want, md)
		}
	}
	for _, want := range []string{"Saved CPU, 64 cores · go1.0.0 · 2025-03-04 · median of 7", ">321 conns<"} {
		if !strings.Contains(svg, want) {
			t.Errorf("chart lacks %q", want)
		}
	}

	// An older results.json: no runs, durations or peers.
	old := `{"machine": "Old CPU", "go": "go1.1.1", "date": "2024-01-02T03:04:05Z", "rows": [], "elapsed": "1m0s"}`
	back, err = loadResults([]byte(old))
	if err != nil {
		t.Fatal(err)
	}
	md = back.markdown(now)
	for _, want := range []string{"- Machine: Old CPU\n", "- Go: go1.1.1\n", "- Run: short (smoke test: figures not meaningful); median of 1 runs; 1ms per echo figure"} {
		if !strings.Contains(md, want) {
			t.Errorf("report of an older file lacks %q:\n%s", want, md)
		}
	}
}

// The chart's axis grows with its largest bar, so that bars above 120% keep
// their heights apart; one past 200% is drawn visibly clipped and labelled.
func TestChartDoesNotClipSilently(t *testing.T) {
	r := newResults()
	row := "16 B round trips/s"
	for lib, v := range map[string]float64{"tcp": 100, "ws13": 135, "coder": 156, "gorilla": 90} {
		r.record(secEchoRaw, row, higher, lib, v, nil)
	}
	o := &options{runs: 1}
	svg := r.svg(o)
	y := func(lib, pct string) string {
		m := regexp.MustCompile(` y="([0-9.]+)"[^>]*><title>` + lib + " 16 B: " + pct + "</title>").FindStringSubmatch(svg)
		if m == nil {
			t.Fatalf("no bar for %s at %s", lib, pct)
		}
		return m[1]
	}
	if a, b := y("ws13", "135%"), y("coder", "156%"); a == b {
		t.Errorf("135%% and 156%% drawn at the same height (%s)", a)
	}
	if strings.Contains(svg, `class="clipped"`) {
		t.Error("a bar under 200% is drawn clipped")
	}
	r.record(secEchoRaw, "1 KiB round trips/s", higher, "tcp", 100, nil)
	r.record(secEchoRaw, "1 KiB round trips/s", higher, "coder", 512, nil)
	svg = r.svg(o)
	if !strings.Contains(svg, `class="clipped">512%</text>`) {
		t.Error("a bar at 512% is not labelled as clipped")
	}
}

// The watchdog names the figure that has made no progress for its bound,
// and only then.
func TestWatchdogNamesTheStalledFigure(t *testing.T) {
	figuref("echo 16 B, coder, own client, run 1/1")
	now := time.Now()
	if _, stuck := stalled(now, time.Minute); stuck {
		t.Error("a figure that has just started is stalled")
	}
	if figure, stuck := stalled(now.Add(2*time.Minute), time.Minute); !stuck || figure != "echo 16 B, coder, own client, run 1/1" {
		t.Errorf("after 2 minutes without progress: %q, %v", figure, stuck)
	}
	progress()
	if _, stuck := stalled(time.Now(), time.Minute); stuck {
		t.Error("progress did not reset the watchdog")
	}
	killed := false
	unregister := onExpiry(func() { killed = true })
	if len(watch.kills) != 1 {
		t.Errorf("%d kills registered, want 1", len(watch.kills))
	}
	unregister()
	if len(watch.kills) != 0 || killed {
		t.Errorf("after unregistering: %d kills, killed %v", len(watch.kills), killed)
	}
}

// gws's own client drives its echo figures from OnMessage, with no channel
// between a reply and the next message, and the figures come out.
func TestGwsOwnClientRunsInOnMessage(t *testing.T) {
	connect, stop := startEcho(target{lib: gwsLib, own: true}, 1024)
	c, err := connect()
	if err != nil {
		stop()
		t.Fatal(err)
	}
	if _, ok := c.(echoRunner); !ok {
		t.Errorf("gws's own client is a %T, not an echoRunner", c)
	}
	c.Close()
	stop()
	for _, conns := range []int{1, 4} {
		s, err := openEcho(target{lib: gwsLib, own: true}, conns, 1024)
		if err != nil {
			t.Fatal(err)
		}
		rates, errs := measureInTurns([]*echoSession{s}, 20*time.Millisecond, 10*time.Millisecond)
		s.close()
		if errs[0] != nil || rates[0] <= 0 {
			t.Errorf("%d connections: %v round trips/s, %v", conns, rates[0], errs[0])
		}
	}
}

// turnLog is an echoer whose round trip takes a millisecond and is written
// down under its name.
type turnLog struct {
	name string
	mu   *sync.Mutex
	log  *[]string
}

func (l turnLog) Echo() (int, error) {
	time.Sleep(time.Millisecond)
	l.mu.Lock()
	defer l.mu.Unlock()
	*l.log = append(*l.log, l.name)
	return 1, nil
}

func (l turnLog) Close() error { return nil }

// Within a figure the libraries take turns: each is measured a turn at a
// time until it has had the figure's whole time, so that a drift of the
// machine's speed touches them alike. One whose echo breaks drops out.
func TestMeasureInTurnsTakesTurns(t *testing.T) {
	var mu sync.Mutex
	var log []string
	session := func(name string, conns int) *echoSession {
		s := &echoSession{size: 1, clockEvery: 1, stop: func() {}}
		for range conns {
			s.clients = append(s.clients, turnLog{name, &mu, &log})
		}
		return s
	}
	broken := &echoSession{size: 2, clockEvery: 1, stop: func() {}, clients: []echoer{turnLog{"broken", &mu, &log}}}
	d, turn := 60*time.Millisecond, 15*time.Millisecond
	rates, errs := measureInTurns([]*echoSession{session("a", 1), broken, session("b", 3)}, d, turn)
	if errs[0] != nil || errs[2] != nil {
		t.Fatalf("errors: %v", errs)
	}
	if errs[1] == nil || rates[1] != 0 {
		t.Errorf("a session whose echo comes back short: rate %v, error %v", rates[1], errs[1])
	}
	// Turns: a run of a's, then b's, and so on; at least d/turn of each.
	var turns []string
	for _, name := range log {
		if len(turns) == 0 || turns[len(turns)-1] != name {
			turns = append(turns, name)
		}
	}
	count := map[string]int{}
	for _, name := range turns {
		count[name]++
	}
	for _, name := range []string{"a", "b"} {
		if count[name] < int(d/turn) {
			t.Errorf("%s had %d turns, want at least %d: %v", name, count[name], d/turn, turns)
		}
	}
	if n := slices.Index(log, "broken"); n < 0 || slices.Contains(log[n+1:], "broken") {
		t.Errorf("the broken session did not make exactly one round trip: %v", turns)
	}
	// About one round trip per millisecond per client (sleeps only
	// lengthen: no upper bound).
	if rates[0] <= 0 || rates[0] > 1000 || rates[2] <= rates[0] || rates[2] > 3000 {
		t.Errorf("rates %.0f/s (1 client) and %.0f/s (3 clients)", rates[0], rates[2])
	}
}

// A share of plain TCP pairs figures measured in the same turns, in the
// own-client tables too: the floor takes turns with the libraries' own
// clients, rather than being copied from the common-client figure measured
// seconds before, and each table holds one TCP figure per run.
func TestOwnClientFiguresMeasureTCPInTheirTurns(t *testing.T) {
	targets := []target{{lib: nil}, {lib: ws13Lib}}
	var measured []string
	measureTargets("own-client turns", targets, true, 1, 16, 20*time.Millisecond, 10*time.Millisecond, func(name string, v float64, err error) {
		if err != nil {
			t.Errorf("%s: %v", name, err)
		}
		measured = append(measured, name)
	})
	if !slices.Contains(measured, "tcp") || !slices.Contains(measured, "ws13") {
		t.Errorf("own-client figure measured %v, want tcp and ws13 in turns", measured)
	}

	defer func(sizes []int, clients []bool) { echoSizes, echoClients = sizes, clients }(echoSizes, echoClients)
	echoSizes, echoClients = []int{16}, []bool{false, true}
	o := &options{runs: 2, dur: 20 * time.Millisecond, turn: 10 * time.Millisecond, conns: 2,
		connDur: 20 * time.Millisecond, connTurn: 10 * time.Millisecond, libs: []*library{ws13Lib},
		sections: map[string]bool{"echo": true, "conc": true}}
	res := newResults()
	run(o, res)
	if len(res.errors) > 0 {
		t.Fatal(res.errors)
	}
	for _, sec := range []*section{secEchoRaw, secEchoOwn, secConcRaw, secConcOwn} {
		s := res.find(sec, "")
		if s == nil {
			t.Errorf("%s: no figures", sec.title)
			continue
		}
		if runs := s.runs["tcp"]; !slices.Equal(runs, []int{0, 1}) {
			t.Errorf("%s / %s: plain TCP recorded for runs %v, want one figure in each of [0 1]", sec.title, s.row, runs)
		}
	}
}

// The idle panel shows ws13 used each recommended way, not only with the
// read loop in the handler.
func TestChartShowsIdleVariants(t *testing.T) {
	r := newResults()
	row := "10000 idle: server RSS, KiB per connection"
	for lib, v := range map[string]float64{"tcp": 3.5, "ws13": 9.8, "gobwas": 6.3, "ws13-go": 5.2, "ws13-poll": 2.8} {
		r.record(secIdle, row, lower, lib, v, nil)
	}
	svg := r.svg(&options{runs: 1})
	for _, want := range []string{">ws13-go</text>", ">ws13-poll</text>", ">2.8</text>", ">5.2</text>"} {
		if !strings.Contains(svg, want) {
			t.Errorf("the idle panel has no %q", want)
		}
	}
}

// Where there is no /proc (macOS, the BSDs) the idle rows take RSS from
// ps(1); on Linux both can be read, and they agree.
func TestRSSFromPSMatchesProc(t *testing.T) {
	if _, err := exec.LookPath("ps"); err != nil {
		t.Skip("no ps(1) here")
	}
	ballast := make([]byte, 32<<20)
	for i := range ballast {
		ballast[i] = byte(i)
	}
	proc, ps := readRSS(), rssFromPS()
	runtime.KeepAlive(ballast)
	if proc == 0 || ps == 0 {
		t.Fatalf("RSS from /proc %.0f, from ps %.0f: want both", proc, ps)
	}
	if ratio := ps / proc; ratio < 0.9 || ratio > 1.1 {
		t.Errorf("RSS from ps %.1f MiB, from /proc %.1f MiB: want within 10%%", ps/(1<<20), proc/(1<<20))
	}
}

// gorilla's server reads through the HTTP server's 4 KiB bufio.Reader, as
// its documentation offers for a ReadBufferSize of 0, instead of a second
// 4 KiB buffer of its own: net/http keeps its reader alive for as long as
// the handler runs, so a buffer of gorilla's own would cost every idle
// connection 4 KiB that no other library pays.
func TestGorillaServerReusesTheHTTPServersReader(t *testing.T) {
	defer func(rate int) { runtime.MemProfileRate = rate }(runtime.MemProfileRate)
	runtime.MemProfileRate = 1 // every allocation from here on is recorded
	ln := listen()
	stop := echoServer(gorillaLib, ln, config{readLimit: 1 << 20})
	defer stop()
	c, err := dialRaw(ln.Addr().String(), "")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.setMessage(payload(16))
	if n, err := c.Echo(); err != nil || n != 16 {
		t.Fatalf("echo gave %d, %v", n, err)
	}
	// The profile holds what was allocated up to the last collection.
	runtime.GC()
	runtime.GC()
	var records []runtime.MemProfileRecord
	for range 10 {
		n, ok := runtime.MemProfile(records, true)
		if ok {
			records = records[:n]
			break
		}
		records = make([]runtime.MemProfileRecord, n+64)
	}
	if len(records) == 0 {
		t.Fatal("no heap profile records")
	}
	for _, r := range records {
		var upgrade, reader bool
		frames := runtime.CallersFrames(r.Stack())
		for {
			f, more := frames.Next()
			upgrade = upgrade || strings.HasSuffix(f.Function, "gorilla/websocket.(*Upgrader).Upgrade")
			reader = reader || f.Function == "bufio.NewReaderSize"
			if !more {
				break
			}
		}
		if upgrade && reader {
			t.Fatalf("gorilla's Upgrade allocated a read buffer of its own (%d bytes in %d objects)", r.AllocBytes, r.AllocObjects)
		}
	}
}

// gorilla writes a message without allocating on its server (WriteMessage's
// fast path) and with one allocation on its client (NextWriter's writer):
// a WriteBufferPool would add one more to each, boxing the buffer it puts
// back after every message, and save no memory the figures measure (the
// server's idle connection keeps net/http's 4 KiB writer either way, and
// gorilla writes from it when given no pool and no size).
func TestGorillaWritesWithoutAPoolsAllocation(t *testing.T) {
	s, err := serverAllocs(gorillaLib, 200)
	if err != nil {
		t.Fatal(err)
	}
	if s.writeAllocs != 0 {
		t.Errorf("gorilla's server: %g allocs/op to write, want 0", s.writeAllocs)
	}
	c, err := clientAllocs(gorillaLib, 200)
	if err != nil {
		t.Fatal(err)
	}
	if c.writeAllocs > 1 {
		t.Errorf("gorilla's client: %g allocs/op to write, want at most 1", c.writeAllocs)
	}
}

// gws's own client drives the deflate echo from OnMessage, as it does the
// echo figures: the channel that carries its messages to Read elsewhere
// put a goroutine switch into every round trip, which no other library's
// client pays. Both corpus echoers go round the corpus from where the last
// Run stopped, count its bytes, and stop at a deadline.
func TestGwsDeflateClientRunsInOnMessage(t *testing.T) {
	corpus, err := loadCorpus("../../../testdata/deflate/messages.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	var total int64
	for _, m := range corpus {
		total += int64(len(m))
	}
	for _, l := range []*library{gwsLib, ws13Lib} {
		ln := listen()
		cfg := config{readLimit: 4 << 20, text: true, deflate: deflateNoTakeover, dial: dialTCP}
		stop := echoServer(l, ln, cfg)
		var e corpusEchoer
		if l.dialCorpus != nil {
			e, err = l.dialCorpus(ln.Addr().String(), cfg, corpus)
		} else {
			var c msgConn
			c, err = l.dial(ln.Addr().String(), cfg)
			e = &msgCorpusEchoer{c: c, corpus: corpus}
		}
		if err != nil {
			stop()
			t.Fatalf("%s: %v", l.name, err)
		}
		if _, ok := e.(*gwsCorpusClient); l == gwsLib && !ok {
			t.Errorf("gws's deflate client is a %T, not its OnMessage runner", e)
		}
		if n, b, err := e.Run(len(corpus)-1, time.Time{}); err != nil || n != len(corpus)-1 || b != total-int64(len(corpus[len(corpus)-1])) {
			t.Errorf("%s: first Run: %d messages, %d bytes, %v", l.name, n, b, err)
		}
		if n, b, err := e.Run(2, time.Time{}); err != nil || n != 2 || b != int64(len(corpus[len(corpus)-1])+len(corpus[0])) {
			t.Errorf("%s: a Run round the end of the corpus: %d messages, %d bytes, %v", l.name, n, b, err)
		}
		if n, _, err := e.Run(100, time.Now()); err != nil || n != 1 {
			t.Errorf("%s: a Run past its deadline: %d messages, %v; want 1", l.name, n, err)
		}
		e.Close()
		stop()
	}
}
