package main

// The measurements: echo over one connection, echo over many, deflate, and
// the physical floors. Idle memory is in idle.go, allocations in allocs.go.

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	ws13 "github.com/ws13/websocket"
)

// echoer does one round trip.
type echoer interface {
	Echo() (int, error)
	Close() error
}

// echoRunner is an echoer that drives its own round trips (a library's own
// client whose reads are callbacks): Run does round trips until target or,
// checking the clock every clockEvery, deadline, and returns how many.
type echoRunner interface {
	Run(target int, deadline time.Time, clockEvery int) (int, error)
}

// ownClient drives a library's server with the same library's client.
type ownClient struct {
	c   msgConn
	msg []byte
	buf []byte
}

func (o *ownClient) Echo() (int, error) {
	if err := o.c.Write(o.msg); err != nil {
		return 0, err
	}
	b, err := o.c.Read(o.buf)
	o.buf = b[:0]
	return len(b), err
}

func (o *ownClient) Close() error { return o.c.Close() }

func listen() net.Listener {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fatalf("listen: %v", err)
	}
	return ln
}

// target is what an echo measurement drives: plain TCP (lib nil), or a
// library's server with the common client (own false) or its own client.
type target struct {
	lib *library
	own bool
}

func (t target) name() string {
	if t.lib == nil {
		return "tcp"
	}
	return t.lib.name
}

// startEcho starts an echo server for t with messages of size bytes and
// returns a function that connects one client.
func startEcho(t target, size int) (connect func() (echoer, error), stop func()) {
	ln := listen()
	addr := ln.Addr().String()
	if t.lib == nil {
		stop = tcpEchoServer(ln)
		return func() (echoer, error) { return dialTCPEcho(addr, size) }, stop
	}
	cfg := config{readLimit: 4 << 20, dial: dialTCP}
	stop = echoServer(t.lib, ln, cfg)
	msg := payload(size)
	if t.own && t.lib.dialEcho != nil {
		return func() (echoer, error) { return t.lib.dialEcho(addr, cfg, msg) }, stop
	}
	if t.own {
		return func() (echoer, error) {
			c, err := t.lib.dial(addr, cfg)
			if err != nil {
				return nil, err
			}
			return &ownClient{c: c, msg: msg, buf: make([]byte, 0, size)}, nil
		}, stop
	}
	return func() (echoer, error) {
		c, err := dialRaw(addr, "")
		if err != nil {
			return nil, err
		}
		c.setMessage(msg)
		return c, nil
	}, stop
}

// maxRoundTrips bounds the round trips of one client in one turn.
const maxRoundTrips = 50_000_000

// echoSession is one target's echo server with its clients connected and
// warmed up, ready to be measured in turns with the others.
type echoSession struct {
	name    string // the figure and the library, for the watchdog
	size    int
	clients []echoer
	// clockEvery: a client reads the clock every this many round trips.
	// time.Now costs ~50 ns, 0.25% of a loopback round trip, so one client
	// alone reads it every 8; with many, a client's round trip takes
	// milliseconds, and reading it every time keeps each turn's end sharp.
	clockEvery int
	stop       func()
}

// openEcho starts t's echo server and connects conns clients to it, each
// of which makes a few round trips (20 in all, at least one each) to check
// the echo and warm up.
func openEcho(t target, conns, size int) (*echoSession, error) {
	connect, stop := startEcho(t, size)
	s := &echoSession{size: size, clockEvery: 8, stop: stop}
	if conns > 1 {
		s.clockEvery = 1
	}
	clients, err := connectAll(conns, func() (echoer, error) {
		c, err := connect()
		if err != nil {
			return nil, err
		}
		for i := 0; err == nil && i < max(1, 20/conns); i++ {
			err = s.echo(c)
		}
		if err != nil {
			c.Close()
			return nil, err
		}
		return c, nil
	})
	s.clients = clients
	if err != nil {
		s.close()
		return nil, err
	}
	return s, nil
}

