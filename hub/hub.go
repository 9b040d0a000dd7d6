// Package hub sends each message to many WebSocket connections at once,
// without letting one slow connection hold up the others.
//
// # Design
//
// Every member of a Hub has a bounded queue of outgoing messages.
// Broadcast only puts the message on each member's queue: it never waits
// on the network, so a peer that stops reading cannot stall the sender or
// anyone else. The messages are written, in order, as one
// websocket.PreparedMessage each: a message is compressed once for all
// the members that share compression parameters without context
// takeover, instead of once per member, and the messages found waiting
// for a member go out together, in one system call while they fit in a
// write buffer, instead of one each.
//
// One goroutine of the hub, the flusher, runs while messages wait. It
// goes through the members with messages and writes them with the Conn's
// TryWritePrepared, which writes only what the socket takes at once: a
// member that keeps up, nearly every member nearly always, is written to
// as a loop over the connections would, with no goroutine of its own.
// (Starting one per member for each message made a broadcast a quarter
// slower.) It tries a member a few times in a row at most, so that one to
// which more keeps coming waits for its next pass behind the others. A
// message larger than the Conn's 16 KiB write buffer is tried as well (on a
// server: a client masks each frame into a copy of its own): the
// Conn writes it from one frame the message keeps for all, and finishes
// on a goroutine of its own a frame the socket took only part of. A
// member whose socket is full, or whose next message cannot be tried (it
// needs the member's own compressor, with context takeover), gets a
// writer goroutine of its own, which writes with WritePrepared, waiting
// as long as WriteTimeout, until its queue is empty; then it ends, and
// the flusher has the member back. A
// member over TLS or HTTP/2, whose writes cannot be tried without waiting,
// is always written by a writer of its own: there a broadcast starts a
// goroutine per member.
//
// A member that is sent nothing holds no goroutine and no queue: most
// members of a large hub are idle most of the time, and a parked goroutine
// (its stack at least 2 KiB) would cost each of them more than its Conn
// does.
//
// A member whose queue is full has fallen too far behind. The hub could
// buffer without bound (and let one peer take the server's memory), or
// wait for it (and make everyone as slow as the slowest); it does neither:
// it removes the member and closes its connection with 1008, "policy
// violation" (see Broadcast for why that code). A peer that is alive but
// slow receives the messages in flight and then the close frame with its
// reason; a peer that reads nothing at all is cut off after WriteTimeout.
//
// Broadcast takes the hub's lock while it queues, so every member receives
// the messages in the same order. The payload is not copied: all the
// queues share one websocket.PreparedMessage of it, so a caller must not
// modify it after Broadcast.
//
// The hub only writes. Each Conn still needs a reader, the application's
// read loop or Conn.CloseRead, so that pings are answered and close frames
// seen.
//
// No goroutine outlives its member: the flusher ends when no message
// waits, a member's writer when its queue is empty, and for good when the
// member leaves the hub, is dropped, or its connection fails or is closed
// (the hub learns of that through Conn.AfterClose, so a quiet hub lets go
// too); a last writer then closes the Conn. Close closes every member and
// waits for the flusher and all the writers.
//
// # Use
//
//	h := hub.New(nil) // and h.Close() when the server shuts down
//	http.HandleFunc("/ws", func(w http.ResponseWriter, r *http.Request) {
//		c, err := websocket.Accept(w, r, nil)
//		if err != nil {
//			return
//		}
//		m, err := h.Join(c)
//		if err != nil {
//			c.Close(websocket.StatusGoingAway, "shutting down")
//			return
//		}
//		defer m.Leave() // closes c and waits for the writer
//		for {
//			typ, msg, err := c.Read(r.Context())
//			if err != nil {
//				return
//			}
//			h.Broadcast(r.Context(), typ, msg) // msg is ours: Read allocated it
//		}
//	})
package hub

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/ws13/websocket"
)

