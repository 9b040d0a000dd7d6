// Poller: many connections, a goroutine only for those with something to
// read.
//
// The usual way to serve a Conn is a goroutine that loops over Read. That
// is simple and fast, but a goroutine blocked in Read keeps its stack (2 KiB
// at least, more once the runtime has grown it), and on a server holding
// tens of thousands of quiet connections the stacks become most of the
// memory. A Poller turns this around: it asks the operating system which
// connections have data (epoll on Linux), and only then gives one a
// goroutine, which runs the handler and ends. A quiet connection costs its
// Conn and its socket, and nothing else (readbuf.go already holds no buffer
// for it; keepalive pings from a timer, with a goroutine only while a ping
// is out).
//
// Control frames need no handler: a ping that arrives on a quiet
// connection is answered, and a pong recorded, by the Poller itself, which
// calls the handler only when a data message has begun to arrive or the
// connection has ended.
//
// Connections the Poller cannot wait for without a goroutine (TLS, a
// client's HTTP/2 stream, anything but a TCP or Unix socket, and every
// connection outside Linux) are served by a goroutine each that loops the
// same way, so a handler sees no difference. A server's HTTP/2 stream
// cannot be watched at all (ErrPollerHTTP2).

package websocket

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
)

// ErrPollerClosed is returned by Poller.Add after Poller.Close.
var ErrPollerClosed = errors.New("websocket: poller closed")

// ErrPollerHTTP2 is returned by Poller.Add for a Conn that Accept made from
// an HTTP/2 request (RFC 8441): it lives on the request's stream, so the
// handler that accepted it must keep running, and may as well read it.
var ErrPollerHTTP2 = errors.New("websocket: a Poller cannot watch a Conn accepted over HTTP/2: its handler must keep running, so read it there")

// errHandlerDidNotRead is the cause a connection is failed with when a
// Poller's handler returned without reading the message it was called for:
// it read nothing, or its read ended (its context was done) before the
// message's first frame had fully arrived.
var errHandlerDidNotRead = errors.New("websocket: Poller handler returned before the message it was called for was read (no read, or a read whose context ended first)")

// A Poller calls a handler for each message that arrives on the
// connections it watches, without a goroutine per connection while they are
// quiet. The zero value is not usable; make one with NewPoller.
type Poller struct {
	sys *systemPoller // nil where the system offers none (poll_linux.go)

	mu        sync.Mutex
	closed    bool                    // guarded by mu
	closeDone chan struct{}           // closed once Close has closed everything and every goroutine ended
	watches   map[*pollWatch]struct{} // guarded by mu
	byFD      map[int32]*pollWatch    // watches waiting through sys; guarded by mu
	gen       uint32                  // tells a reused descriptor from its predecessor; guarded by mu
	running   sync.WaitGroup          // the poll loop and every serving goroutine
}

// pollWatch is one connection watched by a Poller.
type pollWatch struct {
	p       *Poller
	c       *Conn
	handler func(*Conn)
	fd      int32  // the socket, when sys waits for it
	gen     uint32 // matched against events, so that a stale one is ignored
	viaSys  bool   // sys waits for the socket; otherwise a goroutine does

	// For sys.ctl on the socket, inside its RawConn.Control so that the
	// descriptor cannot be closed meanwhile; made once, so that re-arming
	// allocates nothing. Guarded by p.mu.
	ctlOp   int
	ctlErr  error
	ctlFunc func(fd uintptr)
	event   sysEvent
	// serving is set while a goroutine serves the connection: at most one
	// does, and readiness reported meanwhile is left to that goroutine.
	serving atomic.Bool
}

// NewPoller starts a Poller. On Linux it holds one epoll instance and one
// goroutine, which waits in the runtime's own poller and so takes no thread.
func NewPoller() (*Poller, error) {
	p := &Poller{
		closeDone: make(chan struct{}),
		watches:   make(map[*pollWatch]struct{}),
		byFD:      make(map[int32]*pollWatch),
	}
	sys, err := newSystemPoller()
	if err != nil {
		return nil, err
	}
	if sys != nil {
		p.sys = sys
		p.running.Add(1)
		go p.loop()
	}
	return p, nil
}

