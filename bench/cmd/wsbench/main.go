// Command wsbench measures ws13 side by side with the Go WebSocket peers
// (gorilla/websocket, coder/websocket, gobwas/ws, lxzan/gws) and plain TCP,
// in one run on one machine, and writes RESULTS.md and chart.svg.
//
//	cd bench && go run ./cmd/wsbench          # full run, ~10 minutes
//	cd bench && go run ./cmd/wsbench -short   # CI smoke run, < 2 minutes, writes nothing
//
// Every figure is the median of -runs runs; within a run the libraries take
// turns in a rotating order, so none always goes first or last, and within
// an echo figure they take turns of -turn until each has had -dur. All traffic
// is on 127.0.0.1 and every loop is bounded in count and in time; a
// watchdog bounds the blocking calls: a figure that makes no progress for
// -watchdog (5 minutes) fails the run, naming the figure.
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"runtime/pprof"
	"slices"
	"strings"
	"time"
)

func fatalf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "wsbench: "+format+"\n", args...)
	os.Exit(1)
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, format+"\n", args...)
}

type options struct {
	short       bool
	runs        int
	dur         time.Duration // per echo figure
	turn        time.Duration // per turn of an echo figure (measureInTurns)
	conns       int
	connDur     time.Duration
	connTurn    time.Duration
	idle        int
	idleDeflate int
	allocN      int
	deflateDur  time.Duration
	libs        []*library
	sections    map[string]bool
	out         string
	corpus      string
	memprofile  string
	watchdog    time.Duration
}

var allSections = []string{"echo", "conc", "broadcast", "idle", "alloc", "deflate", "floor"}