// Defaults for Options, used where a field is zero.
const (
	// DefaultQueueSize is how many messages may wait for one member: enough
	// to ride out a burst, small enough that a stalled member costs little.
	DefaultQueueSize = 64
	// DefaultWriteTimeout bounds one write to one member.
	DefaultWriteTimeout = 10 * time.Second
)

// Options configures a Hub. A nil *Options, like the zero value, means the
// defaults.
type Options struct {
	// QueueSize is how many messages may wait for a member: broadcast to
	// it and not yet written, those being written included. Broadcasting
	// to a member that has QueueSize waiting drops it. The count does not
	// depend on whether the member's writer has picked up a message yet, so
	// a burst of QueueSize messages never drops a member that was keeping
	// up. 0 (or less) means DefaultQueueSize.
	QueueSize int

	// WriteTimeout bounds each write to a member: of one message, or of
	// the messages (up to 16) found waiting and written together (see
	// Member.write). A member whose peer takes longer to accept them is
	// dropped, and its connection closed at once, without a close frame;
	// its Err wraps ErrSlowMember, or, if the socket had taken the first
	// part of a frame from the flusher (see Design) and the Conn itself cut
	// it off, matches websocket.ErrClosed. It also bounds how long Leave
	// and Close may wait for a write in flight. 0 (or less) means
	// DefaultWriteTimeout.
	WriteTimeout time.Duration
}

// Errors of the hub; Member.Err returns one of the last three, or one
// matching websocket.ErrClosed (with errors.Is) for a member whose
// connection was closed, by the peer or otherwise, before it left: the
// error of the write that failed, if one did, else websocket.ErrClosed.
var (
	// ErrClosed is returned by Join and Broadcast on a closed Hub, and by
	// Member.Err for the members it had.
	ErrClosed = errors.New("hub: closed")
	// ErrSlowMember is wrapped by Member.Err for a member that was dropped
	// because QueueSize messages were waiting for it or a write took longer
	// than WriteTimeout.
	ErrSlowMember = errors.New("hub: member too slow")
	// ErrLeft is Member.Err after Leave, if the connection was still
	// open when Leave was called.
	ErrLeft = errors.New("hub: member left")

	errNilConn       = errors.New("hub: Join of a nil *websocket.Conn")
	errAlreadyMember = errors.New("hub: Join of a connection that is a member already")
)

// A Hub is a set of connections, its members, that Broadcast writes to. Its
// methods are safe to call from any goroutine.
type Hub struct {
	queueSize    int
	writeTimeout time.Duration

	mu      sync.Mutex
	members map[*websocket.Conn]*Member // by connection; guarded by mu
	// list holds the members too, for Broadcast to go through: a slice is
	// walked faster than a map, in the same order each time. Guarded by mu.
	list   []*Member
	closed bool // guarded by mu
	// waiting holds the members with messages for the flusher, and
	// flushing is set while it runs. Guarded by mu.
	waiting  []*Member
	flushing bool
	writers  sync.WaitGroup // the flusher and the members' writers, each started under mu or by one of them
}

// New returns an empty Hub. opts may be nil.
func New(opts *Options) *Hub {
	h := &Hub{
		queueSize:    DefaultQueueSize,
		writeTimeout: DefaultWriteTimeout,
		members:      make(map[*websocket.Conn]*Member),
	}
	if opts != nil && opts.QueueSize > 0 {
		h.queueSize = opts.QueueSize
	}
	if opts != nil && opts.WriteTimeout > 0 {
		h.writeTimeout = opts.WriteTimeout
	}
	return h
}

