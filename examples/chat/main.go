// Command chat is a chat room for browsers. It serves a page at / whose
// script connects to /ws; every line a guest sends is relayed to everyone
// as "name: text" through a hub (github.com/ws13/websocket/hub), which keeps
// one slow browser from holding up the rest.
//
//	go run ./examples/chat                 # then open http://127.0.0.1:8080/
//	go run ./examples/chat -addr :9000
package main

import (
	"context"
	_ "embed"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync/atomic"
	"time"

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

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "address to listen on, HOST:PORT")
	flag.Parse()

	room := newRoom()
	server := &http.Server{
		Handler: room,
		// A request that never finishes its header must not hold a
		// connection forever; see SECURITY notes in the README.
		ReadHeaderTimeout: 10 * time.Second,
		MaxHeaderBytes:    16 << 10,
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	log.Printf("chat: open http://%s/ in a browser", ln.Addr())

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
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
	log.Print("chat: shutting down")
	room.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := server.Shutdown(ctx); err != nil {
		log.Print(err)
	}
}

// room is the chat: the page, and a WebSocket endpoint whose connections
// are members of one hub.
type room struct {
	mux    *http.ServeMux
	hub    *hub.Hub
	guests atomic.Int64 // guests so far; names are guest-1, guest-2, …
}

func newRoom() *room {
	rm := &room{mux: http.NewServeMux(), hub: hub.New(nil)}
	rm.mux.HandleFunc("GET /{$}", rm.servePage)
	rm.mux.HandleFunc("/ws", rm.serveWS) // not "GET /ws": over HTTP/2 a WebSocket opens with CONNECT
	return rm
}

func (rm *room) ServeHTTP(w http.ResponseWriter, r *http.Request) { rm.mux.ServeHTTP(w, r) }

// Close closes every guest's connection and waits until they are closed.
func (rm *room) Close() { rm.hub.Close() }

func (rm *room) servePage(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Write(page)
}

func (rm *room) serveWS(w http.ResponseWriter, r *http.Request) {
	// nil OriginPatterns: only pages from this server's own host may
	// connect, so another site cannot make a visitor's browser join.
	conn, err := websocket.Accept(w, r, &websocket.AcceptOptions{ReadLimit: maxMessage})
	if err != nil {
		log.Printf("chat: %s: %v", r.RemoteAddr, err)
		return // Accept has answered the request
	}
	m, err := rm.hub.Join(conn)
	if err != nil {
		conn.Close(websocket.StatusGoingAway, "the chat is closing")
		return
	}
	name := fmt.Sprintf("guest-%d", rm.guests.Add(1))
	rm.announce(name + " joined")
	err = rm.relay(r.Context(), conn, name)
	// Leave closes the connection and waits for its writer: the handler
	// must not return earlier over HTTP/2, where the stream ends with it.
	m.Leave()
	rm.announce(name + " left")
	if status := websocket.CloseStatus(err); err != nil && status != websocket.StatusNormalClosure && status != websocket.StatusGoingAway {
		log.Printf("chat: %s (%s): %v", name, r.RemoteAddr, err)
	}
}

// relay reads what a guest says and broadcasts it, until the connection
// ends. Only text is welcome.
func (rm *room) relay(ctx context.Context, conn *websocket.Conn, name string) error {
	for {
		typ, msg, err := conn.Read(ctx)
		if err != nil {
			return err
		}
		if typ != websocket.MessageText {
			conn.Close(websocket.StatusUnsupportedData, "text messages only")
			return errors.New("sent a binary message")
		}
		// A new slice for each line: the hub shares it among every guest's
		// queue, so nothing may change it once broadcast.
		line := append([]byte(name+": "), msg...)
		if err := rm.hub.Broadcast(ctx, websocket.MessageText, line); err != nil {
			return err
		}
	}
}

// announce tells everyone in the room something; the page shows lines
// that start with "* " as notices. (A guest's own line always starts with
// its name, so cannot pass for one.)
func (rm *room) announce(text string) {
	rm.hub.Broadcast(context.Background(), websocket.MessageText, []byte("* "+text))
}
