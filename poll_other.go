//go:build !linux

package websocket

// systemPoller is Linux's epoll (poll_linux.go). Elsewhere there is none,
// and a Poller serves each connection with a goroutine that waits in Read.
type systemPoller struct{}

func newSystemPoller() (*systemPoller, error) { return nil, nil }

func (*systemPoller) wait(func(int32, uint32))  {}
func (*systemPoller) add(int32, uint32) error   { return nil }
func (*systemPoller) rearm(int32, uint32) error { return nil }
func (*systemPoller) remove(int32)              {}
func (*systemPoller) close()                    {}