// A Member is one connection in a Hub, from Join until it is removed: by
// Leave, by the hub (too slow, or its connection failed), or by Hub.Close.
type Member struct {
	hub   *Hub
	conn  *websocket.Conn
	index int // in hub.list; guarded by hub.mu

	// mu guards the queue and the writer's state. Broadcast takes it
	// holding hub.mu; the flusher and the writer take it alone, never
	// hub.mu with it.
	mu sync.Mutex
	// queue holds the messages broadcast to m that are not written yet,
	// oldest first, except those its writer took and is writing, which
	// writing counts (the flusher leaves the messages it tries in the
	// queue until the socket took them). Together they are what QueueSize
	// bounds.
	queue []*websocket.PreparedMessage
	// writing is at most writeBatchMax: an int32 shares a word with the
	// flags below, which keeps a Member in its 128-byte size class.
	writing int32
	// queued is set while m waits for the flusher, or the flusher writes
	// to it: Broadcast sets it when it queues for a member that has no
	// writer and was not queued already.
	queued bool
	// running is set while a writer goroutine runs for m: the flusher
	// starts one for a member whose socket would not take its messages at
	// once, and so does the removal, so that a writer closes the
	// connection. While it runs, it alone writes m's messages.
	running bool
	// out is set when m leaves the set: its writer closes the connection
	// and ends for good.
	out bool

	err  error         // why m was removed; guarded by hub.mu
	done chan struct{} // closed when the last writer has closed the Conn
	// unhook takes back the function Join gave the Conn's AfterClose; set
	// by Join under hub.mu.
	unhook func() bool
	// closeHook counts that function from Join for as long as it may
	// still run: it is done when the function returns, or when
	// removeLocked took the function back before the Conn closed. The
	// last writer waits for it before it ends, so that the function has
	// done its work for m once Leave or Close has returned.
	closeHook sync.WaitGroup

	// timer bounds each write (see write); made by the first one, and
	// used by one writer at a time. timedOut says on timedOutDone that it
	// has ended, so that the writer can wait for it.
	timer        *time.Timer
	timedOutDone chan struct{}
}

// Join adds c to the hub; nothing runs for it until a message is
// broadcast (see Design). From then on the hub owns the writing end
// of c: it closes c when the member is removed. The caller keeps reading
// from c, and calls Leave when it is done with it.
//
// On a closed hub, Join returns ErrClosed and c remains the caller's. A nil
// c is refused with an error too: its writer would fail on it later, on a
// goroutine of its own, where a panic takes the whole program down. So is
// a c that is a member already (until it is removed): it would get every
// message twice.
func (h *Hub) Join(c *websocket.Conn) (*Member, error) {
	if c == nil {
		return nil, errNilConn
	}
	m := &Member{hub: h, conn: c, done: make(chan struct{})}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil, ErrClosed
	}
	if _, ok := h.members[c]; ok {
		// Two writers on one connection would write every message twice.
		return nil, errAlreadyMember
	}
	h.members[c] = m
	m.index = len(h.list)
	h.list = append(h.list, m)
	// Closed from the peer's side, by a keepalive, or by the application:
	// nothing more can be written, so the member goes now rather than at
	// the next Broadcast (a quiet hub might have none). A removal for
	// another reason, such as Leave, takes this back (removeLocked).
	m.closeHook.Add(1)
	m.unhook = c.AfterClose(func() {
		defer m.closeHook.Done()
		h.remove(m, websocket.ErrClosed)
	})
	return m, nil
}

// Broadcast queues a message of type typ for every member, wakes the
// flusher if it is not running, and returns at once: it never waits for a
// peer, and never for the network.
//
// p is not copied; every member's writer reads the same bytes, later. The
// caller must not modify p after Broadcast, not even once it has returned.
//
// A member that has QueueSize messages waiting (see Options) is dropped:
// removed from the hub at once, its queued messages discarded (those its
// writer is writing, if any, are let finish), and its connection closed by
// its writer with websocket.StatusPolicyViolation (1008). RFC 6455 §7.4.1
// defines 1008 for "a message that violates its policy" and makes it the
// "generic status code" when no more suitable one applies; here no message
// broke the policy, the member's pace did: "read your messages as fast as
// they come". 1013 (try again later, from the IANA registry rather than §7.4.1)
// would say the server is overloaded and invite the client to reconnect
// straight away, when it is the client that fell behind.
//
// Broadcast returns ErrClosed on a closed hub, ctx.Err() if ctx is already
// done (nothing is queued then), and websocket.ErrInvalidMessageType for a
// typ other than MessageText or MessageBinary.
func (h *Hub) Broadcast(ctx context.Context, typ websocket.MessageType, p []byte) error {
	msg, err := websocket.NewPreparedMessage(typ, p)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return ErrClosed
	}
	for i := 0; i < len(h.list); i++ {
		m := h.list[i]
		m.mu.Lock()
		if len(m.queue)+int(m.writing) >= h.queueSize {
			m.mu.Unlock()
			h.removeLocked(m, fmt.Errorf("%w: %d messages waiting", ErrSlowMember, h.queueSize))
			i-- // the last member took m's place
			continue
		}
		m.queue = append(m.queue, msg)
		wake := !m.running && !m.queued
		m.queued = m.queued || wake
		m.mu.Unlock()
		if wake {
			h.waiting = append(h.waiting, m)
		}
	}
	if len(h.waiting) > 0 && !h.flushing {
		h.flushing = true
		h.writers.Go(h.flush) // under h.mu, while the hub is open: Close's Wait cannot miss it
	}
	return nil
}

