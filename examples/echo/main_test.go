package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/ws13/websocket"
)

// Both ways of serving echo every message back with its type.
func TestEcho(t *testing.T) {
	poller, err := websocket.NewPoller()
	if err != nil {
		t.Fatal(err)
	}
	defer poller.Close()
	for name, handler := range map[string]http.Handler{
		"read loop": http.HandlerFunc(echo),
		"poller":    pollerEcho(poller),
	} {
		t.Run(name, func(t *testing.T) {
			srv := httptest.NewServer(handler)
			defer srv.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http"), nil)
			if err != nil {
				t.Fatal(err)
			}
			defer c.CloseNow()
			for i, msg := range []string{"hello", "", strings.Repeat("x", 70000)} {
				typ := websocket.MessageText
				if i == 1 {
					typ = websocket.MessageBinary
				}
				if err := c.Write(ctx, typ, []byte(msg)); err != nil {
					t.Fatal(err)
				}
				gotTyp, got, err := c.Read(ctx)
				if err != nil || gotTyp != typ || string(got) != msg {
					t.Fatalf("echo of %d bytes: %v %d bytes, %v", len(msg), gotTyp, len(got), err)
				}
			}
			if err := c.Close(websocket.StatusNormalClosure, ""); err != nil {
				t.Errorf("Close: %v", err)
			}
		})
	}
}
