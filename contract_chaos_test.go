package websocket

// The concurrency contract (doc.go, "Concurrency"; README.md, "Concurrency
// contract") under chaos: many goroutines on ONE connection at once, each
// writing through every write API with prepared and streamed messages,
// pinging, setting the read limit and registering with AfterClose, while one
// goroutine per side reads (or CloseRead reads for a side that only
// writes), until Close or CloseNow, on a random side at a random moment,
// ends it; with keepalive, small socket buffers and short contexts in some
// runs. Every received message must be whole and one that was written, in
// its writer's order; a message whose write returned nil must not be missing
// before a later one of the same writer, nor before the close frame of a
// side that closed; one whose write returned ctx.Err() alone must never
// arrive; every call must return, with an error the docs allow; after a
// completed closing handshake each reader returns a *CloseError; calls of
// Close on one side return the same; no goroutine may be left.
//
//	go test -race -run '^TestConcurrencyContractChaos$' .
//	WS13_CHAOS_SEEDS=200 go test -race -run '^TestConcurrencyContractChaos$' .   random seeds, a longer run
//	WS13_CHAOS_SEED=1234 go test -race -run '^TestConcurrencyContractChaos$' -v . replay one seed

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"
)

// chaosRunTimeout bounds every call of a run: far above what a run takes,
// so reaching it means a hang.
const chaosRunTimeout = 20 * time.Second

// The fate of one message, as its writer learned it.
const (
	chaosPending    = iota // the call writing it has not returned
	chaosWritten           // it returned nil: the message is out, whole
	chaosMaybe             // it failed in a way that may have sent it or not
	chaosNotWritten        // nothing of it went out: it must never arrive
)

// chaosWriterLog is what one writing goroutine sent, by sequence number.
type chaosWriterLog struct {
	mu    sync.Mutex
	fate  []int
	how   []string // the call that wrote it, and its error
	typ   []MessageType
	bytes [][]byte
}

func (l *chaosWriterLog) add(typ MessageType, msg []byte) {
	l.mu.Lock()
	l.fate = append(l.fate, chaosPending)
	l.how = append(l.how, "")
	l.typ = append(l.typ, typ)
	l.bytes = append(l.bytes, msg)
	l.mu.Unlock()
}

func (l *chaosWriterLog) settle(seq, fate int, how string, err error) {
	l.mu.Lock()
	l.fate[seq] = fate
	l.how[seq] = fmt.Sprintf("%s: %v", how, err)
	l.mu.Unlock()
}

// chaosRun is the shared state of one seeded run.
type chaosRun struct {
	t    *testing.T
	seed uint64
	ctx  context.Context // bounds every call: reaching it is a hang
	// cuts: calls now and then get a context that ends within
	// milliseconds, which may cut a write mid-frame and drop the
	// connection; without, the run ends by Close or CloseNow alone.
	cuts bool

	hooks sync.WaitGroup // goroutines waiting for AfterClose functions to run

	closeReads []context.Context // returned by CloseRead; guarded by mu

	mu       sync.Mutex
	failures []string
}

func (r *chaosRun) fail(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.failures) < 20 {
		r.failures = append(r.failures, fmt.Sprintf(format, args...))
	}
}

// chaosSide is one end of the connection and what its writers sent.
type chaosSide struct {
	name    string
	c       *Conn
	writers []*chaosWriterLog
	// tryWrites: TryWritePrepared can write here (a TCP socket, not TLS).
	tryWrites bool
	// closeReadOK: this side only writes, so CloseRead may read for it.
	closeReadOK bool
}

// chaosMessage makes message seq of writer g: "gg ssssss cccccccc " then a
// body of random size, text (valid UTF-8) or binary.
func chaosMessage(rng *rand.Rand, g, seq int) (MessageType, []byte) {
	var size int
	switch x := rng.IntN(100); {
	case x < 70:
		size = rng.IntN(300)
	case x < 95:
		size = 300 + rng.IntN(6<<10)
	case x < 99: // past a streamed message's 16 KiB fragment
		size = 16<<10 + rng.IntN(24<<10)
	default: // a frame large enough to go out in several writes
		size = splitFrameSize + rng.IntN(128<<10)
	}
	typ := MessageBinary
	body := make([]byte, 0, size+4)
	if rng.IntN(2) == 0 {
		typ = MessageText
		chars := []string{"a", "q", " ", "é", "€", "𝄞", "中"}
		for len(body) < size {
			body = append(body, chars[rng.IntN(len(chars))]...)
		}
	} else {
		for len(body) < size {
			body = append(body, byte(rng.Uint32()))
		}
	}
	prefix := fmt.Sprintf("%02d %06d %08x ", g, seq, crc32.ChecksumIEEE(body))
	return typ, append([]byte(prefix), body...)
}

