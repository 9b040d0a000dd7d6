//go:build linux

package websocket

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
)

// sysRegistrations counts the sockets registered with p's epoll instance,
// from the kernel's own list (proc(5), /proc/pid/fdinfo: a "tfd:" line per
// watched descriptor).
func (p *Poller) sysRegistrations(t *testing.T) int {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/self/fdinfo/%d", p.sys.fd))
	if err != nil {
		t.Fatal(err)
	}
	return strings.Count(string(b), "tfd:")
}

// Every way a watched connection ends removes its socket from epoll: none
// is left registered, to be reported for a descriptor that may already name
// another socket.
func TestPollerLeavesNoRegistration(t *testing.T) {
	checkLeaks(t)
	p := newTestPoller(t)
	ends := []string{"PeerClose", "PeerFIN", "CloseNow", "Close", "CloseNowInHandler", "Unread", "keepalive"}
	for _, how := range ends {
		server, peer := hostileConn(t, true, func(c *connConfig) {
			c.closeTimeout = 200 * time.Millisecond
			if how == "keepalive" {
				c.pingInterval, c.pingTimeout = 10*time.Millisecond, 20*time.Millisecond
			}
		})
		if err := p.Add(server, func(c *Conn) {
			if how == "Unread" {
				return
			}
			if _, _, err := c.Read(context.Background()); err == nil && how == "CloseNowInHandler" {
				c.CloseNow()
			}
		}); err != nil {
			t.Fatal(err)
		}
		switch how {
		case "PeerClose":
			peer.writeFrame(Header{Fin: true, Opcode: OpClose}, closeBody(StatusNormalClosure, ""))
		case "PeerFIN":
			peer.conn.Close()
		case "CloseNow":
			server.CloseNow()
		case "Close":
			server.Close(StatusNormalClosure, "") // unanswered: ends at the close timeout
		case "CloseNowInHandler", "Unread":
			peer.writeFrame(Header{Fin: true, Opcode: OpText}, []byte("m"))
		}
	}
	// One connection stays, quiet: it alone is registered in the end.
	stays, _ := hostileConn(t, true)
	if err := p.Add(stays, newCountingEcho().handle); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "every other connection to be forgotten", func() bool { return p.watchCount() == 1 })
	if got := p.sysRegistrations(t); got != 1 {
		t.Errorf("%d sockets registered with epoll for the one connection still watched", got)
	}
	stays.CloseNow()
	waitFor(t, "the last connection to be forgotten", func() bool { return p.watchCount() == 0 })
	if got := p.sysRegistrations(t); got != 0 {
		t.Errorf("%d sockets still registered with epoll after every connection ended", got)
	}
}
