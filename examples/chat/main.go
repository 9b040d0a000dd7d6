// Command chat is a chat room for browsers. It serves a page at / whose
// script connects to /ws; every line a guest sends is relayed to everyone
// as "name: text" through a hub (github.com/ws13/websocket/hub), which keeps
// one slow browser from holding up the rest.
//
//	go run ./examples/chat                 # then open http://127.0.0.1:8080/
//	go run ./examples/chat -addr :9000
package main

import (
	"bytes"
	"context"
	_ "embed"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unicode"

	"github.com/ws13/websocket"
	"github.com/ws13/websocket/hub"
)

// page is the whole client: HTML and a little script.
//
//go:embed index.html
var page []byte

// maxMessage bounds one line a guest sends, in bytes; a longer one closes
// that guest's connection with 1009 (message too big).
const maxMessage = 4 << 10

// A host (one IP address; one /64 for IPv6) may send lineBurst lines at
// once, then one per lineInterval on average, however many connections it
// opens: the pacing is per host, not per connection, or a client would
// multiply its allowance by opening more. "joined" notices draw on the
// same allowance (a host over it joins silently), or connecting and
// disconnecting in a loop would flood the room with notices.
//
// Every line goes to everyone, and the hub drops a guest that falls too
// far behind: without a limit, one guest sending faster than the slowest
// guest can read would have that guest thrown out. A host over the limit
// is not cut off: the room waits before reading its next line, and TCP
// slows that host's sending down, and no one else's.
const (
	lineBurst    = 10
	lineInterval = 200 * time.Millisecond
)

// maxGuestsPerHost bounds the connections one host may hold open: each
// costs the server goroutines and buffers. Behind a reverse proxy every
// guest has the proxy's address: key hosts on the client address the
// proxy passes on instead.
const maxGuestsPerHost = 8

// pingInterval is how often the room checks that a quiet guest is still
// there: a browser that vanishes without closing (a laptop lid, a lost
// network) would otherwise stay in the room until TCP gives up on it,
// which takes many minutes.
const pingInterval = 30 * time.Second

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "address to listen on, HOST:PORT")
	flag.Parse()

	room := newRoom()
	server := newServer(room)
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	log.Printf("chat: open %s in a browser", pageURL(ln.Addr()))

	// SIGTERM is what docker stop, systemd and kill send.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	served := make(chan error, 1)
	go func() { served <- server.Serve(ln) }()
	select {
	case err := <-served:
		log.Fatal(err)
	case <-ctx.Done():
	}
	stop() // a second ^C ends the program at once

	// Say goodbye (1001, going away) to every guest, then stop serving.
	// WebSockets are hijacked connections: Shutdown does not wait for them.
	// A guest that arrived as the room closed is told goodbye by its own
	// handler, which the room waits for too: a process that ended first
	// would leave that guest with no close frame (1006).
	log.Print("chat: shutting down")
	room.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := server.Shutdown(ctx); err != nil {
		log.Print(err)
	}
	if err := room.wait(ctx); err != nil {
		log.Printf("chat: guests still being told goodbye: %v", err)
	}
}

// newServer returns the HTTP server for h. No connection may stay open for
// ever without being a guest, which maxGuestsPerHost bounds: not one that
// never finishes its request's header, nor one that trickles a body (the
// page reads none, but net/http reads up to 256 KiB of it to keep the
// connection), nor one left idle between requests, as a browser does
// after loading the page. Without IdleTimeout or ReadTimeout net/http
// waits for ever in the last two cases; see SECURITY.md. Both stop
// applying once a WebSocket is accepted: the Conn sets its own deadlines.
func newServer(h http.Handler) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       10 * time.Second, // header and body; the page takes no body
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    16 << 10,
	}
}

// pageURL returns where a browser on this machine finds the page served
// on addr. A listener on every interface (-addr :9000) has the unspecified
// address, [::] or 0.0.0.0, which names no host to connect to: Windows
// refuses a connection to it, and browsers have begun to block it.
// localhost reaches such a listener in either address family.
func pageURL(addr net.Addr) string {
	host := addr.String()
	if tcp, ok := addr.(*net.TCPAddr); ok && tcp.IP.IsUnspecified() {
		host = net.JoinHostPort("localhost", strconv.Itoa(tcp.Port))
	}
	return "http://" + host + "/"
}

// room is the chat: the page, and a WebSocket endpoint whose connections
// are members of one hub.
type room struct {
	mux    *http.ServeMux
	hub    *hub.Hub
	guests atomic.Int64 // guests so far; names are guest-1, guest-2, …

	lineInterval time.Duration // see lineBurst; tests change it

	// handlers counts the WebSocket handlers running: their connections
	// are hijacked, and the server's Shutdown does not wait for them.
	handlers sync.WaitGroup

	mu    sync.Mutex
	hosts map[string]*host // guarded by mu; see enter and leave
}

