module github.com/ws13/websocket/interop

go 1.26

replace github.com/ws13/websocket => ../

require (
	github.com/coder/websocket v1.8.15
	github.com/gorilla/websocket v1.5.3
	github.com/ws13/websocket v0.0.0-00010101000000-000000000000
)
