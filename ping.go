// Pings and pongs: RFC 6455 §5.5.2 and §5.5.3, and the keepalive built on them.

package websocket

import (
	"context"
	"encoding/binary"
	"errors"
	"math"
	"sync/atomic"
	"time"
)

// Ping sends a ping and waits for its pong. Each ping carries a fresh
// payload, so the pong that answers it is told apart from others (§5.5.3:
// a pong "must have identical "Application data" as found in the message
// body of the Ping frame being replied to"). The pong to a later ping
// answers it too: a peer with several pings unanswered may answer only
// "the most recently processed" one (§5.5.3), and that one came after.
//
// Pongs are seen only while some goroutine reads from the Conn (or after
// CloseRead); with no reader, Ping waits until ctx is done.
func (c *Conn) Ping(ctx context.Context) error {
	_, err := c.ping(ctx, 0)
	return err
}

// ping is Ping, and also reports whether the ping went out: one that timed
// out waiting for the wire was not left unanswered. With answerWithin set,
// the wait for the pong is bounded by it, from the moment the ping went
// out, rather than by ctx, which then bounds only the wait for the wire.
func (c *Conn) ping(ctx context.Context, answerWithin time.Duration) (sent bool, err error) {
	done := make(chan struct{})
	key, err := c.writePing(ctx, done, answerWithin)
	if key != ([8]byte{}) {
		defer func() {
			c.pingMu.Lock()
			delete(c.pendingPing, key)
			if len(c.pendingPing) == 0 {
				// A map keeps its buckets once emptied: a quiet Conn that
				// keepalive pings would hold them between rounds, and a
				// burst of Pings would leave its high-water mark.
				c.pendingPing = nil
			}
			c.pingMu.Unlock()
		}()
	}
	if err != nil {
		return false, err
	}
	stop := ctx.Done()
	var answerTimeout <-chan time.Time
	if answerWithin > 0 {
		timer := time.NewTimer(answerWithin)
		defer timer.Stop()
		stop, answerTimeout = nil, timer.C
	}
	select {
	case <-done:
		return true, nil
	case <-stop:
		err = ctx.Err()
	case <-answerTimeout:
		err = context.DeadlineExceeded
	case <-c.netClosed:
		err = c.closeCause
	}
	// select picks at random among the cases ready, and the reader closes
	// done before it can meet the end of the stream behind the pong: a
	// pong that came is the answer, whatever came with it.
	if isDone(done) {
		return true, nil
	}
	return true, err
}

// writePing sends a ping frame within ctx. For keepalive (answerWithin
// set), ctx bounds the wait for the wire; a ping that waited behind a large
// frame the peer kept taking then has answerWithin for its own write, not
// what the wait left of it: the frame's tail may still fill the socket, and
// over TLS a write cut by its deadline breaks the stream, which would drop
// a peer that is there. The fresh bound keeps ErrKeepaliveTimeout as its
// cause (closingCause).
//
// The ping is numbered once frameLock is held, so that the numbers follow
// the order of the pings on the wire (pongReceived relies on it), and done
// is registered under its number, the payload, which is returned (zero if
// nothing was registered).
func (c *Conn) writePing(ctx context.Context, done chan struct{}, answerWithin time.Duration) (key [8]byte, err error) {
	var watching bool
	if answerWithin <= 0 {
		if watching, err = c.beginWrite(ctx); err != nil {
			return key, err
		}
	} else {
		if !c.frameLock.tryLock() {
			if err := c.lockFrame(ctx); err != nil {
				return key, err
			}
			if c.tookFrameWithin(answerWithin) {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeoutCause(context.Background(), answerWithin, ErrKeepaliveTimeout)
				defer cancel()
			}
		}
		if watching, err = c.beginWriteLocked(ctx); err != nil {
			return key, err
		}
	}
	defer c.unlockFrame()
	c.pingMu.Lock()
	if c.pendingPing == nil {
		c.pendingPing = make(map[[8]byte]chan struct{})
	}
	c.pingCount++
	binary.BigEndian.PutUint64(key[:], uint64(c.pingCount))
	c.pendingPing[key] = done
	c.pingMu.Unlock()
	return key, c.endWrite(ctx, watching, c.writeFrameLocked(Header{Fin: true, Opcode: OpPing}, key[:]))
}