// chaosParse returns the writer and sequence number of a received message,
// and whether its checksum holds.
func chaosParse(msg []byte) (g, seq int, ok bool) {
	if len(msg) < 19 {
		return 0, 0, false
	}
	g, err1 := strconv.Atoi(string(msg[:2]))
	seq, err2 := strconv.Atoi(string(msg[3:9]))
	sum, err3 := strconv.ParseUint(string(msg[10:18]), 16, 32)
	return g, seq, err1 == nil && err2 == nil && err3 == nil && uint32(sum) == crc32.ChecksumIEEE(msg[19:])
}

// chaosWriteAllowed reports whether err is an error a write may return:
// the connection closed (ErrClosed, a *CloseError), or its own context,
// short, ended.
func chaosWriteAllowed(err error, short bool) bool {
	var ce *CloseError
	return err == nil || errors.Is(err, ErrClosed) || errors.As(err, &ce) ||
		short && errors.Is(err, context.DeadlineExceeded)
}

// chaosClosed reports whether err says the connection is gone, after which
// a goroutine stops.
func chaosClosed(err error) bool {
	var ce *CloseError
	return errors.Is(err, ErrClosed) || errors.As(err, &ce)
}

// chaosFate is what a write's error says of the message it was writing.
func chaosFate(err error) int {
	switch {
	case err == nil:
		return chaosWritten
	case !errors.Is(err, ErrClosed) && (errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled)):
		// ctx.Err() alone: done before any byte moved (doc.go, "Contexts").
		return chaosNotWritten
	}
	return chaosMaybe
}

// opContext returns the run's context, or now and then one that ends within
// a few milliseconds.
func (r *chaosRun) opContext(rng *rand.Rand) (context.Context, context.CancelFunc, bool) {
	if r.cuts && rng.IntN(10) == 0 {
		ctx, cancel := context.WithTimeout(r.ctx, time.Duration(rng.IntN(3000))*time.Microsecond)
		return ctx, cancel, true
	}
	return r.ctx, func() {}, false
}