// connectAll makes n connections with connect, a few at a time (the
// listen backlog is finite), and returns those it made and the first
// error, if any.
func connectAll[T any](n int, connect func() (T, error)) ([]T, error) {
	var mu sync.Mutex
	var made []T
	var firstErr error
	var wg sync.WaitGroup
	sem := make(chan struct{}, 32)
	for range n {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			c, err := connect()
			progress()
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				made = append(made, c)
			case firstErr == nil:
				firstErr = err
			}
		})
	}
	wg.Wait()
	return made, firstErr
}

// echo makes one round trip and checks what came back.
func (s *echoSession) echo(c echoer) error {
	n, err := c.Echo()
	if err == nil && n != s.size {
		err = fmt.Errorf("echo of %d bytes came back as %d", s.size, n)
	}
	return err
}

func (s *echoSession) close() {
	for _, c := range s.clients {
		c.Close()
	}
	s.stop()
}

// roundTrips has every client make round trips at once for about d, and
// returns how many they made and the time until the last one was back.
func (s *echoSession) roundTrips(d time.Duration) (int, time.Duration, error) {
	if len(s.clients) == 1 {
		start := time.Now()
		n, err := s.run(s.clients[0], start.Add(d))
		return n, time.Since(start), err
	}
	var total atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, len(s.clients))
	begin := make(chan struct{})
	var deadline time.Time // written before begin is closed
	for _, c := range s.clients {
		wg.Go(func() {
			<-begin
			n, err := s.run(c, deadline)
			total.Add(int64(n))
			if err != nil {
				errs <- err
			}
		})
	}
	start := time.Now()
	deadline = start.Add(d)
	close(begin)
	wg.Wait()
	elapsed := time.Since(start)
	select {
	case err := <-errs:
		return 0, elapsed, err
	default:
	}
	return int(total.Load()), elapsed, nil
}

// run makes c's round trips until deadline, at most maxRoundTrips.
func (s *echoSession) run(c echoer, deadline time.Time) (int, error) {
	if r, ok := c.(echoRunner); ok {
		return r.Run(maxRoundTrips, deadline, s.clockEvery)
	}
	n := 0
	for n < maxRoundTrips {
		for range s.clockEvery {
			if err := s.echo(c); err != nil {
				return n, err
			}
		}
		n += s.clockEvery
		if time.Now().After(deadline) {
			break
		}
	}
	return n, nil
}

// turnTaker is what measureInTurns measures: an echo session, or a
// broadcast (broadcast.go).
type turnTaker interface {
	// label names it for the watchdog ("" for no name).
	label() string
	// count works for about d and returns how many units it did (round
	// trips, messages delivered) and the time they took.
	count(d time.Duration) (int, time.Duration, error)
}

func (s *echoSession) label() string { return s.name }

func (s *echoSession) count(d time.Duration) (int, time.Duration, error) { return s.roundTrips(d) }

// measureInTurns measures the sessions' units per second (round trips,
// messages delivered), each given d in all, in turns of at most turn each,
// in the order given: a machine whose speed drifts over seconds (a shared
// virtual machine's does) then slows or speeds every session alike, where
// figures measured one after the other, seconds apart, would take the drift
// for a difference. A session that fails drops out with its error.
func measureInTurns[T turnTaker](sessions []T, d, turn time.Duration) ([]float64, []error) {
	n := make([]int, len(sessions))
	spent := make([]time.Duration, len(sessions))
	errs := make([]error, len(sessions))
	for {
		active := false
		for i, s := range sessions {
			if errs[i] != nil || spent[i] >= d {
				continue
			}
			active = true
			if name := s.label(); name != "" {
				watching(name)
			}
			m, elapsed, err := s.count(min(turn, d-spent[i]))
			n[i] += m
			spent[i] += elapsed
			errs[i] = err
			progress()
		}
		if !active {
			break
		}
	}
	rates := make([]float64, len(sessions))
	for i := range sessions {
		if errs[i] == nil {
			rates[i] = float64(n[i]) / spent[i].Seconds()
		}
	}
	return rates, errs
}

// ---- deflate ----

// loadCorpus reads one message per line.
func loadCorpus(path string) ([][]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var msgs [][]byte
	for line := range bytes.SplitSeq(data, []byte("\n")) {
		if len(line) > 0 {
			msgs = append(msgs, line)
		}
	}
	if len(msgs) == 0 {
		return nil, errors.New("empty corpus")
	}
	return msgs, nil
}