// flush is the flusher: it writes the messages waiting for each queued
// member with TryWritePrepared, which writes only what the socket takes
// at once, and ends when no member is waiting. A member that keeps up
// with the hub, nearly every member nearly always, is written to here,
// from one goroutine for all, as a loop over the connections would; only
// a member whose socket is full gets a writer of its own (Member.flush).
//
// While the flusher goes through the members, Broadcast may queue more
// for those it has done; they wait for its next pass, so a burst of
// messages goes out in fewer system calls than messages.
func (h *Hub) flush() {
	var members []*Member
	for {
		h.mu.Lock()
		if len(h.waiting) == 0 {
			h.flushing = false
			h.mu.Unlock()
			return
		}
		// The two slices swap roles each pass: no allocation per pass.
		members, h.waiting = h.waiting, members[:0]
		h.mu.Unlock()
		for i, m := range members {
			if m.flush() {
				h.mu.Lock()
				h.waiting = append(h.waiting, m) // after the others
				h.mu.Unlock()
			}
			members[i] = nil
		}
	}
}

// flushTries bounds how many tries the flusher makes for one member in a
// row: a member that has more waiting after them, because more keeps
// coming, waits for the flusher's next pass, after the others.
const flushTries = 4

// flush writes what is waiting for m, as far as its socket takes it at
// once; if a try writes nothing, m gets a writer of its own for the rest.
// The flusher calls it for a queued member, which no writer of its own
// writes to. It reports whether m is still queued, with messages left
// after flushTries tries that each wrote some: the flusher then comes back
// to it.
func (m *Member) flush() (more bool) {
	var gathered [writeBatchMax]*websocket.PreparedMessage
	for try := 1; ; try++ {
		m.mu.Lock()
		if m.running { // a removal started a writer, to close the Conn
			m.queued = false
			m.mu.Unlock()
			return false
		}
		n := copy(gathered[:], m.queue)
		if n == 0 {
			m.queued = false
			m.mu.Unlock()
			return false
		}
		m.mu.Unlock()
		// They stay in the queue until written (they count toward
		// QueueSize there): the socket may not take them all.
		// A frame the socket takes only in part is finished by the Conn,
		// waiting for the peer for WriteTimeout at most, as a writer would.
		written, err := m.conn.TryWritePrepared(m.hub.writeTimeout, gathered[:n]...)
		clear(gathered[:n])

		m.mu.Lock()
		if m.out { // removed meanwhile: its queue is gone, and a writer closes it
			m.queued = false
			m.mu.Unlock()
			return false
		}
		m.dropLocked(written)
		if err != nil {
			m.queued = false
			m.mu.Unlock()
			m.hub.remove(m, err)
			return false
		}
		if written == 0 {
			// The socket is full, the Conn busy, or the first message
			// needs the Conn's own compressor: a writer that may wait
			// takes over.
			m.queued = false
			m.running = true
			m.mu.Unlock()
			m.hub.writers.Go(m.run) // the flusher counts in writers: Close's Wait cannot miss it
			return false
		}
		if len(m.queue) == 0 {
			m.queued = false
			m.mu.Unlock()
			return false
		}
		m.mu.Unlock()
		if try == flushTries {
			return true
		}
		// Some went: the rest did not fit in one system call with them,
		// or came meanwhile, or waits for one of the reasons above, which
		// the next try finds.
	}
}