// Add hands c to the Poller: from now on handler(c) is called, on a
// goroutine of its own, whenever a data message has begun to arrive on c,
// and once more when c's read side has ended, whether the peer ended it or
// our side did (Close, CloseNow, keepalive, Poller.Close): a read then
// returns the reason. It is told once: a handler whose own read returned the
// end (say, the end came while it ran) is not called again for it, and one
// that ran when the end came, after its last read, is. The handler must read
// before it returns, normally one message, with Read, AppendMessage or
// Reader; it may write, and it may take as long as it needs: the next call
// for the same connection waits for it. Meanwhile nothing reads c, so pongs
// wait too: with keepalive (PingInterval), a handler that runs longer than
// the ping timeout may get its connection dropped. Nothing else may read c
// while it is watched. A handler that returns without reading the message it
// was called for fails the connection with 1011, rather than be called for
// it again and again, and is then called once more for that end, as for any
// other; one that reads part of it (with Reader) leaves the rest to be
// skipped, as its next read would, and is called next for the next message.
// A handler's read whose context ends before the message has begun counts
// as no read. A panic in the handler is not recovered: as on any goroutine,
// it ends the program.
//
// c stays watched until it is closed, by either side, for any reason. A Conn
// that Accept made from an HTTP/2 request cannot be watched
// (ErrPollerHTTP2). A Conn is watched by one Poller at a time: Add refuses
// one watched already, by this Poller or another, and that watch goes on.
// If Add returns an error, this call watches nothing and c is as it was:
// unless it was watched already, nothing watches it, and it is the caller's
// to close.
func (p *Poller) Add(c *Conn, handler func(*Conn)) error {
	if handler == nil {
		return errors.New("websocket: Poller.Add with a nil handler")
	}
	if _, onStream := c.netConn.(*h2Stream); onStream && c.isServer {
		return ErrPollerHTTP2
	}
	if c.isNetClosed() {
		// Before the check below, which a Conn watched until it closed
		// fails too: the close is the reason to give.
		return c.closeCause
	}
	w := &pollWatch{p: p, c: c, handler: handler}
	if !c.polled.CompareAndSwap(nil, w) {
		return errors.New("websocket: Conn is already watched by a Poller")
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		c.polled.Store(nil)
		return ErrPollerClosed
	}
	if c.isNetClosed() {
		c.polled.Store(nil)
		return c.closeCause
	}
	p.watches[w] = struct{}{}
	if p.sys != nil && c.br.raw != nil {
		p.gen++
		w.gen = p.gen
		w.ctlFunc = w.ctlSocket
		if err := w.ctlLocked(ctlAdd); err != nil {
			delete(p.watches, w)
			c.polled.Store(nil)
			return err
		}
		w.viaSys = true
		p.byFD[w.fd] = w
	}
	// Serve once right away: bytes may already be buffered (a client's
	// first frames often arrive with its handshake), and without the system
	// poller this goroutine is the one that waits.
	w.serving.Store(true)
	p.running.Add(1)
	go w.serve()
	return nil
}

// loop waits for sockets with data and serves them, each on a goroutine of
// its own. The last of each batch it serves itself, after handing the
// waiting to a new goroutine: that handler then starts at once, instead of
// after this goroutine has asked the system poller again and parked.
func (p *Poller) loop() {
	defer p.running.Done()
	for {
		events, err := p.sys.next()
		if err != nil {
			return // closed
		}
		var inline *pollWatch
		for _, ev := range events {
			w := p.claim(ev)
			if w == nil {
				continue
			}
			if inline != nil {
				go inline.serve()
			}
			inline = w
		}
		if inline != nil {
			p.running.Add(1)
			go p.loop()
			inline.serve()
			return
		}
	}
}

// claim returns the watch of a socket that has data, to be served, or nil.
func (p *Poller) claim(ev sysEvent) *pollWatch {
	fd, gen := eventSocket(ev)
	p.mu.Lock()
	defer p.mu.Unlock()
	w := p.byFD[fd]
	if p.closed || w == nil || w.gen != gen || !w.serving.CompareAndSwap(false, true) {
		// Stale, or already being served: the socket is re-armed when
		// that goroutine is done, and reports again if data is left.
		return nil
	}
	p.running.Add(1)
	return w
}

