// Command client runs every case of an Autobahn fuzzing server with a
// gorilla/websocket client set up like gorilla's own server testee
// (examples/autobahn): compression enabled, 4096-byte buffers, no read
// limit, each message read whole, text checked for UTF-8 by the
// application and failed with 1007 when invalid, everything else echoed
// with WriteMessage. Gorilla ships no client testee; this is its server
// testee turned around.
//
//	go run ./gorilla/client -url ws://127.0.0.1:9001 -agent gorilla
package main

import (
	"flag"
	"fmt"
	"log"
	"net/url"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/gorilla/websocket"
)

var dialer = websocket.Dialer{
	ReadBufferSize:    4096,
	WriteBufferSize:   4096,
	EnableCompression: true,
	HandshakeTimeout:  10 * time.Second,
}

func main() {
	base := flag.String("url", "ws://127.0.0.1:9001", "the fuzzing server")
	agent := flag.String("agent", "gorilla", "agent name in the reports")
	flag.Parse()
	a := url.QueryEscape(*agent)

	conn, _, err := dialer.Dial(*base+"/getCaseCount", nil)
	if err != nil {
		log.Fatal(err)
	}
	_, msg, err := conn.ReadMessage()
	conn.Close()
	if err != nil {
		log.Fatal(err)
	}
	count, err := strconv.Atoi(string(msg))
	if err != nil {
		log.Fatalf("case count %q: %v", msg, err)
	}
	for n := 1; n <= count; n++ {
		runCase(fmt.Sprintf("%s/runCase?case=%d&agent=%s", *base, n, a))
	}
	conn, _, err = dialer.Dial(*base+"/updateReports?agent="+a, nil)
	if err != nil {
		log.Fatal(err)
	}
	for {
		if _, _, err := conn.ReadMessage(); err != nil {
			break
		}
	}
	conn.Close()
}

func runCase(u string) {
	conn, _, err := dialer.Dial(u, nil)
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