func main() {
	// The child process of the idle-memory measurement.
	idleServer := flag.String("idle-server", "", "internal: serve this library for the idle-memory measurement")
	idleDeflate := flag.Int("idle-deflate", 0, "internal: deflate mode of -idle-server")
	idleMemprofile := flag.String("idle-memprofile", "", "internal: heap profile of -idle-server after connecting")

	var o options
	flag.BoolVar(&o.short, "short", false, "a quick smoke run for CI (< 2 minutes): 1 run, small counts; writes no files unless -out is given")
	flag.IntVar(&o.runs, "runs", 5, "runs per figure (the median is reported)")
	flag.DurationVar(&o.dur, "dur", time.Second, "time per echo figure")
	flag.DurationVar(&o.turn, "turn", 100*time.Millisecond, "the libraries of an echo figure take turns of this long until each has had -dur")
	flag.IntVar(&o.conns, "conns", 1000, "connections of the concurrent echo")
	flag.DurationVar(&o.connDur, "conndur", 2*time.Second, "time per concurrent-echo figure")
	flag.DurationVar(&o.connTurn, "connturn", 500*time.Millisecond, "as -turn, for the concurrent echo (longer: each client's round trip takes milliseconds there)")
	flag.IntVar(&o.idle, "idle", 10000, "idle connections per memory figure")
	flag.IntVar(&o.idleDeflate, "idle-deflate-conns", 200, "idle connections per memory figure with deflate context takeover (each holds ~1 MB in some libraries)")
	flag.IntVar(&o.allocN, "allocn", 2000, "messages per allocation count")
	flag.DurationVar(&o.deflateDur, "deflatedur", time.Second, "time per deflate figure")
	libs := flag.String("libs", "", "comma-separated libraries to measure (default all: ws13,gorilla,coder,gobwas,gws)")
	sections := flag.String("only", "", "comma-separated sections to run (default all: "+strings.Join(allSections, ",")+")")
	flag.StringVar(&o.out, "out", "", "directory for RESULTS.md and chart.svg; none writes nothing (default: this directory, or none with -short)")
	flag.StringVar(&o.corpus, "corpus", "../testdata/deflate/messages.jsonl", "deflate corpus, one message per line")
	sizes := flag.String("sizes", "", "comma-separated echo sizes in bytes (default 16,1024,65536,1048576)")
	clients := flag.String("clients", "common,own", "which clients drive the echo figures: common, own or both")
	render := flag.String("render", "", "draw the report again from a results.json, measuring nothing")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of the whole run here")
	flag.DurationVar(&o.watchdog, "watchdog", 5*time.Minute, "fail the run if one figure makes no progress for this long (0: never)")
	flag.StringVar(&o.memprofile, "memprofile", "", "write the heap profile of the idle-memory server of each library to this prefix (PREFIX-LIB.pprof)")
	flag.Parse()

	if *idleServer != "" {
		runIdleServer(*idleServer, deflateMode(*idleDeflate), *idleMemprofile)
		return
	}

	set := map[string]bool{}
	flag.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if o.short {
		defaults := map[string]func(){
			"runs":               func() { o.runs = 1 },
			"dur":                func() { o.dur = 150 * time.Millisecond },
			"conns":              func() { o.conns = 100 },
			"conndur":            func() { o.connDur = 300 * time.Millisecond },
			"idle":               func() { o.idle = 300 },
			"idle-deflate-conns": func() { o.idleDeflate = 30 },
			"allocn":             func() { o.allocN = 300 },
			"deflatedur":         func() { o.deflateDur = 200 * time.Millisecond },
		}
		for name, apply := range defaults {
			if !set[name] {
				apply()
			}
		}
	} else if o.out == "" {
		o.out = "."
	}
	o.libs = libraries
	if *libs != "" {
		o.libs = nil
		for name := range strings.SplitSeq(*libs, ",") {
			l := libraryByName(strings.TrimSpace(name))
			if l == nil {
				fatalf("unknown library %q", name)
			}
			o.libs = append(o.libs, l)
		}
	}
	o.sections = map[string]bool{}
	for _, s := range allSections {
		o.sections[s] = *sections == ""
	}
	if *sections != "" {
		for s := range strings.SplitSeq(*sections, ",") {
			if _, ok := o.sections[s]; !ok {
				fatalf("unknown section %q (have %s)", s, strings.Join(allSections, ","))
			}
			o.sections[s] = true
		}
	}
	if *sizes != "" {
		echoSizes = nil
		for f := range strings.SplitSeq(*sizes, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil || n < 0 || n > 64<<20 {
				fatalf("bad -sizes entry %q", f)
			}
			echoSizes = append(echoSizes, n)
		}
	}
	echoClients = nil
	for c := range strings.SplitSeq(*clients, ",") {
		switch strings.TrimSpace(c) {
		case "common":
			echoClients = append(echoClients, false)
		case "own":
			echoClients = append(echoClients, true)
		default:
			fatalf("bad -clients entry %q", c)
		}
	}
	if o.runs < 1 {
		fatalf("-runs must be at least 1")
	}
	raiseFileLimit(&o)

	start := time.Now()
	res := newResults()
	res.date = start
	res.describe(&o)
	// What this run measured, for the report: every flag but where the
	// files go.
	flag.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "out", "cpuprofile", "memprofile", "render", "watchdog":
			return
		case "only", "libs", "sizes", "clients":
			res.partial = true
		}
		res.args = append(res.args, "-"+f.Name+"="+f.Value.String())
	})
	if *render == "" {
		startWatchdog(o.watchdog)
	}
	if *render != "" {
		data, err := os.ReadFile(*render)
		if err != nil {
			fatalf("%v", err)
		}
		if res, err = loadResults(data); err != nil {
			fatalf("%s: %v", *render, err)
		}
	} else if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			fatalf("%v", err)
		}
		pprof.StartCPUProfile(f)
		run(&o, res)
		pprof.StopCPUProfile()
		f.Close()
	} else {
		run(&o, res)
	}
	if *render == "" {
		res.elapsed = time.Since(start)
	}

	md := res.markdown(&o)
	fmt.Print(md)
	if o.out == "none" {
		o.out = ""
	}
	if o.out != "" {
		if err := os.MkdirAll(o.out, 0o755); err != nil {
			fatalf("%v", err)
		}
		if err := os.WriteFile(filepath.Join(o.out, "RESULTS.md"), []byte(md), 0o644); err != nil {
			fatalf("%v", err)
		}
		if err := os.WriteFile(filepath.Join(o.out, "chart.svg"), []byte(res.svg(&o)), 0o644); err != nil {
			fatalf("%v", err)
		}
		if *render == "" {
			if err := os.WriteFile(filepath.Join(o.out, "results.json"), res.json(), 0o644); err != nil {
				fatalf("%v", err)
			}
		}
		logf("wrote RESULTS.md, chart.svg and results.json in %s", o.out)
	}
	if len(res.errors) > 0 {
		fatalf("%d measurements failed", len(res.errors))
	}
}

// measureTargets opens an echo session of conns clients with each target
// (own: each library's own client, else the common one), measures them in
// turns, and records each one's figure. The plain-TCP floor takes turns with
// either, so that a share of TCP in either table pairs figures measured in
// the same turns, as the report says.
func measureTargets(figure string, targets []target, own bool, conns, size int, d, turn time.Duration, record func(name string, perSecond float64, err error)) {
	var sessions []*echoSession
	var names []string
	for _, t := range targets {
		t.own = own
		watching(figure + ", " + t.name() + ", connecting")
		s, err := openEcho(t, conns, size)
		if err != nil {
			record(t.name(), 0, err)
			continue
		}
		defer s.close()
		s.name = figure + ", " + t.name()
		sessions = append(sessions, s)
		names = append(names, t.name())
	}
	rates, errs := measureInTurns(sessions, d, turn)
	for i, name := range names {
		record(name, rates[i], errs[i])
	}
}