// Len returns the number of members.
func (h *Hub) Len() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.members)
}

// Close removes every member, closing each connection with
// websocket.StatusGoingAway (1001), and waits until the flusher and all
// the members' writers have ended. A write in flight is let finish first, so Close is bounded by
// WriteTimeout plus the connections' close timeout. Join and Broadcast fail
// with ErrClosed afterwards. Close may be called more than once.
func (h *Hub) Close() {
	h.mu.Lock()
	h.closed = true
	for _, m := range h.members {
		h.removeLocked(m, ErrClosed)
	}
	h.mu.Unlock()
	h.writers.Wait()
}

// remove is removeLocked for a caller that does not hold h.mu.
func (h *Hub) remove(m *Member, why error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.removeLocked(m, why)
}

// removeLocked takes m out of the set, recording why, unless it is out
// already (the first reason stands), and discards the messages queued for
// it. Its writer, started here if it has none, finishes the write in
// flight if any, closes the connection and ends. The caller holds h.mu.
//
// The queue is emptied here rather than by the writer, which may be in the
// middle of a write for up to WriteTimeout: a dropped member must not keep
// QueueSize messages alive meanwhile.
func (h *Hub) removeLocked(m *Member, why error) {
	if h.members[m.conn] != m {
		return
	}
	delete(h.members, m.conn)
	last := h.list[len(h.list)-1]
	h.list[m.index], last.index = last, m.index
	h.list[len(h.list)-1] = nil
	h.list = h.list[:len(h.list)-1]
	m.err = why
	// Closing the Conn, which m's writer is about to do, would start the
	// AfterClose function in a goroutine that nothing waits for: it
	// would find m out and do nothing, but could still be running after
	// Close or Leave returned. If the Conn closed first, that goroutine
	// has started, or is about to (it may be this call's): the writer
	// waits for it (closeHook).
	if m.unhook() {
		m.closeHook.Done()
	}
	m.mu.Lock()
	m.out = true
	m.queue = nil
	start := !m.running // else the running writer finds m out
	m.running = true
	m.mu.Unlock()
	if start {
		h.writers.Go(m.run)
	}
}

// Leave removes m from its hub, discards the messages still queued for it,
// and closes its connection with websocket.StatusNormalClosure (1000) if
// nothing closed it before. It returns once m's writer has ended and the
// Conn is closed: at most WriteTimeout plus the Conn's close timeout.
// Leave may be called more than once, and after the hub removed m.
func (m *Member) Leave() {
	why := ErrLeft
	select {
	case <-m.conn.Done():
		// The connection closed first, which removes m by itself
		// (AfterClose, in Join). An application's reader typically calls
		// Leave because of that close, and learns of it only once Done
		// is closed; recording the close either way keeps Err from
		// depending on which of the two ran first.
		why = websocket.ErrClosed
	default:
	}
	m.hub.remove(m, why)
	<-m.done
}

// Done returns a channel that is closed once m is out of the hub, its
// writer has ended and its connection is closed.
func (m *Member) Done() <-chan struct{} { return m.done }

// Err returns why m was removed from the hub (ErrLeft, ErrClosed, an error
// wrapping ErrSlowMember, or one matching websocket.ErrClosed for a
// connection that closed first), or nil while it is a member.
func (m *Member) Err() error {
	m.hub.mu.Lock()
	defer m.hub.mu.Unlock()
	return m.err
}

