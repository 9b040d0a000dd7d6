// Command echo is a WebSocket echo server: every message it receives, at
// any path, is sent back with its type.
//
//	go run ./examples/echo                 # ws://127.0.0.1:8080/
//	go run ./examples/echo -addr :9000
package main

import (
	"context"
	"errors"
	"flag"
	"log"
	"net/http"
	"time"

	"github.com/ws13/websocket"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "address to listen on, HOST:PORT")
	flag.Parse()

	server := &http.Server{
		Addr:    *addr,
		Handler: http.HandlerFunc(echo),
		// A request that never finishes its header must not hold a
		// connection forever; see SECURITY notes in the README.
		ReadHeaderTimeout: 10 * time.Second,
		MaxHeaderBytes:    16 << 10,
	}
	log.Printf("echo: listening on ws://%s/", *addr)
	log.Fatal(server.ListenAndServe())
}

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
		buf = msg
	}
}