// corpusEchoer echoes the corpus message after message, each reply checked
// byte for byte: a library's own client, through msgConn, or driving the
// round trips itself where its reads are callbacks (dialCorpus), so that no
// adapter stands between a reply and the next message.
type corpusEchoer interface {
	// Run echoes the next messages of the corpus (going round it), from
	// where the last Run stopped, until n have come back or, checked
	// after each if deadline is not zero, deadline has passed. It returns
	// how many came back and their payload bytes.
	Run(n int, deadline time.Time) (int, int64, error)
	Close() error
}

// msgCorpusEchoer is a corpusEchoer over a msgConn.
type msgCorpusEchoer struct {
	c      msgConn
	corpus [][]byte
	next   int // the corpus index of the next message
	buf    []byte
}

func (e *msgCorpusEchoer) Run(n int, deadline time.Time) (int, int64, error) {
	var bytesEchoed int64
	for done := 0; done < n; {
		i := e.next % len(e.corpus)
		msg := e.corpus[i]
		if err := e.c.Write(msg); err != nil {
			return done, bytesEchoed, err
		}
		b, err := e.c.Read(e.buf)
		if err != nil {
			return done, bytesEchoed, err
		}
		e.buf = b[:0]
		if !bytes.Equal(b, msg) {
			return done, bytesEchoed, fmt.Errorf("message %d came back changed", i)
		}
		e.next++
		done++
		bytesEchoed += int64(len(msg))
		if !deadline.IsZero() && time.Now().After(deadline) {
			return done, bytesEchoed, nil
		}
	}
	return max(n, 0), bytesEchoed, nil
}

func (e *msgCorpusEchoer) Close() error { return e.c.Close() }

// maxCorpusEchoes bounds the messages of one deflate figure.
const maxCorpusEchoes = 10_000_000

// deflateSession echoes the corpus, message after message, as text, with
// one library's own client and server, for measureInTurns: the libraries of
// a deflate figure take turns as those of an echo figure do.
type deflateSession struct {
	name  string // the figure and the library, for the watchdog
	e     corpusEchoer
	stop  func()
	ratio float64 // bytes the client wrote ÷ payload, over the first pass
}

// openDeflate starts l's echo server with compression mode m, connects l's
// own client, and echoes the corpus once through: that pass gives the ratio
// of the bytes the client wrote (frame headers included) to the payload it
// sent, and the turns measured go on from where it ended.
func openDeflate(l *library, m deflateMode, corpus [][]byte) (*deflateSession, error) {
	ln := listen()
	var written atomic.Int64
	cfg := config{readLimit: 4 << 20, text: true, deflate: m, dial: countingDial(&written)}
	stop := echoServer(l, ln, cfg)
	var e corpusEchoer
	var err error
	if l.dialCorpus != nil {
		e, err = l.dialCorpus(ln.Addr().String(), cfg, corpus)
	} else {
		var c msgConn
		if c, err = l.dial(ln.Addr().String(), cfg); err == nil {
			e = &msgCorpusEchoer{c: c, corpus: corpus, buf: make([]byte, 0, 64<<10)}
		}
	}
	if err != nil {
		stop()
		return nil, err
	}
	base := written.Load()
	_, sent, err := e.Run(len(corpus), time.Time{})
	if err != nil {
		e.Close()
		stop()
		return nil, err
	}
	return &deflateSession{e: e, stop: stop, ratio: float64(written.Load()-base) / float64(sent)}, nil
}

func (s *deflateSession) label() string { return s.name }

// count echoes for about d and returns the payload bytes echoed, each
// message counted once per round trip.
func (s *deflateSession) count(d time.Duration) (int, time.Duration, error) {
	start := time.Now()
	_, sent, err := s.e.Run(maxCorpusEchoes, start.Add(d))
	return int(sent), time.Since(start), err
}

func (s *deflateSession) close() {
	s.e.Close()
	s.stop()
}