// host is what the room keeps for one host (see hostKey): its connections,
// and its pace. Guarded by room.mu.
type host struct {
	guests int       // connections open
	due    time.Time // when its lines so far would have been read, one per lineInterval
}

func newRoom() *room {
	rm := &room{mux: http.NewServeMux(), hub: hub.New(nil), lineInterval: lineInterval, hosts: make(map[string]*host)}
	rm.mux.HandleFunc("GET /{$}", rm.servePage)
	// Not "GET /ws": a server that also speaks HTTP/2 (this one does not)
	// opens WebSockets there with CONNECT (RFC 8441).
	rm.mux.HandleFunc("/ws", rm.serveWS)
	return rm
}

func (rm *room) ServeHTTP(w http.ResponseWriter, r *http.Request) { rm.mux.ServeHTTP(w, r) }

// Close closes every guest's connection and waits until they are closed.
// A guest that connects after it is turned away, with 1001, by its handler.
func (rm *room) Close() { rm.hub.Close() }

// wait waits until every WebSocket handler has returned, each having closed
// its connection, or ctx is done. Call it after Close, once the server has
// stopped accepting connections.
func (rm *room) wait(ctx context.Context) error {
	done := make(chan struct{})
	go func() {
		rm.handlers.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (rm *room) servePage(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Write(page)
}

func (rm *room) serveWS(w http.ResponseWriter, r *http.Request) {
	rm.handlers.Add(1)
	defer rm.handlers.Done()
	if !unrebindable(r) {
		http.Error(w, "unknown host name", http.StatusForbidden)
		return
	}
	key := hostKey(r.RemoteAddr)
	h := rm.enter(key)
	if h == nil {
		http.Error(w, "too many connections from your address", http.StatusTooManyRequests)
		return
	}
	defer rm.leave(key, h)
	// nil OriginPatterns: only pages from this server's own host may
	// connect, so another site cannot make a visitor's browser join
	// (unless it renames this server: see unrebindable).
	conn, err := websocket.Accept(w, r, &websocket.AcceptOptions{ReadLimit: maxMessage, PingInterval: pingInterval})
	if err != nil {
		log.Printf("chat: %s: %v", r.RemoteAddr, err)
		return // Accept has answered the request
	}
	// The guest learns its name before anything else, so that it knows
	// which lines are its own.
	name := fmt.Sprintf("guest-%d", rm.guests.Add(1))
	if err := greet(r.Context(), conn, name); err != nil {
		conn.CloseNow()
		return
	}
	m, err := rm.hub.Join(conn)
	if err != nil {
		conn.Close(websocket.StatusGoingAway, "the chat is closing")
		return
	}
	announced := rm.tryPace(h) // a host over its allowance comes and goes unannounced
	if announced {
		rm.announce(name + " joined")
	}
	err = rm.relay(r.Context(), conn, m, h, name)
	// Leave closes the connection and waits for its writer. (Over HTTP/2
	// the handler must not return before: the stream ends with it.)
	m.Leave()
	if announced {
		rm.announce(name + " left")
	}
	switch status := websocket.CloseStatus(err); {
	case status == websocket.StatusNormalClosure, status == websocket.StatusGoingAway:
	case errors.Is(err, hub.ErrClosed): // the room is closing
	default:
		log.Printf("chat: %s (%s): %v", name, r.RemoteAddr, err)
	}
}

// greetTimeout bounds the greeting: a guest that does not read it is not
// worth a place in the room.
const greetTimeout = 10 * time.Second

// greet tells a new guest its name, as a notice that only it receives.
func greet(ctx context.Context, conn *websocket.Conn, name string) error {
	ctx, cancel := context.WithTimeout(ctx, greetTimeout)
	defer cancel()
	return conn.Write(ctx, websocket.MessageText, []byte("* you are "+name))
}

// relay reads what a guest says and broadcasts it, until the connection
// ends or the guest's membership does. Only text is welcome.
func (rm *room) relay(ctx context.Context, conn *websocket.Conn, m *hub.Member, h *host, name string) error {
	for {
		typ, msg, err := conn.Read(ctx)
		if err != nil {
			return err
		}
		if typ != websocket.MessageText {
			conn.Close(websocket.StatusUnsupportedData, "text messages only")
			return errors.New("sent a binary message")
		}

		// Over the limit, the line waits, and nothing more is read
		// meanwhile: the guest's sending stalls once TCP's buffers fill.
		if ahead := rm.pace(h); ahead > 0 {
			pause := time.NewTimer(ahead)
			select {
			case <-pause.C:
			case <-m.Done(): // removed from the room, which closed the connection
				pause.Stop()
				return m.Err()
			case <-ctx.Done():
				pause.Stop()
				return ctx.Err()
			}
		}

		// A new slice for each line: the hub shares it among every guest's
		// queue, so nothing may change it once broadcast.
		line := append([]byte(name+": "), oneLine(msg)...)
		if err := rm.hub.Broadcast(ctx, websocket.MessageText, line); err != nil {
			return err
		}
	}
}

// pace counts one more line of h's and returns how long it must wait to
// keep h within its allowance (nothing, if 0 or less).
func (rm *room) pace(h *host) time.Duration { return rm.charge(h, true) }

// tryPace counts one more line of h's if that needs no wait, and reports
// whether it did.
func (rm *room) tryPace(h *host) bool { return rm.charge(h, false) <= 0 }

// charge returns how long one more line of h's would have to wait, and
// counts it unless it would wait and evenIfLate is unset.
func (rm *room) charge(h *host, evenIfLate bool) time.Duration {
	rm.mu.Lock()
	defer rm.mu.Unlock()
	now := time.Now()
	due := later(h.due, now).Add(rm.lineInterval)
	ahead := due.Sub(now) - lineBurst*rm.lineInterval
	if ahead <= 0 || evenIfLate {
		h.due = due
	}
	return ahead
}

// enter counts a new connection of the host key and returns its record, or
// nil if the host has maxGuestsPerHost connections already.
func (rm *room) enter(key string) *host {
	rm.mu.Lock()
	defer rm.mu.Unlock()
	h := rm.hosts[key]
	if h == nil {
		h = &host{}
		rm.hosts[key] = h
	}
	if h.guests >= maxGuestsPerHost {
		return nil
	}
	h.guests++
	return h
}

// leave counts a connection of h's gone. A host with none left is forgotten
// once its allowance is whole again: before, forgetting it would give a
// client that reconnects a fresh allowance.
func (rm *room) leave(key string, h *host) {
	rm.mu.Lock()
	defer rm.mu.Unlock()
	h.guests--
	forget := func() {
		if h.guests == 0 && !h.due.After(time.Now()) && rm.hosts[key] == h {
			delete(rm.hosts, key)
		}
	}
	if h.guests > 0 {
		return
	}
	if wait := time.Until(h.due); wait > 0 {
		time.AfterFunc(wait, func() {
			rm.mu.Lock()
			defer rm.mu.Unlock()
			forget()
		})
		return
	}
	forget()
}

// unrebindable reports whether r's Host is a name another site cannot point
// at this server. The origin check compares the page's origin with Host,
// and a site may point its own name at 127.0.0.1 once its page has loaded
// (DNS rebinding): the browser then sends that name as both, and its page
// joins a room that listens on this machine alone. Only this machine's
// browsers reach a loopback address, so a request that came to one must
// name a host no DNS answer changes: localhost or a name under it, which
// browsers resolve themselves (RFC 6761 §6.3), or an IP address (pageURL
// gives one of these). A request that came to another address, which
// others reach (-addr :9000), may name it as they like.
func unrebindable(r *http.Request) bool {
	local, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
	if !ok {
		return true
	}
	ap, err := netip.ParseAddrPort(local.String())
	if err != nil || !ap.Addr().Unmap().IsLoopback() {
		return true
	}
	host := r.Host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return true
	}
	_, err = netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(host, "["), "]"))
	return err == nil
}

// hostKey returns the host a connection comes from: its IP address, or for
// IPv6 its /64, which one machine usually has whole.
func hostKey(remoteAddr string) string {
	ap, err := netip.ParseAddrPort(remoteAddr)
	if err != nil {
		return remoteAddr
	}
	addr := ap.Addr().Unmap()
	if addr.Is6() {
		prefix, _ := addr.Prefix(64)
		return prefix.String()
	}
	return addr.String()
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// oneLine returns text with every control character (a newline, a
// carriage return, an escape) and every Unicode line or paragraph separator
// replaced by a space: each message is shown as one line that starts with
// its sender's name, and a guest must not be able to start a line of its
// own that seems to come from someone else, or from the room.
func oneLine(text []byte) []byte {
	return bytes.Map(func(r rune) rune {
		if unicode.IsControl(r) || r == '\u2028' || r == '\u2029' {
			return ' '
		}
		return r
	}, text)
}

// announce tells everyone in the room something; the page shows lines
// that start with "* " as notices. (A guest's own line always starts with
// its name, and holds no line break, so it cannot pass for one.)
func (rm *room) announce(text string) {
	rm.hub.Broadcast(context.Background(), websocket.MessageText, []byte("* "+text))
}