// rotate returns ts starting at index r (mod len), so that the order of the
// libraries changes from run to run.
func rotate[T any](ts []T, r int) []T {
	if len(ts) == 0 {
		return ts
	}
	r %= len(ts)
	return append(slices.Clone(ts[r:]), ts[:r]...)
}

var echoSizes = []int{16, 1 << 10, 64 << 10, 1 << 20}

// echoClients lists which clients drive the echo: false the common one,
// true each library's own.
var echoClients = []bool{false, true}

func sizeName(n int) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d B", n)
}

func run(o *options, res *results) {
	targets := []target{{lib: nil}}
	for _, l := range o.libs {
		targets = append(targets, target{lib: l})
	}

	if o.sections["floor"] {
		for r := range o.runs {
			res.run = r
			figuref("floors, run %d/%d", r+1, o.runs)
			mbps, err := tcpStream(o.dur)
			res.record(secFloor, "plain TCP stream, one way (MB/s)", higher, "tcp", mbps, err)
			mm, mask, ratio := memmoveAndMask(o.dur)
			res.record(secFloor, "memmove 512 KiB within 1 MiB (GB/s)", higher, "tcp", mm, nil)
			res.record(secFloor, "ws13 Mask 1 MiB in place (GB/s)", higher, "ws13", mask, nil)
			res.record(secFloor, "Mask ÷ memmove (same 1 MiB working set)", higher, "ws13", ratio, nil)
		}
	}

	if o.sections["echo"] {
		for r := range o.runs {
			res.run = r
			for _, size := range echoSizes {
				for _, own := range echoClients {
					sec := secEchoRaw
					if own {
						sec = secEchoOwn
					}
					figure := fmt.Sprintf("echo %s, %s, run %d/%d", sizeName(size), sec.short, r+1, o.runs)
					logf("%s", figure)
					row := sizeName(size) + " round trips/s"
					measureTargets(figure, rotate(targets, r+size), own, 1, size, o.dur, o.turn, func(name string, rt float64, err error) {
						res.record(sec, row, higher, name, rt, err)
						if size >= 64<<10 {
							res.record(sec, sizeName(size)+" MB/s", higher, name, rt*float64(size)/1e6, err)
						}
					})
				}
			}
		}
	}

	if o.sections["conc"] {
		row := fmt.Sprintf("%d connections × 1 KiB, messages/s", o.conns)
		for r := range o.runs {
			res.run = r
			for _, own := range echoClients {
				sec := secConcRaw
				if own {
					sec = secConcOwn
				}
				figure := fmt.Sprintf("%d connections, %s, run %d/%d", o.conns, sec.short, r+1, o.runs)
				logf("%s", figure)
				measureTargets(figure, rotate(targets, r), own, o.conns, 1<<10, o.connDur, o.connTurn, func(name string, v float64, err error) {
					res.record(sec, row, higher, name, v, err)
				})
			}
		}
	}

	if o.sections["broadcast"] {
		row := func(burst int) string {
			if burst == 1 {
				return fmt.Sprintf("%d connections × 1 KiB, one at a time, messages delivered/s", o.conns)
			}
			return fmt.Sprintf("%d connections × 1 KiB, bursts of %d, messages delivered/s", o.conns, burst)
		}
		btargets := []target{{lib: nil}}
		for _, l := range o.libs {
			if slices.Contains(broadcastLibs, l) {
				btargets = append(btargets, target{lib: l})
			}
			if l == ws13Lib && !slices.Contains(o.libs, ws13LoopLib) {
				// ws13 the way the peers without a broadcast of
				// their own do it, too.
				btargets = append(btargets, target{lib: ws13LoopLib})
			}
		}
		for r := range o.runs {
			res.run = r
			figure := fmt.Sprintf("broadcast to %d connections, run %d/%d", o.conns, r+1, o.runs)
			logf("%s", figure)
			measureBroadcast(figure, rotate(btargets, r), o.conns, 1<<10, broadcastBursts, o.connDur, o.connTurn, func(burst int, name string, v float64, err error) {
				res.record(secBroadcast, row(burst), higher, name, v, err)
			})
		}
	}

	if o.sections["alloc"] {
		allocLibs := o.libs
		if slices.Contains(o.libs, ws13Lib) && !slices.Contains(o.libs, ws13CtxLib) {
			// What the README's quick start costs: a cancellable context.
			allocLibs = append(slices.Clone(o.libs), ws13CtxLib)
		}
		for r := range o.runs {
			res.run = r
			for _, l := range rotate(allocLibs, r) {
				figuref("allocations, %s, run %d/%d", l.name, r+1, o.runs)
				s, err := serverAllocs(l, o.allocN)
				res.record(secAlloc, "server: write 1 KiB, allocs/op", lower, l.name, s.writeAllocs, err)
				res.record(secAlloc, "server: write 1 KiB, B/op", lower, l.name, s.writeBytes, err)
				res.record(secAlloc, "server: read 1 KiB, allocs/op", lower, l.name, s.readAllocs, err)
				res.record(secAlloc, "server: read 1 KiB, B/op", lower, l.name, s.readBytes, err)
				c, err := clientAllocs(l, o.allocN)
				res.record(secAlloc, "client: write 1 KiB, allocs/op", lower, l.name, c.writeAllocs, err)
				res.record(secAlloc, "client: write 1 KiB, B/op", lower, l.name, c.writeBytes, err)
				res.record(secAlloc, "client: read 1 KiB, allocs/op", lower, l.name, c.readAllocs, err)
				res.record(secAlloc, "client: read 1 KiB, B/op", lower, l.name, c.readBytes, err)
			}
		}
	}

	var corpus [][]byte
	if o.sections["deflate"] || o.sections["idle"] {
		var err error
		corpus, err = loadCorpus(o.corpus)
		if err != nil {
			res.record(secDeflate, "corpus", higher, "ws13", 0, fmt.Errorf("deflate corpus: %v", err))
		}
	}

	if o.sections["idle"] {
		names := []string{"tcp"}
		for _, l := range o.libs {
			names = append(names, l.name)
			if l != ws13Lib {
				continue
			}
			// The same library used the two ways the README offers
			// for many quiet connections: the handler returns, so that
			// net/http lets go of its per-connection state, and the
			// read loop runs on a goroutine of its own, or a Poller
			// reads and no goroutine waits.
			for _, variant := range []*library{ws13GoLib, ws13PollLib} {
				if !slices.Contains(o.libs, variant) {
					names = append(names, variant.name)
				}
			}
		}
		rssRow := fmt.Sprintf("%d idle: server RSS, KiB per connection", o.idle)
		heapRow := fmt.Sprintf("%d idle: Go heap, KiB per connection", o.idle)
		stackRow := fmt.Sprintf("%d idle: goroutine stacks, KiB per connection", o.idle)
		for r := range o.runs {
			res.run = r
			for _, name := range rotate(names, r) {
				figuref("idle memory, %s, %d connections, run %d/%d", name, o.idle, r+1, o.runs)
				prof := ""
				if o.memprofile != "" && r == 0 {
					prof = o.memprofile + "-" + name + ".pprof"
				}
				rss, heap, stack, err := idleMemory(name, deflateOff, o.idle, corpus, prof)
				res.record(secIdle, rssRow, lower, name, rss/1024, err)
				res.record(secIdle, heapRow, lower, name, heap/1024, err)
				res.record(secIdle, stackRow, lower, name, stack/1024, err)
			}
		}
	}

	if o.sections["deflate"] && corpus != nil {
		var total int
		for _, m := range corpus {
			total += len(m)
		}
		res.corpusNote = fmt.Sprintf("%s: %d JSON messages, %d bytes, sent as text", o.corpus, len(corpus), total)
		for _, m := range []deflateMode{deflateNoTakeover, deflateTakeover} {
			for r := range o.runs {
				res.run = r
				figuref("deflate %s, run %d/%d", m, r+1, o.runs)
				measureDeflate(rotate(o.libs, r), m, corpus, o.deflateDur, o.turn, func(name string, mbps, ratio float64, err error) {
					res.record(secDeflate, m.String()+": echo MB/s", higher, name, mbps, err)
					res.record(secDeflate, m.String()+": wire ÷ payload (client→server)", lower, name, ratio, err)
				})
			}
		}
		// Each mode in rows of its own: a library without context
		// takeover keeps nothing between messages, which is no rival
		// for one that keeps a window.
		for r := range o.runs {
			res.run = r
			for _, m := range []deflateMode{deflateNoTakeover, deflateTakeover} {
				row := fmt.Sprintf("%s, %d idle after one message: server RSS, KiB per connection", m, o.idleDeflate)
				goRow := fmt.Sprintf("%s, %d idle after one message: Go heap, KiB per connection", m, o.idleDeflate)
				for _, l := range rotate(o.libs, r) {
					if !slices.Contains(l.deflate, m) {
						continue
					}
					figuref("deflate idle memory, %s, %s, run %d/%d", m, l.name, r+1, o.runs)
					rss, heap, _, err := idleMemory(l.name, m, o.idleDeflate, corpus, "")
					res.record(secDeflate, row, lower, l.name, rss/1024, err)
					res.record(secDeflate, goRow, lower, l.name, heap/1024, err)
				}
			}
		}
	}

}