// measureDeflate opens a deflate session in mode m with each library that
// has m, measures them in turns, and records each one's MB/s of
// uncompressed payload and wire ratio.
func measureDeflate(libs []*library, m deflateMode, corpus [][]byte, d, turn time.Duration, record func(name string, mbps, ratio float64, err error)) {
	var sessions []*deflateSession
	var names []string
	for _, l := range libs {
		if !slices.Contains(l.deflate, m) {
			continue
		}
		watching(fmt.Sprintf("deflate %s, %s, connecting", m, l.name))
		s, err := openDeflate(l, m, corpus)
		if err != nil {
			record(l.name, 0, 0, err)
			continue
		}
		defer s.close()
		s.name = fmt.Sprintf("deflate %s, %s", m, l.name)
		sessions = append(sessions, s)
		names = append(names, l.name)
	}
	rates, errs := measureInTurns(sessions, d, turn)
	for i, name := range names {
		record(name, rates[i]/1e6, sessions[i].ratio, errs[i])
	}
}

// ---- floors ----

// tcpStream measures one-way loopback TCP throughput in MB/s, writing
// 64 KiB at a time for about d.
func tcpStream(d time.Duration) (float64, error) {
	ln := listen()
	var got atomic.Int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		nc, err := ln.Accept()
		if err != nil {
			return
		}
		defer nc.Close()
		buf := make([]byte, 256<<10)
		for {
			n, err := nc.Read(buf)
			got.Add(int64(n))
			if err != nil {
				return
			}
		}
	}()
	nc, err := dialTCP(bg, "tcp", ln.Addr().String())
	// Whatever happens, the connection and the listener close, which ends
	// the reader (at its Read or its Accept), and it is waited for.
	defer func() {
		if nc != nil {
			nc.Close()
		}
		ln.Close()
		<-done
	}()
	if err != nil {
		return 0, err
	}
	chunk := payload(64 << 10)
	for range 16 {
		if _, err := nc.Write(chunk); err != nil {
			return 0, err
		}
	}
	startBytes := got.Load()
	start := time.Now()
	deadline := start.Add(d)
	for i := 0; i < 10_000_000 && time.Now().Before(deadline); i++ {
		if _, err := nc.Write(chunk); err != nil {
			return 0, err
		}
	}
	elapsed := time.Since(start)
	n := got.Load() - startBytes
	return float64(n) / elapsed.Seconds() / 1e6, nil
}

// maskReps is how many times memmoveAndMask measures each of the two.
const maskReps = 7

// memmoveAndMask returns GB/s of memmove and of ws13's Mask, and Mask's
// speed as a ratio to memmove's, over the same 1 MiB working set: Mask
// works in place over 1 MiB, memmove copies one half of a 1 MiB buffer to
// the other (512 KiB), so each reads and writes every byte it is counted
// for, in the same cache footprint. The two are measured maskReps times
// each, taking turns, the first of each pair alternating; each figure is
// the median, the ratio the median of the ratios within a pair (d in all).
func memmoveAndMask(d time.Duration) (memmove, mask, ratio float64) {
	const size = 1 << 20
	buf := payload(size)
	gbps := func(bytes int, f func(), d time.Duration) float64 {
		f()
		n := 0
		start := time.Now()
		for time.Since(start) < d && n < 1_000_000 {
			for range 4 {
				f()
			}
			n += 4
		}
		return float64(n) * float64(bytes) / time.Since(start).Seconds() / 1e9
	}
	key := [4]byte{1, 2, 3, 4}
	move := func() { copy(buf[size/2:], buf[:size/2]) }
	xor := func() { ws13.Mask(key, 0, buf) }
	each := d / (2 * maskReps)
	var mms, masks, ratios []float64
	for i := range maskReps {
		var mm, mk float64
		if i%2 == 0 {
			mm = gbps(size/2, move, each)
			mk = gbps(size, xor, each)
		} else {
			mk = gbps(size, xor, each)
			mm = gbps(size/2, move, each)
		}
		mms, masks, ratios = append(mms, mm), append(masks, mk), append(ratios, mk/mm)
	}
	memmove, _ = median(mms)
	mask, _ = median(masks)
	ratio, _ = median(ratios)
	return memmove, mask, ratio
}
