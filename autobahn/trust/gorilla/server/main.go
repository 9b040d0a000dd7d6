// Command server is a gorilla/websocket echo server set up as gorilla's own
// Autobahn testee (examples/autobahn in gorilla/websocket, its
// "ReadAllWriteMessage" agent): compression enabled, 4096-byte buffers, no
// read limit, each message read whole, text checked for UTF-8 by the
// application (gorilla leaves that to it) and failed with 1007 when
// invalid, everything else echoed with WriteMessage.
//
//	go run ./gorilla/server -addr 127.0.0.1:0
//
// It prints "echo server on ws://ADDR/m" on stderr once listening.
package main

import (
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"time"
	"unicode/utf8"

	"github.com/gorilla/websocket"
)

var upgrader = websocket.Upgrader{
	ReadBufferSize:    4096,
	WriteBufferSize:   4096,
	EnableCompression: true,
	CheckOrigin:       func(*http.Request) bool { return true },
}

func echo(w http.ResponseWriter, r *http.Request) {
	conn, err := upgrader.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	defer conn.Close()
	for {
		mt, msg, err := conn.ReadMessage()
		if err != nil {
			return
		}
		if mt == websocket.TextMessage && !utf8.Valid(msg) {
			// Fail the connection, then read on until the peer's
			// close arrives or it goes away.
			conn.WriteControl(websocket.CloseMessage,
				websocket.FormatCloseMessage(websocket.CloseInvalidFramePayloadData, ""),
				time.Now().Add(time.Second))
			continue
		}
		if err := conn.WriteMessage(mt, msg); err != nil {
			return
		}
	}
}

func main() {
	addr := flag.String("addr", "127.0.0.1:9000", "listen address")
	flag.Parse()
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/m", echo)
	fmt.Fprintf(os.Stderr, "echo server on ws://%s/m\n", ln.Addr())
	log.Fatal(http.Serve(ln, mux))
}