// write runs one writing goroutine of side s: ops calls of the write API
// chosen at random, until the connection closes.
// With controlOnly it sends no data message: it pings, sets the read limit
// and registers with AfterClose, for a peer that only writes.
func (r *chaosRun) write(s *chaosSide, g int, rng *rand.Rand, ops int, maxMessage int64, controlOnly bool) {
	log := &chaosWriterLog{} // unused without data messages
	if !controlOnly {
		log = s.writers[g]
	}
	seq := 0
	next := func() (int, MessageType, []byte) {
		typ, msg := chaosMessage(rng, g, seq)
		log.add(typ, msg)
		seq++
		return seq - 1, typ, msg
	}
	// prepareNext makes the next count messages, from the one numbered first.
	prepareNext := func(count int) (first int, msgs []*PreparedMessage) {
		first = seq
		msgs = make([]*PreparedMessage, count)
		for j := range msgs {
			_, typ, msg := next()
			msgs[j], _ = NewPreparedMessage(typ, msg)
		}
		return first, msgs
	}
	for i := 0; i < ops; i++ {
		ctx, cancel, short := r.opContext(rng)
		var err error
		what := ""
		began := time.Now()
		x := rng.IntN(100)
		if controlOnly {
			x = 82 + rng.IntN(18)
		}
		switch {
		case x < 25:
			what = "Write"
			n, typ, msg := next()
			err = s.c.Write(ctx, typ, msg)
			log.settle(n, chaosFate(err), what, err)
		case x < 30:
			what = "WriteUncompressed"
			n, typ, msg := next()
			err = s.c.WriteUncompressed(ctx, typ, msg)
			log.settle(n, chaosFate(err), what, err)
		case x < 50:
			what = "Writer"
			n, typ, msg := next()
			err = chaosStream(ctx, s.c, rng, typ, msg)
			log.settle(n, chaosFate(err), what, err)
		case x < 65:
			what = "WritePrepared"
			count := 1 + rng.IntN(3)
			first, msgs := prepareNext(count)
			err = s.c.WritePrepared(ctx, msgs...)
			for j := range msgs {
				fate := chaosFate(err)
				if err != nil && count > 1 {
					// Which messages went out before the error is not
					// reported (prepared.go): the first may have, and
					// the error be a later one's ctx.Err().
					fate = chaosMaybe
				}
				log.settle(first+j, fate, what, err)
			}
		case x < 82:
			what = "TryWritePrepared"
			count := 1 + rng.IntN(3)
			first, msgs := prepareNext(count)
			var n int
			n, err = s.c.TryWritePrepared(time.Second, msgs...)
			if n < 0 || n > count || err != nil && n != 0 {
				r.fail("%s writer %d: TryWritePrepared of %d = %d, %v", s.name, g, count, n, err)
			}
			if n > 0 && !s.tryWrites {
				r.fail("%s writer %d: TryWritePrepared wrote %d over TLS", s.name, g, n)
			}
			for j := range msgs {
				fate := chaosNotWritten
				if j < n {
					fate = chaosWritten
				}
				log.settle(first+j, fate, what, err)
			}
		case x < 92:
			what = "Ping"
			err = s.c.Ping(ctx)
		case x < 94:
			what = "SetReadLimit"
			s.c.SetReadLimit(maxMessage + rng.Int64N(1<<20))
		case x < 96:
			what = "AfterClose"
			r.afterClose(s, rng.IntN(2) == 0)
		case x < 98 && s.closeReadOK:
			// One more background reader; they take turns (README).
			what = "CloseRead"
			r.closeRead(s)
		default:
			what = "yield"
			runtime.Gosched()
		}
		cancel()
		if d := time.Since(began); d > time.Second {
			r.t.Logf("SLOW %s writer %d: %s took %v: %v", s.name, g, what, d, err)
		}
		if !chaosWriteAllowed(err, short) {
			r.fail("%s writer %d: %s: unexpected error %v", s.name, g, what, err)
			return
		}
		if r.ctx.Err() != nil {
			r.fail("%s writer %d: %s returned only at the run's deadline (%v)", s.name, g, what, err)
			return
		}
		if chaosClosed(err) {
			return
		}
	}
}

// closeRead calls CloseRead on s, and keeps the context it returns, which
// must be done once Close or CloseNow returns.
func (r *chaosRun) closeRead(s *chaosSide) {
	ctx := s.c.CloseRead(r.ctx)
	r.mu.Lock()
	r.closeReads = append(r.closeReads, ctx)
	r.mu.Unlock()
}

// afterClose registers a function with AfterClose, which must run once the
// connection is closed, and only then, unless stop, called at once if
// stopNow, kept it from running.
func (r *chaosRun) afterClose(s *chaosSide, stopNow bool) {
	ran := make(chan struct{})
	stop := s.c.AfterClose(func() {
		select {
		case <-s.c.Done():
		default:
			r.fail("%s: a function given to AfterClose ran before Done was closed", s.name)
		}
		close(ran)
	})
	stopped := stopNow && stop()
	r.hooks.Add(1)
	go func() {
		defer r.hooks.Done()
		if stopped {
			return
		}
		select {
		case <-ran:
		case <-r.ctx.Done():
			r.fail("%s: a function given to AfterClose never ran", s.name)
		}
	}()
}

// chaosStream sends msg through a Writer in random pieces, and closes it
// whatever happens.
func chaosStream(ctx context.Context, c *Conn, rng *rand.Rand, typ MessageType, msg []byte) error {
	w, err := c.Writer(ctx, typ)
	if err != nil {
		return err
	}
	for len(msg) > 0 && err == nil {
		n := min(len(msg), 1+rng.IntN(max(1, len(msg)/2+1)))
		_, err = w.Write(msg[:n])
		msg = msg[n:]
	}
	if cerr := w.Close(); err == nil {
		err = cerr
	}
	return err
}

