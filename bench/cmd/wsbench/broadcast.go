package main

// The broadcast figure: one server sends each message to every one of many
// connections, the way each library offers for it, and the common client
// reads them. A chat room, a feed, a game's state: the server's cost here is
// a write per connection per message, and what a library can save is the
// work of framing (and compressing) the same message again for each, and,
// where several messages wait for one connection, writing them one by one.
//
// The server sends a burst of messages and, after each, waits until every
// client has read every message of it, so that no library is measured
// filling socket buffers or queues that the next burst would find full. Two
// figures: one message at a time (each waits for the one before to reach
// everyone: the cost of a write per connection, nothing to gather), and
// bursts of broadcastBurst (a chat room's or a feed's busy moments, where a
// writer can find several messages waiting). Each is messages delivered per
// second: connections × messages.

import (
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	coder "github.com/coder/websocket"
	"github.com/gobwas/ws"
	gorilla "github.com/gorilla/websocket"
	"github.com/lxzan/gws"
	ws13 "github.com/ws13/websocket"
	"github.com/ws13/websocket/hub"
)

// broadcastBurst is how many messages the server sends before it waits for
// the clients in the second figure: no more than a hub's default queue
// holds (hub.DefaultQueueSize).
const broadcastBurst = 16

// broadcastBursts are the figures' burst sizes.
var broadcastBursts = []int{1, broadcastBurst}

// broadcastWait bounds the wait for one burst to reach every client.
const broadcastWait = 30 * time.Second

// ws13LoopLib is ws13 broadcasting as the peers that have no broadcast of
// their own do: one connection after the other, from the sender's
// goroutine, with one PreparedMessage. ws13 itself broadcasts through its
// hub package, which gives each connection a queue, written by one
// flusher goroutine that writes only what each socket takes at once, and
// by a writer goroutine of the connection's own while its socket is full,
// so that a peer that stops reading holds up nobody (hub/hub.go).
var ws13LoopLib = &library{
	name:     "ws13-loop",
	utf8:     ws13Lib.utf8,
	settings: "as ws13, but a broadcast writes one PreparedMessage to each connection in turn from the sender's goroutine, instead of through ws13's hub package; in the echo figures it is ws13",
	serve:    ws13Lib.serve,
	dial:     ws13Lib.dial,
}

// broadcastLibs are the libraries startFanout knows how to broadcast with.
var broadcastLibs = []*library{ws13Lib, ws13LoopLib, gorillaLib, coderLib, gobwasLib, gwsLib}

// broadcastSettings says how each library sends one message to many, for
// the report.
var broadcastSettings = []string{
	"**ws13**: its hub package: hub.Broadcast queues one PreparedMessage for each member and wakes the hub's flusher goroutine, which writes each member's waiting messages with TryWritePrepared (only what the socket takes at once), in one system call while they fit in 16 KiB; a member whose socket is full gets a writer goroutine of its own until its queue is empty (QueueSize and WriteTimeout at their defaults)",
	"**ws13-loop**: one PreparedMessage, written with WritePrepared to each connection in turn",
	"**gorilla**: one PreparedMessage, written with WritePreparedMessage to each connection in turn",
	"**coder**: Write to each connection in turn (coder has nothing to prepare a message once)",
	"**gobwas**: the frame compiled once (ws.CompileFrame), written to each connection in turn",
	"**gws**: one Broadcaster, whose Broadcast queues the message on each connection's own write queue",
	"**tcp**: the frame's bytes written to each connection in turn, after a hand-written handshake",
}

// connSet is the connections a broadcast server has accepted.
type connSet struct {
	mu    sync.Mutex
	conns []msgConn
}

func (s *connSet) add(c msgConn) {
	s.mu.Lock()
	s.conns = append(s.conns, c)
	s.mu.Unlock()
}

func (s *connSet) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

// each calls f for every connection, stopping at the first error.
func (s *connSet) each(f func(msgConn) error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.conns {
		if err := f(c); err != nil {
			return err
		}
	}
	return nil
}

// readUntilClosed is the reader every server connection keeps, as each
// library asks, so that a close is seen; the clients here send nothing.
func readUntilClosed(c msgConn) {
	var buf []byte
	for {
		msg, err := c.Read(buf)
		if err != nil {
			c.Close()
			return
		}
		buf = msg[:0]
	}
}

