//go:build !linux

package websocket

// systemPoller is Linux's epoll (poll_linux.go). Elsewhere there is none,
// and a Poller serves each connection with a goroutine that waits in Read.
type systemPoller struct{}

type sysEvent struct{}

const (
	ctlAdd = iota
	ctlRearm
	ctlRemove
)

func newSystemPoller() (*systemPoller, error) { return nil, nil }

func (*systemPoller) wait(func(int32, uint32))                {}
func (*systemPoller) ctl(int, int32, uint32, *sysEvent) error { return nil }
func (*systemPoller) close()                                  {}