// serve reads for one connection until it has nothing more to read, calling
// the handler for each message, then waits again: in the system poller, or
// right here for a connection that has none.
func (w *pollWatch) serve() {
	defer w.p.running.Done()
	c := w.c
	for {
		if c.lock(context.Background(), &c.readLock) != nil {
			// Closed while another goroutine held the read lock (Close,
			// waiting for the peer's close frame): the handler is told.
			w.end()
			return
		}
		c.rd.done = nil // no context: what waits here is bounded by the close timeout
		ready := c.pollLocked(!w.viaSys)
		generation, ended := c.rd.generation, c.rd.err != nil
		c.readLock.unlock()
		if !ready {
			w.wait()
			return
		}
		w.handler(c)
		if ended || c.endReturned.Load() {
			w.forget()
			return
		}
		// If the connection was closed while the handler ran, after its
		// last read, the handler has not heard of the end: the loop goes
		// on, and messages already buffered are delivered, then the end
		// (through pollLocked, or wait when the socket cannot be re-armed).
		if c.lock(context.Background(), &c.readLock) != nil {
			// Closed while another goroutine held the read lock (Close
			// reading the peer's close frame) after the handler returned.
			w.end()
			return
		}
		if c.rd.generation == generation && !c.rd.inMessage && c.rd.err == nil {
			// The handler did not read the message it was called for:
			// fail the connection, rather than call it for that message
			// again and again, and (next time round) call it for the end,
			// as for any end our side causes. If the connection was
			// closed meanwhile, that close is the end it is told.
			var err error = &ProtocolError{Code: StatusInternalError, Err: errHandlerDidNotRead}
			if c.isNetClosed() {
				err = c.closeCause
			}
			c.rd.done = nil
			c.readFailedLocked(err)
		} else if c.rd.inMessage && c.rd.err == nil {
			// The handler read part of a message and returned: the rest
			// is skipped here, as its next read would, so that it is
			// called next for a new message, not for this one again.
			// Like a handler's read, this waits for the rest to arrive.
			c.rd.done = nil
			if err := c.skipMessageLocked(); err != nil {
				c.readFailedLocked(err)
			}
		}
		// With nothing buffered, the socket is handed straight back to
		// sys: it reports at once if data is waiting, which saves asking
		// the socket here, usually in vain, after every message.
		idle := w.viaSys && c.br.Buffered() == 0 && !c.rd.inMessage && c.rd.err == nil
		c.readLock.unlock()
		if idle {
			w.wait()
			return
		}
	}
}

// end calls the handler once more for a connection that is closed, so that
// it learns of the end from its read, then stops watching.
//
// The connection may still be closing on another goroutine: stopPolling
// runs before the socket is closed. closeNet waits for that close to be
// done, so that the handler's read cannot take a message the peer sent
// meanwhile, return it, and leave the end untold.
func (w *pollWatch) end() {
	w.c.closeNet()
	w.handler(w.c)
	w.forget()
}

// wait hands the connection back to sys until it has data again.
//
// It also settles who calls the handler for an end from our side: this
// goroutine, or stopPolling, which does only if it finds the connection
// unserved. Both claim serving with a compare-and-swap, so exactly one does.
func (w *pollWatch) wait() {
	w.serving.Store(false)
	err := w.rearm()
	switch {
	case err == nil:
		// sys reports the socket again; if the connection closes,
		// stopPolling finds it unserved.
		return
	case err == ErrPollerClosed && !w.c.isNetClosed():
		// Poller.Close closes the connection next, and stopPolling then
		// finds it unserved.
		return
	}
	// The connection is closing, and stopPolling may have found this
	// goroutine still serving it (or sys failed, and the connection
	// cannot be watched: end closes it).
	if w.serving.CompareAndSwap(false, true) {
		w.end()
	}
}

// rearm lets the system poller report the socket again.
func (w *pollWatch) rearm() error {
	w.p.mu.Lock()
	defer w.p.mu.Unlock()
	if w.p.closed {
		return ErrPollerClosed
	}
	return w.ctlLocked(ctlRearm)
}