// fanout is a broadcast server.
type fanout struct {
	// send sends msg to every connection accepted so far. It may return
	// before the bytes are written (where a library queues them); the
	// clients' reads tell when they arrived.
	send   func(msg []byte) error
	joined func() int // connections accepted and ready to be sent to
	stop   func()
}

// startFanout serves t's broadcast on ln.
func startFanout(t target, ln net.Listener) (*fanout, error) {
	var set connSet
	if t.lib == nil {
		stop := rawServe(ln, func(nc net.Conn) {
			if _, err := rawAccept(nc); err != nil {
				nc.Close()
				return
			}
			set.add(tcpConn{nc})
			io.Copy(io.Discard, nc)
		})
		send := func(msg []byte) error {
			frame := unmaskedFrame(opBinary, msg)
			return set.each(func(c msgConn) error {
				_, err := c.(tcpConn).nc.Write(frame)
				return err
			})
		}
		return &fanout{send: send, joined: set.len, stop: stop}, nil
	}

	cfg := config{readLimit: 4 << 20}
	join := func(c msgConn) {
		set.add(c)
		readUntilClosed(c)
	}
	var send func(msg []byte) error
	stopHub := func() {}
	switch t.lib {
	case ws13Lib:
		h := hub.New(nil)
		join = func(c msgConn) {
			m, err := h.Join(c.(*ws13Conn).c)
			if err != nil {
				c.Close()
				return
			}
			defer m.Leave()
			set.add(c)
			readUntilClosed(c)
		}
		send = func(msg []byte) error { return h.Broadcast(bg, ws13.MessageBinary, msg) }
		stopHub = h.Close
	case ws13LoopLib:
		send = func(msg []byte) error {
			pm, err := ws13.NewPreparedMessage(ws13.MessageBinary, msg)
			if err != nil {
				return err
			}
			return set.each(func(c msgConn) error { return c.(*ws13Conn).c.WritePrepared(bg, pm) })
		}
	case gorillaLib:
		send = func(msg []byte) error {
			pm, err := gorilla.NewPreparedMessage(gorilla.BinaryMessage, msg)
			if err != nil {
				return err
			}
			return set.each(func(c msgConn) error { return c.(*gorillaConn).c.WritePreparedMessage(pm) })
		}
	case coderLib:
		send = func(msg []byte) error {
			return set.each(func(c msgConn) error { return c.(*coderConn).c.Write(bg, coder.MessageBinary, msg) })
		}
	case gobwasLib:
		// gobwasConn's reader writes only to answer a control frame,
		// and the clients here send none, so the sender's writes
		// need no lock against it.
		send = func(msg []byte) error {
			frame, err := ws.CompileFrame(ws.NewBinaryFrame(msg))
			if err != nil {
				return err
			}
			return set.each(func(c msgConn) error {
				_, err := c.(*gobwasConn).nc.Write(frame)
				return err
			})
		}
	case gwsLib:
		send = func(msg []byte) error {
			b := gws.NewBroadcaster(gws.OpcodeBinary, msg)
			defer b.Close()
			return set.each(func(c msgConn) error { return b.Broadcast(c.(*gwsConn).c) })
		}
	default:
		return nil, fmt.Errorf("%s has no broadcast", t.lib.name)
	}
	stop := t.lib.serve(ln, cfg, join)
	return &fanout{send: send, joined: set.len, stop: func() { stop(); stopHub() }}, nil
}

// tcpConn is a plain TCP connection in a connSet.
type tcpConn struct{ nc net.Conn }

func (c tcpConn) Write(p []byte) error        { _, err := c.nc.Write(p); return err }
func (c tcpConn) Read([]byte) ([]byte, error) { return nil, errors.New("tcpConn: not read") }
func (c tcpConn) Close() error                { return c.nc.Close() }

// broadcastSession is one target's broadcast server with its clients
// connected, each read on a goroutine of its own, ready to be measured in
// turns with the others.
type broadcastSession struct {
	name    string // the figure and the library, for the watchdog
	size    int
	msg     []byte
	server  *fanout
	burst   int // messages sent at once by count
	clients []*rawClient
	readers sync.WaitGroup

	received atomic.Int64  // messages read by all the clients
	want     atomic.Int64  // what received will be once the burst under way has arrived
	arrived  chan struct{} // received reached want
	failed   chan error    // a client's read failed
}

