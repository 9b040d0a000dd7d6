//go:build !linux

package websocket

import "errors"

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

func (*systemPoller) next() ([]sysEvent, error)               { return nil, errors.ErrUnsupported }
func (*systemPoller) ctl(int, int32, uint32, *sysEvent) error { return nil }
func (*systemPoller) close()                                  {}

func eventSocket(sysEvent) (int32, uint32) { return -1, 0 }
