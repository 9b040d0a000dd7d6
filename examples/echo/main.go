// Command echo is a WebSocket echo server: every message it receives, at
// any path, is sent back with its type.
//
//	go run ./examples/echo                 # ws://127.0.0.1:8080/
//	go run ./examples/echo -addr :9000
//	go run ./examples/echo -poller         # on Linux, no goroutine per quiet connection
package main

import (
	"context"
	"errors"
	"flag"
	"log"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/ws13/websocket"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "address to listen on, HOST:PORT")
	usePoller := flag.Bool("poller", false, "serve connections through a websocket.Poller")
	flag.Parse()

	handler := http.HandlerFunc(echo)
	if *usePoller {
		poller, err := websocket.NewPoller()
		if err != nil {
			log.Fatal(err)
		}
		defer poller.Close()
		handler = pollerEcho(poller)
	}
	server := newServer(handler)
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	log.Printf("echo: listening on %s", serverURL(ln.Addr()))
	log.Fatal(server.Serve(ln))
}

// newServer returns the HTTP server for h. A connection that is no
// WebSocket must not stay open for ever: not one that never finishes its
// request's header, nor one that trickles a body (net/http reads up to
// 256 KiB of it to keep the connection), nor one left idle between
// requests; see SECURITY.md. None of these applies once a WebSocket is
// accepted: the Conn sets its own deadlines.
func newServer(h http.Handler) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       10 * time.Second, // header and body; echo takes no body
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    16 << 10,
	}
}

// serverURL returns the URL a client on this machine dials to reach a
// listener on addr: the address the listener has, with the port the system
// chose for -addr HOST:0, and localhost for a listener on every interface
// (-addr :9000), whose address, [::] or 0.0.0.0, names no host to connect
// to (the -addr itself, ":9000", names none at all).
func serverURL(addr net.Addr) string {
	host := addr.String()
	if tcp, ok := addr.(*net.TCPAddr); ok && tcp.IP.IsUnspecified() {
		host = net.JoinHostPort("localhost", strconv.Itoa(tcp.Port))
	}
	return "ws://" + host + "/"
}

// maxKeptBuffer is the largest read buffer echo keeps between messages.
const maxKeptBuffer = 64 << 10

func echo(w http.ResponseWriter, r *http.Request) {
	conn, err := websocket.Accept(w, r, nil)
	if err != nil {
		log.Printf("echo: %s: %v", r.RemoteAddr, err)
		return // Accept has answered the request
	}
	defer conn.CloseNow()
	ctx := r.Context()
	var buf []byte
	for {
		typ, msg, err := conn.AppendMessage(ctx, buf[:0])
		if err != nil {
			if status := websocket.CloseStatus(err); status != websocket.StatusNormalClosure && status != websocket.StatusGoingAway && !errors.Is(err, context.Canceled) {
				log.Printf("echo: %s: %v", r.RemoteAddr, err)
			}
			return
		}
		if err := conn.Write(ctx, typ, msg); err != nil {
			log.Printf("echo: %s: %v", r.RemoteAddr, err)
			return
		}
		// Reuse the buffer for the next message only if it is small: a
		// quiet connection must not keep the largest message it ever
		// echoed (up to the read limit) for the rest of its life.
		if cap(msg) <= maxKeptBuffer {
			buf = msg
		} else {
			buf = nil
		}
	}
}

// pollerEcho accepts a connection and hands it to poller, then returns: on
// Linux, where the Poller waits with epoll, the connection holds no
// goroutine until a message arrives, and then only for as long as echoOne
// runs (elsewhere the Poller keeps one waiting per connection).
func pollerEcho(poller *websocket.Poller) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		conn, err := websocket.Accept(w, r, nil)
		if err != nil {
			log.Printf("echo: %s: %v", r.RemoteAddr, err)
			return
		}
		remote := r.RemoteAddr // r is not used once the handler returns
		err = poller.Add(conn, func(conn *websocket.Conn) { echoOne(conn, remote) })
		if err != nil {
			log.Printf("echo: %s: %v", remote, err)
			conn.CloseNow()
		}
	}
}

// echoOne reads one message and sends it back. An error ends the
// connection, which the Poller then forgets.
func echoOne(conn *websocket.Conn, remote string) {
	ctx := context.Background()
	typ, msg, err := conn.Read(ctx)
	if err != nil {
		if status := websocket.CloseStatus(err); status != websocket.StatusNormalClosure && status != websocket.StatusGoingAway {
			log.Printf("echo: %s: %v", remote, err)
		}
		return
	}
	if err := conn.Write(ctx, typ, msg); err != nil {
		log.Printf("echo: %s: %v", remote, err)
		conn.CloseNow()
	}
}