// openBroadcast starts t's broadcast server, connects conns common
// clients, waits until the server has them all, and sends one message to
// check and warm up.
func openBroadcast(t target, conns, size int) (*broadcastSession, error) {
	ln := listen()
	server, err := startFanout(t, ln)
	if err != nil {
		ln.Close()
		return nil, err
	}
	s := &broadcastSession{size: size, msg: payload(size), server: server, burst: broadcastBurst,
		arrived: make(chan struct{}, 1), failed: make(chan error, 1)}
	addr := ln.Addr().String()
	clients, firstErr := connectAll(conns, func() (*rawClient, error) { return dialRaw(addr, "") })
	s.clients = clients
	// A client's handshake is done before the server has taken the
	// connection in: wait for the server to have them all.
	for deadline := time.Now().Add(broadcastWait); firstErr == nil && server.joined() < conns; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			firstErr = fmt.Errorf("the server took %d of %d connections in %v", server.joined(), conns, broadcastWait)
		}
	}
	for _, c := range s.clients {
		s.readers.Go(func() { s.read(c) })
	}
	if firstErr == nil {
		firstErr = s.deliver(1)
	}
	if firstErr != nil {
		s.close()
		return nil, firstErr
	}
	return s, nil
}

// read reads c's messages, checking their size, until the connection ends.
func (s *broadcastSession) read(c *rawClient) {
	for {
		n, err := c.readFrame()
		if err == nil && n != s.size {
			err = fmt.Errorf("a broadcast of %d bytes arrived as %d", s.size, n)
		}
		if err != nil {
			select {
			case s.failed <- err:
			default:
			}
			return
		}
		if s.received.Add(1) == s.want.Load() {
			s.arrived <- struct{}{}
		}
	}
}

// deliver sends n messages and waits until every client has read them all.
func (s *broadcastSession) deliver(n int) error {
	// want is raised before the first message goes out, so a client
	// cannot reach it early, and exactly one client's read reaches it.
	s.want.Add(int64(n * len(s.clients)))
	for range n {
		if err := s.server.send(s.msg); err != nil {
			return err
		}
	}
	t := time.NewTimer(broadcastWait)
	defer t.Stop()
	select {
	case <-s.arrived:
		return nil
	case err := <-s.failed:
		return err
	case <-t.C:
		return fmt.Errorf("%d of %d messages arrived in %v", s.received.Load(), s.want.Load(), broadcastWait)
	}
}

func (s *broadcastSession) label() string { return s.name }

// count sends bursts for about d and returns the messages delivered.
func (s *broadcastSession) count(d time.Duration) (int, time.Duration, error) {
	start := time.Now()
	n := 0
	for n == 0 || time.Since(start) < d {
		if err := s.deliver(s.burst); err != nil {
			return n, time.Since(start), err
		}
		n += s.burst * len(s.clients)
		progress()
	}
	return n, time.Since(start), nil
}

// close closes the clients, waits for their readers, and stops the server.
func (s *broadcastSession) close() {
	for _, c := range s.clients {
		c.Close()
	}
	s.readers.Wait()
	s.server.stop()
}

// measureBroadcast opens a broadcast session of conns clients with each
// target and, for each burst size, measures them in turns and records each
// one's figure.
func measureBroadcast(figure string, targets []target, conns, size int, bursts []int, d, turn time.Duration, record func(burst int, name string, perSecond float64, err error)) {
	var sessions []*broadcastSession
	var names []string
	for _, t := range targets {
		watching(figure + ", " + t.name() + ", connecting")
		s, err := openBroadcast(t, conns, size)
		if err != nil {
			for _, burst := range bursts {
				record(burst, t.name(), 0, err)
			}
			continue
		}
		defer s.close()
		sessions = append(sessions, s)
		names = append(names, t.name())
	}
	for _, burst := range bursts {
		for i, s := range sessions {
			s.burst = burst
			s.name = fmt.Sprintf("%s, bursts of %d, %s", figure, burst, names[i])
		}
		rates, errs := measureInTurns(sessions, d, turn)
		for i, name := range names {
			record(burst, name, rates[i], errs[i])
		}
		// A session that failed is not measured again.
		kept := sessions[:0]
		keptNames := names[:0]
		for i, s := range sessions {
			if errs[i] == nil {
				kept, keptNames = append(kept, s), append(keptNames, names[i])
			}
		}
		sessions, names = kept, keptNames
	}
}
