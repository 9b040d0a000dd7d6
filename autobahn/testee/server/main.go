// Command server is the ws13 testee for the Autobahn fuzzingclient: a
// WebSocket echo server that sends every message back with its type.
//
//	go run ./autobahn/testee/server -addr 127.0.0.1:9001
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
	flag.Parse()
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	log.Printf("echo server on ws://%s", ln.Addr())
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := serve(ctx, ln); err != nil {
		log.Fatal(err)
	}
}

func serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{Handler: http.HandlerFunc(echo), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		srv.Close()
	}()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

func echo(w http.ResponseWriter, r *http.Request) {
	c, err := websocket.Accept(w, r, &websocket.AcceptOptions{
		InsecureSkipOriginCheck: true, // a test endpoint with no ambient authority
		ReadLimit:               readLimit,
		// Groups 12 and 13 offer every combination of parameters.
		Compression: websocket.CompressionOptions{Mode: websocket.CompressionContextTakeover},
	})
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
