// Command client is the ws13 testee for the Autobahn fuzzingserver: it asks
// the server how many cases there are, runs each one by echoing every
// message with its type, then asks for the reports to be written.
//
//	go run ./autobahn/testee/client -url ws://127.0.0.1:9001 -agent ws13
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"net/url"
	"strconv"
	"strings"
	"time"

	websocket "github.com/ws13/websocket"
)

// readLimit admits the largest message of the suite (16 MiB, case 9.1.6).
const readLimit = 64 << 20

func main() {
	base := flag.String("url", "ws://127.0.0.1:9001", "fuzzing server URL")
	agent := flag.String("agent", "ws13", "agent name in the reports")
	flag.Parse()
	if err := run(*base, *agent); err != nil {
		log.Fatal(err)
	}
}

func dial(rawURL string) (*websocket.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, rawURL, &websocket.DialOptions{
		ReadLimit:   readLimit,
		Compression: websocket.CompressionOptions{Mode: websocket.CompressionContextTakeover},
	})
	return c, err
}

// readOne reads the single text message of a service endpoint
// (/getCaseCount) and lets the server close.
func readOne(rawURL string) (string, error) {
	c, err := dial(rawURL)
	if err != nil {
		return "", err
	}
	defer c.CloseNow()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, msg, err := c.Read(ctx)
	if err != nil {
		return "", err
	}
	c.Read(ctx) // answers the server's close frame
	return string(msg), nil
}

func run(base, agent string) error {
	s, err := readOne(base + "/getCaseCount")
	if err != nil {
		return fmt.Errorf("getCaseCount: %w", err)
	}
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil {
		return fmt.Errorf("getCaseCount: %q: %w", s, err)
	}
	q := url.QueryEscape(agent)
	for i := 1; i <= n; i++ {
		log.Printf("case %d/%d", i, n)
		if err := echoCase(fmt.Sprintf("%s/runCase?case=%d&agent=%s", base, i, q)); err != nil {
			log.Printf("case %d: %v", i, err)
		}
	}
	c, err := dial(base + "/updateReports?agent=" + q)
	if err != nil {
		return fmt.Errorf("updateReports: %w", err)
	}
	defer c.CloseNow()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c.Read(ctx) // the server closes once the reports are written
	return nil
}

// echoCase echoes messages until the connection ends. The runner bounds
// every case in time, so the read loop ends too.
func echoCase(rawURL string) error {
	c, err := dial(rawURL)
	if err != nil {
		return err
	}
	defer c.CloseNow()
	ctx := context.Background()
	for {
		typ, msg, err := c.Read(ctx)
		if err != nil {
			return nil
		}
		if err := c.Write(ctx, typ, msg); err != nil {
			return nil
		}
	}
}