// ctlLocked adds, re-arms or removes the socket in sys. The caller holds
// p.mu and has checked that the Poller is open.
func (w *pollWatch) ctlLocked(op int) error {
	w.ctlOp, w.ctlErr = op, nil
	if err := w.c.br.raw.Control(w.ctlFunc); err != nil {
		return err // the socket is closed
	}
	return w.ctlErr
}

func (w *pollWatch) ctlSocket(fd uintptr) {
	w.fd = int32(fd)
	w.ctlErr = w.p.sys.ctl(w.ctlOp, w.fd, w.gen, &w.event)
}

// forget stops watching, and reports whether the connection was watched
// until now. The Conn calls it as it closes (stopPolling), before its socket
// is closed, so that the descriptor is removed from the system poller while
// it still names this socket.
func (w *pollWatch) forget() (watched bool) {
	w.p.mu.Lock()
	defer w.p.mu.Unlock()
	return w.forgetLocked()
}

// forgetLocked is forget for a caller that holds p.mu.
func (w *pollWatch) forgetLocked() (watched bool) {
	p := w.p
	if _, ok := p.watches[w]; !ok {
		return false
	}
	delete(p.watches, w)
	if w.viaSys {
		if p.byFD[w.fd] == w {
			delete(p.byFD, w.fd)
		}
		if !p.closed { // closing the epoll instance removed everything
			w.ctlLocked(ctlRemove)
		}
	}
	return true
}

// stopPolling is called by closeNetWith before the socket is closed. A
// connection closed from our side while quiet (Close, CloseNow, keepalive,
// Poller.Close) is never reported by sys, and has no goroutine to notice:
// one is started to call the handler for the end, as for a close by the
// peer. If a goroutine serves the connection, it is left to it.
func (c *Conn) stopPolling() {
	w := c.polled.Load()
	if w == nil {
		return
	}
	p := w.p
	p.mu.Lock()
	start := w.forgetLocked() && w.viaSys && w.serving.CompareAndSwap(false, true)
	if start {
		// Counted before mu is let go: a Poller.Close that takes mu next
		// no longer finds the connection to close and wait for, but it
		// waits for running, so it must find this goroutine counted there.
		p.running.Add(1)
	}
	p.mu.Unlock()
	if !start {
		return
	}
	go func() {
		defer w.p.running.Done()
		w.end()
	}()
}

// Close stops the Poller. Every connection it still watches is closed with
// 1001 (going away), concurrently, each within its close timeout; Close
// returns once they are closed and every handler has returned, so a
// handler must not call it: it would wait for itself. Calls after the
// first wait for the first to be done, then return nil.
func (p *Poller) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		<-p.closeDone
		return nil
	}
	p.closed = true
	conns := make([]*Conn, 0, len(p.watches))
	for w := range p.watches {
		conns = append(conns, w.c)
	}
	if p.sys != nil {
		// Under mu, so that no rearm or forget uses the descriptor after
		// it is closed, when its number may already name something else.
		p.sys.close() // ends the poll loop
	}
	p.mu.Unlock()
	var closing sync.WaitGroup
	for _, c := range conns {
		closing.Go(func() { c.Close(StatusGoingAway, "") })
	}
	closing.Wait()
	p.running.Wait()
	close(p.closeDone)
	return nil
}

// pollLocked handles the control frames that have arrived between messages
// and reports whether a reader has something to do: the first frame of a
// data message has begun to arrive, the message in progress is unfinished,
// or the read side has ended. Unless wait is set it does not wait for the
// socket, and reports false once it has nothing more.
func (c *Conn) pollLocked(wait bool) bool {
	for {
		if c.rd.err != nil || c.rd.inMessage {
			return true
		}
		if b := c.br.buffered(); len(b) >= 2 {
			if !Opcode(b[0] & 0x0f).IsControl() {
				return true
			}
			// A control frame is handled only once it has fully arrived,
			// so that handling it never waits. A length over 125 is an
			// error the reader reports.
			n, length := headerLen(b[0], b[1]), int(b[1]&0x7f)
			if length > 125 {
				return true
			}
			if len(b) >= n+length {
				if _, err := c.readFrameLocked(); err != nil {
					c.readFailedLocked(err)
				}
				continue
			}
		}
		if c.br.err != nil {
			return true // the end of the stream, or a broken one: the reader's to report
		}
		if !c.br.readMore(wait) {
			return false
		}
	}
}
