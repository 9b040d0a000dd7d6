package hub_test

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/ws13/websocket"
	"github.com/ws13/websocket/hub"
)

// A chat room: every message a member sends goes to every member, the
// sender included, in the same order for all.
func Example() {
	h := hub.New(nil)
	defer h.Close()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		m, err := h.Join(c)
		if err != nil {
			c.Close(websocket.StatusGoingAway, "shutting down")
			return
		}
		defer m.Leave() // closes c and waits for its writer
		for {
			typ, msg, err := c.Read(r.Context())
			if err != nil {
				return
			}
			h.Broadcast(r.Context(), typ, msg) // msg is ours to give away: Read allocated it
		}
	}))
	defer srv.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	url := "ws" + strings.TrimPrefix(srv.URL, "http")
	var clients []*websocket.Conn
	for range 3 {
		c, _, err := websocket.Dial(ctx, url, nil)
		if err != nil {
			log.Fatal(err)
		}
		defer c.CloseNow()
		clients = append(clients, c)
	}
	// A member counts once its handler has joined it; a client's first
	// message waits until all three have.
	for h.Len() < 3 && ctx.Err() == nil {
		time.Sleep(time.Millisecond)
	}
	clients[0].Write(ctx, websocket.MessageText, []byte("hello, room"))
	for i, c := range clients {
		_, msg, err := c.Read(ctx)
		fmt.Println(i, string(msg), err)
	}
	// Output:
	// 0 hello, room <nil>
	// 1 hello, room <nil>
	// 2 hello, room <nil>
}