// pongReceived wakes the Ping this pong answers, and every Ping sent before
// it: the stream is in order, so the peer had them all, and §5.5.3 lets it
// answer only the latest of the pings it had not answered yet (as ws13
// does while a frame it writes holds up its pong: answerPingLocked). A pong
// that carries none of our numbers (unsolicited, §5.5.3) wakes no one.
func (c *Conn) pongReceived(payload []byte) {
	if len(payload) != 8 {
		return
	}
	answered := binary.BigEndian.Uint64(payload)
	c.pingMu.Lock()
	defer c.pingMu.Unlock()
	if answered > uint64(c.pingCount) {
		return
	}
	for key, done := range c.pendingPing {
		if binary.BigEndian.Uint64(key[:]) <= answered {
			close(done)
			delete(c.pendingPing, key)
		}
	}
}

// startKeepalive pings every interval and drops a peer that leaves a ping
// unanswered for timeout: a peer that vanished without a FIN is otherwise
// only found by TCP after many minutes. The rounds run from a timer, not
// from a goroutine waiting on a ticker: a goroutine exists only while a
// ping is out, so a quiet Conn that a Poller watches holds none between
// rounds.
//
// Close and CloseNow wait for keepalive's goroutines (doc.go, Concurrency),
// so each counts among the Conn's background ones before it can start: an
// armed timer counts for the round it will start, and the function given
// AfterClose, which stops the timer, counts from the first. A round that
// counted itself only once it ran, and a timer stopped by an uncounted
// function, left a round to start after CloseNow had returned.
func (c *Conn) startKeepalive(interval, timeout time.Duration) {
	var timer atomic.Pointer[time.Timer]
	// arm sets the timer for the next round, unless the connection is
	// closed: backgroundMu puts the Add before Close's wait, and the
	// Reset before the stop, which closing starts.
	arm := func() {
		c.backgroundMu.Lock()
		defer c.backgroundMu.Unlock()
		if !c.isNetClosed() {
			c.background.Add(1)
			timer.Load().Reset(interval)
		}
	}
	round := func() {
		defer c.background.Done() // the armed timer's count, now the round's
		if !c.isNetClosed() && c.keepaliveRound(timeout) {
			arm()
		}
	}
	// Made to fire never, then set: round finds the timer stored, however
	// short interval is.
	timer.Store(time.AfterFunc(math.MaxInt64, round))
	arm()
	c.background.Add(1) // the stop's, given back as its last act
	c.AfterClose(func() {
		defer c.background.Done()
		if timer.Load().Stop() {
			// It had not fired: no round will give its count back.
			c.background.Done()
		}
	})
}

// keepaliveRound sends one ping and waits for its pong, and reports
// whether keepalive goes on. A ping waits for the frame being written,
// which on a slow link a large one makes long; the peer is then dropped
// only if it took nothing of that frame (a MiB at a time, see
// writeInChunks) for timeout. Its pong, likewise, waits for the frame the
// peer is sending: control frames go only between frames (RFC 6455 §5.4),
// and a browser sends a message of any size as one. A peer whose pong is
// late is then dropped only if no bytes of an unfinished frame of its
// arrived for timeout (receivedFrameChunk). Either way the next round
// pings again.
func (c *Conn) keepaliveRound(timeout time.Duration) bool {
	// A ping the wire does not take in time, whose write is cut and
	// breaks the connection (midway through the frame, or over TLS at
	// all), is unanswered too: the cause says so (closingCause).
	ctx, cancel := context.WithTimeoutCause(context.Background(), timeout, ErrKeepaliveTimeout)
	sent, err := c.ping(ctx, timeout)
	cancel()
	if errors.Is(err, context.DeadlineExceeded) {
		if !sent && c.tookFrameWithin(timeout) {
			// The ping waited behind a large frame of ours, which the
			// peer keeps taking: it is there. The next round pings
			// again.
			return true
		}
		if sent && c.receivedFrameWithin(timeout) {
			// The ping went out, and the pong may be behind a large
			// frame the peer is still sending, whose bytes keep
			// coming: it is there. (A ping that did not go out is not
			// excused so: its pong is not due, and the peer took
			// nothing of ours for timeout; a write cut midway also
			// leaves a stream no later ping could use.)
			return true
		}
		c.closeNetWith(ErrKeepaliveTimeout)
		return false
	}
	return err == nil
}

