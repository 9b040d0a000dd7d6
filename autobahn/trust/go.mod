module github.com/ws13/websocket/autobahn/trust

go 1.26

require (
	github.com/gorilla/websocket v1.5.3
	github.com/ws13/websocket v0.0.0-00010101000000-000000000000
)

replace github.com/ws13/websocket => ../..