// chaosReader is side s's reader: Read, AppendMessage and Reader by
// turns, checking each message against what the peer's writers logged,
// until the connection ends.
type chaosReader struct {
	r        *chaosRun
	s, peer  *chaosSide
	rng      *rand.Rand
	takeover bool
	last     []int // the last sequence number received from each writer
	buf      []byte
	end      chaosReadEnd
}

func newChaosReader(r *chaosRun, s, peer *chaosSide, rng *rand.Rand, takeover bool) *chaosReader {
	cr := &chaosReader{r: r, s: s, peer: peer, rng: rng, takeover: takeover, last: make([]int, len(peer.writers))}
	cr.end.received = make(map[[2]int]bool)
	for i := range cr.last {
		cr.last[i] = -1
	}
	return cr
}

// read reads until the connection ends.
func (cr *chaosReader) read() chaosReadEnd {
	for {
		if _, done := cr.step(); done {
			return cr.end
		}
	}
}

// step reads once: a message, or nothing (a short context ended the
// read), or the end of the connection (done).
func (cr *chaosReader) step() (message, done bool) {
	r, s, rng := cr.r, cr.s, cr.rng
	end := &cr.end
	if rng.IntN(8) == 0 {
		// A slow reader: the peer's writes wait for the socket.
		time.Sleep(time.Duration(rng.IntN(20000)) * time.Microsecond)
	}
	ctx, cancel := r.ctx, context.CancelFunc(func() {})
	short := r.cuts && rng.IntN(20) == 0
	if short {
		ctx, cancel = context.WithTimeout(r.ctx, time.Duration(rng.IntN(2000))*time.Microsecond)
	}
	var typ MessageType
	var msg []byte
	var err error
	switch rng.IntN(3) {
	case 0:
		typ, msg, err = s.c.Read(ctx)
	case 1:
		typ, cr.buf, err = s.c.AppendMessage(ctx, cr.buf[:0])
		msg = bytes.Clone(cr.buf)
	default:
		var rd io.Reader
		typ, rd, err = s.c.Reader(ctx)
		for err == nil {
			piece := make([]byte, 1+rng.IntN(8<<10))
			var n int
			n, err = rd.Read(piece)
			msg = append(msg, piece[:n]...)
		}
		if err == io.EOF {
			err = nil
		}
	}
	cancel()
	if r.ctx.Err() != nil {
		r.fail("%s reader: returned only at the run's deadline (%v)", s.name, err)
		end.err = err
		return false, true
	}
	if err != nil {
		var pe *ProtocolError
		switch {
		case short && !chaosClosed(err) && errors.Is(err, context.DeadlineExceeded):
			end.lossAllowed = true // a read cut mid-message skips it
			return false, false
		case cr.takeover && (short || end.lossAllowed) && errors.As(err, &pe) && errors.Is(err, ErrDeflateInterrupted):
			// This read, or an earlier one, was cut inside a message
			// compressed with context takeover: the connection fails
			// (doc.go, "Contexts").
			end.lossAllowed = true
		case !chaosClosed(err):
			r.fail("%s reader: unexpected error %v", s.name, err)
		}
		end.err = err
		return false, true
	}
	g, seq, ok := chaosParse(msg)
	if !ok || g >= len(cr.peer.writers) {
		r.fail("%s reader: a corrupt message of %d bytes: %.40q", s.name, len(msg), msg)
		end.lossAllowed = true
		return false, true
	}
	log := cr.peer.writers[g]
	log.mu.Lock()
	switch {
	case seq >= len(log.fate):
		r.fail("%s reader: writer %d's message %d was never written", s.name, g, seq)
	case seq <= cr.last[g]:
		r.fail("%s reader: writer %d's message %d after its message %d", s.name, g, seq, cr.last[g])
	case log.typ[seq] != typ || !bytes.Equal(log.bytes[seq], msg):
		r.fail("%s reader: writer %d's message %d differs from what was written (%v, %d bytes; want %v, %d)", s.name, g, seq, typ, len(msg), log.typ[seq], len(log.bytes[seq]))
	case log.fate[seq] == chaosNotWritten:
		r.fail("%s reader: writer %d's message %d arrived, though its write said nothing went out (%s)", s.name, g, seq, log.how[seq])
	default:
		for skipped := cr.last[g] + 1; skipped < seq && !end.lossAllowed; skipped++ {
			if log.fate[skipped] == chaosWritten {
				r.fail("%s reader: writer %d's message %d, written, is missing before its message %d", s.name, g, skipped, seq)
			}
		}
	}
	log.mu.Unlock()
	cr.last[g] = seq
	end.received[[2]int{g, seq}] = true
	return true, false
}

