module github.com/ws13/websocket

go 1.26
