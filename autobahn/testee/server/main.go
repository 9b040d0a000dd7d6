// Command server is the ws13 testee for the Autobahn fuzzingclient: a
// WebSocket echo server that sends every message back with its type.
//
//	go run ./autobahn/testee/server -addr 127.0.0.1:9001
//
// With -poller, connections are served by a websocket.Poller, whose
// handler reads one message and echoes it, instead of a goroutine each
// looping over Read: the same suite then checks the Poller's way of
// reading, which handles control frames itself between messages.
//
// Its read limit is large enough for the 16 MiB messages of group 9.
package main

import (
	"context"
	"errors"
	"flag"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"time"

	websocket "github.com/ws13/websocket"
)

// readLimit admits the largest message of the suite (16 MiB, case 9.1.6)
// with room to spare.
const readLimit = 64 << 20

func main() {
	addr := flag.String("addr", "127.0.0.1:9001", "listen address")
	usePoller := flag.Bool("poller", false, "serve connections with a websocket.Poller")
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
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	log.Printf("echo server on ws://%s", ln.Addr())
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := serve(ctx, ln, handler); err != nil {
		log.Fatal(err)
	}
}

func serve(ctx context.Context, ln net.Listener, handler http.Handler) error {
	srv := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		srv.Close()
	}()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

var acceptOptions = &websocket.AcceptOptions{
	InsecureSkipOriginCheck: true, // a test endpoint with no ambient authority
	ReadLimit:               readLimit,
	// Groups 12 and 13 offer every combination of parameters.
	Compression: websocket.CompressionOptions{Mode: websocket.CompressionContextTakeover},
}

// pollerEcho hands each connection to poller, whose handler echoes one
// message per call.
func pollerEcho(poller *websocket.Poller) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, acceptOptions)
		if err != nil {
			return
		}
		err = poller.Add(c, func(c *websocket.Conn) {
			typ, msg, err := c.Read(context.Background())
			if err != nil {
				return // answered or failed by the Conn already
			}
			c.Write(context.Background(), typ, msg)
		})
		if err != nil {
			c.CloseNow()
		}
	}
}

func echo(w http.ResponseWriter, r *http.Request) {
	c, err := websocket.Accept(w, r, acceptOptions)
	if err != nil {
		return
	}
	defer c.CloseNow()
	ctx := context.Background()
	for {
		typ, msg, err := c.Read(ctx)
		if err != nil {
			// The Conn has already answered the close or failed the
			// connection with the right code; nothing is left to do.
			return
		}
		if err := c.Write(ctx, typ, msg); err != nil {
			return
		}
	}
}