// poll reads through a Poller's handler, called per message, instead: it
// reads one message a call (after the reads a short context cut), and once
// the end, for which the Poller must call it once more (poll.go).
func (cr *chaosReader) poll(t *testing.T, ended func(chaosReadEnd)) {
	poller, err := NewPoller()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { poller.Close() })
	finished := false
	err = poller.Add(cr.s.c, func(*Conn) {
		if finished {
			cr.r.fail("%s: the Poller called its handler after the end", cr.s.name)
			return
		}
		for {
			message, done := cr.step()
			if done {
				finished = true
				ended(cr.end)
				return
			}
			if message {
				return
			}
		}
	})
	if err != nil {
		t.Fatal(err)
	}
}

// chaosReadEnd is what a reader received, and how its reads ended.
type chaosReadEnd struct {
	err         error
	received    map[[2]int]bool // writer, sequence number
	lossAllowed bool            // a read cut mid-message skipped one
}

// chaosPair is one way of making a connected server and client, whose
// keepalive pings every pingInterval (none if 0).
type chaosPair struct {
	name     string
	takeover bool
	tls      bool
	make     func(t *testing.T, pingInterval time.Duration) (server, client *Conn)
}

func chaosPairs() []chaosPair {
	tcp := func(mode CompressionMode) func(*testing.T, time.Duration) (*Conn, *Conn) {
		return func(t *testing.T, pingInterval time.Duration) (*Conn, *Conn) {
			cfg := connConfig{pingInterval: pingInterval, pingTimeout: 10 * time.Second}
			if mode != CompressionDisabled {
				cfg.deflate = &deflateParams{
					serverNoContextTakeover: mode == CompressionNoContextTakeover,
					clientNoContextTakeover: mode == CompressionNoContextTakeover,
					serverMaxWindowBits:     15,
					clientMaxWindowBits:     15,
				}
				cfg.compression = &CompressionOptions{Mode: mode}
			}
			return connPairConfig(t, cfg, cfg)
		}
	}
	return []chaosPair{
		{name: "plain", make: tcp(CompressionDisabled)},
		{name: "deflate", make: tcp(CompressionNoContextTakeover)},
		{name: "deflate-takeover", takeover: true, make: tcp(CompressionContextTakeover)},
		{name: "tls", tls: true, make: chaosTLSPair},
	}
}

// chaosTLSPair is a server and a client joined by TLS over loopback TCP.
func chaosTLSPair(t *testing.T, pingInterval time.Duration) (server, client *Conn) {
	t.Helper()
	a, b := loopback(t)
	ours, peer := tlsPair(t, a, b)
	server = newConn(ours, nil, connConfig{isServer: true, pingInterval: pingInterval, pingTimeout: 10 * time.Second})
	client = newConn(peer, nil, connConfig{pingInterval: pingInterval, pingTimeout: 10 * time.Second})
	t.Cleanup(func() {
		server.CloseNow()
		client.CloseNow()
	})
	return server, client
}

// TestConcurrencyContractChaos runs seeded chaos on one connection per
// seed, for each kind of connection; see the top of this file.
func TestConcurrencyContractChaos(t *testing.T) {
	if testing.Short() {
		t.Skip("chaos is skipped by -short")
	}
	seeds := []uint64{1, 2, 3, 4, 5, 6}
	if s := os.Getenv("WS13_CHAOS_SEEDS"); s != "" {
		n, _ := strconv.Atoi(s)
		base := uint64(time.Now().UnixNano())
		seeds = seeds[:0]
		for i := 0; i < n; i++ {
			seeds = append(seeds, base+uint64(i))
		}
	}
	if s := os.Getenv("WS13_CHAOS_SEED"); s != "" {
		seed, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		seeds = []uint64{seed}
	}
	for _, pair := range chaosPairs() {
		for _, seed := range seeds {
			t.Run(fmt.Sprintf("%s/seed=%d", pair.name, seed), func(t *testing.T) {
				runChaos(t, pair, seed)
			})
		}
	}
}