// run is a writer of the member: it writes queued messages, in order,
// until the queue is empty, and ends; the flusher has the member back
// then. Once the member is out of the hub it closes the connection, with
// the code that says why, and ends for good.
func (m *Member) run() {
	var gathered [writeBatchMax]*websocket.PreparedMessage
	for {
		m.mu.Lock()
		if m.out {
			m.mu.Unlock()
			m.finish()
			return
		}
		// Whatever is waiting goes together, in as few system calls as
		// WritePrepared can: after a burst, one write for several
		// messages instead of one each.
		n := copy(gathered[:], m.queue)
		if n == 0 {
			m.running = false
			m.mu.Unlock()
			return
		}
		m.dropLocked(n)
		m.writing = int32(n)
		m.mu.Unlock()

		err := m.write(gathered[:n])
		clear(gathered[:n]) // the messages are written: keep none alive
		m.mu.Lock()
		m.writing = 0
		m.mu.Unlock()
		if err != nil {
			m.hub.remove(m, err) // the next turn finds m out
		}
	}
}

// dropLocked takes the first n messages off m's queue. The queue keeps
// its array, so that a member sent a message at a time does not allocate
// one per message; it is never longer than QueueSize. The caller holds
// m.mu.
func (m *Member) dropLocked(n int) {
	left := copy(m.queue, m.queue[n:])
	clear(m.queue[left:])
	m.queue = m.queue[:left]
}

// finish closes the member's connection with the code that says why it
// left, once the last write is over, and ends the member.
func (m *Member) finish() {
	defer close(m.done) // the timer is stopped: each write stops it
	m.hub.mu.Lock()
	why := m.err
	m.hub.mu.Unlock()
	// Close is bounded by the Conn's close timeout, and returns at once if
	// the connection is already gone (a failed write, a peer that closed).
	switch {
	case errors.Is(why, ErrSlowMember):
		m.conn.Close(websocket.StatusPolicyViolation, "too slow: messages were not read in time")
	case why == ErrClosed:
		m.conn.Close(websocket.StatusGoingAway, "closing")
	case why == ErrLeft:
		m.conn.Close(websocket.StatusNormalClosure, "")
	default: // a write failed: the connection is, or is being, closed
		m.conn.Close(websocket.StatusInternalError, "")
	}
	// The Conn is closed: the AfterClose function, if it was not taken
	// back, has been started or is about to be; it only has to take
	// hub.mu, which nothing holds while waiting for a writer.
	m.closeHook.Wait()
}

// writeBatchMax bounds how many waiting messages a writer takes off its
// queue for one write.
const writeBatchMax = 16

// write writes msgs, all of them bounded by one WriteTimeout: the peer is
// to take what was waiting for it in that time. One that does not is
// dropped as too slow, and its connection closed at once (timedOut): a
// peer that has not taken the messages in that time would not take a
// close frame either, and a frame cut short could not be finished anyway.
//
// The write is bounded by a timer rather than a context: a context the
// Conn watches costs it a registration (close to 1 KiB) for as long as the
// member lives, and a new one per write would cost that per message. One
// timer, re-armed per write, serves every write of the member, so a
// broadcast to many members allocates nothing per member.
func (m *Member) write(msgs []*websocket.PreparedMessage) error {
	if m.timer == nil {
		m.timedOutDone = make(chan struct{}, 1)
		m.timer = time.AfterFunc(m.hub.writeTimeout, m.timedOut)
	} else {
		m.timer.Reset(m.hub.writeTimeout)
	}
	err := m.conn.WritePrepared(context.Background(), msgs...)
	if !m.timer.Stop() {
		// timedOut has started, in a goroutine of its own: the writer
		// waits for it, so that it cannot outlive the member (Close and
		// Leave wait for the writer).
		<-m.timedOutDone
	}
	return err
}

// timedOut ends a write that took more than WriteTimeout. The member is
// removed as too slow before the connection is closed: closing it wakes
// the application's reader, whose Leave would otherwise be taken for the
// reason.
func (m *Member) timedOut() {
	m.hub.remove(m, fmt.Errorf("%w: a write took more than %v", ErrSlowMember, m.hub.writeTimeout))
	m.conn.CloseNow()
	m.timedOutDone <- struct{}{}
}