// CloseRead starts a goroutine that reads from the Conn and discards
// nothing silently: it handles control frames (answers pings, delivers
// pongs to Ping, completes a closing handshake), and if a data message
// arrives it closes the connection with 1008 (policy violation). Use it when
// the application only writes. The returned context, ctx's child, is done
// when that goroutine ends, the connection closed, or as soon as ctx is
// done, when the goroutine may still be finishing (a closing handshake, a
// pong going out): Close and CloseNow wait for it. A Conn watched by
// a Poller already has its reader, the Poller: CloseRead there is a second
// one, which the Poller's contract forbids.
func (c *Conn) CloseRead(ctx context.Context) context.Context {
	ctx, cancel := context.WithCancel(ctx)
	started := c.startBackground(func() {
		defer cancel()
		if _, _, err := c.Reader(ctx); err == nil {
			c.closeOnceWith(StatusPolicyViolation, "unexpected data message")
		}
	})
	if !started {
		cancel()
	}
	return ctx
}

// startBackground runs f on a goroutine of the Conn's own, which Close and
// CloseNow wait for, unless the connection is closed already; it reports
// whether it did. Close and CloseNow wait once netClosed is closed, and a
// WaitGroup must not grow from zero while someone waits on it: taking
// backgroundMu, as closeNetWith does to close netClosed, puts each Add
// before that wait, or finds the connection closed.
func (c *Conn) startBackground(f func()) bool {
	if !c.joinBackground() {
		return false
	}
	go func() {
		defer c.background.Done()
		f()
	}()
	return true
}

// joinBackground counts the calling goroutine among the Conn's background
// ones (startBackground), unless the connection is closed already; it
// reports whether it did. The caller calls background.Done when it ends.
func (c *Conn) joinBackground() bool {
	c.backgroundMu.Lock()
	defer c.backgroundMu.Unlock()
	if c.isNetClosed() {
		return false
	}
	c.background.Add(1)
	return true
}

// tookFrameChunk records that the socket took a chunk of a large frame
// (writeFrameLocked).
func (c *Conn) tookFrameChunk() { c.writeProgress.Store(progressNow()) }

// tookFrameWithin reports whether the socket took a chunk of a large frame
// less than d ago.
func (c *Conn) tookFrameWithin(d time.Duration) bool {
	return progressWithin(c.writeProgress.Load(), d)
}

// receivedFrameChunk records that a read from the socket brought bytes of a
// data frame's payload and left the frame unfinished (readFramedLocked,
// skipFrameLocked).
func (c *Conn) receivedFrameChunk() { c.br.frameProgress.Store(progressNow()) }

// receivedFrameWithin reports whether a read from the socket brought bytes
// of an unfinished data frame less than d ago.
func (c *Conn) receivedFrameWithin(d time.Duration) bool {
	return progressWithin(c.br.frameProgress.Load(), d)
}

// progressNow is the moment to record in writeProgress or frameProgress:
// nanoseconds since progressEpoch, set at start-up, so above 0, which
// stands for none.
func progressNow() int64 { return int64(time.Since(progressEpoch)) }

// progressWithin reports whether stamp, a moment progressNow gave or 0 for
// none, is less than d ago.
func progressWithin(stamp int64, d time.Duration) bool {
	return stamp != 0 && time.Duration(progressNow()-stamp) < d
}

// progressEpoch is what writeProgress and frameProgress count from:
// time.Since reads the monotonic clock from it, which a change of the wall
// clock does not move.
var progressEpoch = time.Now()