func runChaos(t *testing.T, pair chaosPair, seed uint64) {
	checkLeaks(t)
	rng := rand.New(rand.NewPCG(seed, 0xc4a05))
	var pingInterval time.Duration
	if rng.IntN(3) == 0 {
		pingInterval = time.Duration(1+rng.IntN(10)) * time.Millisecond
	}
	server, client := pair.make(t, pingInterval)
	ctx, cancel := context.WithTimeout(context.Background(), chaosRunTimeout)
	defer cancel()
	run := &chaosRun{t: t, seed: seed, ctx: ctx, cuts: rng.IntN(3) == 0}
	sides := [2]*chaosSide{
		{name: "server", c: server, tryWrites: !pair.tls},
		{name: "client", c: client, tryWrites: !pair.tls},
	}
	const maxMessage = splitFrameSize + 256<<10
	if rng.IntN(2) == 0 {
		// Small socket buffers: writes block, TryWritePrepared leaves the
		// rest of its frames to the Conn's goroutine, and pings and closes
		// wait behind data.
		for _, c := range []*Conn{server, client} {
			nc := c.NetConn()
			if tc, ok := nc.(*tls.Conn); ok {
				nc = tc.NetConn()
			}
			if tcp, ok := nc.(*net.TCPConn); ok {
				tcp.SetWriteBuffer(4 << 10)
				tcp.SetReadBuffer(64 << 10)
			}
		}
	}

	// oneWay: side 0 only writes (CloseRead reads for it), side 1 only
	// reads; otherwise both write and both read.
	oneWay := rng.IntN(3) == 0
	if rng.IntN(2) == 0 {
		sides[0], sides[1] = sides[1], sides[0]
	}
	sides[0].closeReadOK = oneWay
	// polled: side 1's reader is a Poller's handler.
	polled := rng.IntN(4) == 0
	for i, s := range sides {
		if i == 1 && oneWay {
			break
		}
		for range 2 + rng.IntN(3) {
			s.writers = append(s.writers, &chaosWriterLog{})
		}
	}
	t.Logf("seed %d: %s and %s writers, one way %v, keepalive every %v, short contexts %v, %s read by a Poller %v", seed, sides[0].name, sides[1].name, oneWay, pingInterval, run.cuts, sides[1].name, polled)

	var wg sync.WaitGroup
	var writers sync.WaitGroup
	readEnds := make([]chaosReadEnd, 2)
	for i, s := range sides {
		for g := range s.writers {
			wrng := rand.New(rand.NewPCG(seed, uint64(i*100+g)))
			ops := 5 + wrng.IntN(40)
			wg.Add(1)
			writers.Add(1)
			go func() {
				defer wg.Done()
				defer writers.Done()
				run.write(s, g, wrng, ops, maxMessage, false)
			}()
		}
		if i == 1 && oneWay {
			wg.Add(1)
			go func() {
				defer wg.Done()
				run.write(s, 0, rand.New(rand.NewPCG(seed, 198)), 20, maxMessage, true)
			}()
		}
		if i == 0 && oneWay {
			run.closeRead(s)
			continue
		}
		reader := newChaosReader(run, s, sides[1-i], rand.New(rand.NewPCG(seed, uint64(i*100+99))), pair.takeover)
		wg.Add(1)
		if polled && i == 1 {
			reader.poll(t, func(end chaosReadEnd) {
				readEnds[i] = end
				wg.Done()
			})
			continue
		}
		go func() {
			defer wg.Done()
			readEnds[i] = reader.read()
		}()
	}

	// The end: Close or CloseNow, from one side or both, at a random
	// moment, or once the writers are done.
	closers := 1 + rng.IntN(2)
	closedBy := make(map[*chaosSide]bool) // side: it only closed gracefully
	var closeMu sync.Mutex
	closeErrs := make(map[*chaosSide][]error) // what each Close returned
	for k := range closers {
		s := sides[rng.IntN(2)]
		abrupt := rng.IntN(3) == 0
		closedBy[s] = !abrupt && (closedBy[s] || len(closedBy) == 0)
		delay := time.Duration(rng.IntN(60)) * time.Millisecond
		afterWriters := rng.IntN(3) == 0
		wg.Add(1)
		go func() {
			defer wg.Done()
			if afterWriters {
				writers.Wait()
			} else {
				time.Sleep(delay)
			}
			var err error
			began := time.Now()
			defer func() {
				if d := time.Since(began); d > time.Second {
					t.Logf("SLOW %s close (abrupt %v) took %v", s.name, abrupt, d)
				}
			}()
			if abrupt {
				err = s.c.CloseNow()
			} else {
				err = s.c.Close(StatusCode(4000+k), "chaos")
			}
			// Both sides read throughout, so the handshake should
			// complete; but with writers on both sides blocked mid-frame,
			// each reader can be stuck answering a ping behind its own
			// writer until the close timeout (a known limit, not checked
			// here), and Close then says the peer sent no close frame.
			if err != nil && !chaosClosed(err) && err.Error() != "websocket: close handshake not completed: the peer sent no close frame in time" {
				run.fail("%s: Close: unexpected error %v", s.name, err)
			}
			if !abrupt {
				closeMu.Lock()
				closeErrs[s] = append(closeErrs[s], err)
				closeMu.Unlock()
			}
			select {
			case <-s.c.Done():
			default:
				run.fail("%s: Done is not closed after Close", s.name)
			}
		}()
	}

	finished := make(chan struct{})
	go func() {
		wg.Wait()
		close(finished)
	}()
	select {
	case <-finished:
	case <-time.After(chaosRunTimeout + 5*time.Second):
		buf := make([]byte, 1<<20)
		t.Fatalf("seed %d: a call never returned:\n%s", seed, buf[:runtime.Stack(buf, true)])
	}
	// Every close was a Close whose handshake completed: each reader met a
	// close frame, or waited while Close read it, and returns it as a
	// *CloseError (Close's doc), not a bare ErrClosed.
	handshakes := 0
	for _, errs := range closeErrs {
		for _, err := range errs {
			if err == nil {
				handshakes++
			}
		}
	}
	if handshakes == closers {
		for i, s := range sides {
			var ce *CloseError
			if end := readEnds[i]; end.received != nil && !errors.As(end.err, &ce) {
				run.fail("%s reader: ended with %v after a completed closing handshake, want a *CloseError", s.name, end.err)
			}
		}
	}
	for s, errs := range closeErrs {
		// "calls after the first return what the first returned"
		for _, err := range errs[1:] {
			if err != errs[0] {
				run.fail("%s: two calls of Close returned %v and %v", s.name, errs[0], err)
			}
		}
	}
	server.CloseNow()
	client.CloseNow()
	run.hooks.Wait() // bounded by the run's context
	for _, ctx := range run.closeReads {
		// Its goroutine is the Conn's, gone once CloseNow returned.
		if ctx.Err() == nil {
			run.fail("the context CloseRead returned is not done after CloseNow returned")
		}
	}
	for i, s := range sides {
		written, calls := 0, 0
		for _, l := range s.writers {
			calls += len(l.fate)
			for _, f := range l.fate {
				if f == chaosWritten {
					written++
				}
			}
		}
		t.Logf("%s: %d of %d messages written; it received %d; its reads ended with %v", s.name, written, calls, len(readEnds[i].received), readEnds[i].err)
	}
	// Only one side closed, with Close, and the peer's reader read its
	// close frame: the peer read every message before it, so every one
	// whose write returned nil.
	if len(closedBy) == 1 {
		for i, s := range sides {
			end := readEnds[1-i]
			var ce *CloseError
			if !closedBy[s] || end.received == nil || end.lossAllowed || !errors.As(end.err, &ce) || ce.Code < 4000 || ce.Code > 4001 {
				continue
			}
			t.Logf("every message %s wrote must have reached the peer's reader", s.name)
			for g, l := range s.writers {
				for seq, f := range l.fate {
					if f == chaosWritten && !end.received[[2]int{g, seq}] {
						run.fail("%s writer %d's message %d, written (%s) before %s's close frame, never reached the peer's reader", s.name, g, seq, l.how[seq], s.name)
					}
				}
			}
		}
	}
	for _, f := range run.failures {
		t.Errorf("seed %d (replay: WS13_CHAOS_SEED=%d -run 'TestConcurrencyContractChaos/%s/'): %s", seed, seed, pair.name, f)
	}
}
