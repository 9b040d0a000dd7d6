//go:build !unix

package websocket

import (
	"errors"
	"net"
	"syscall"
)

// rawConnOf returns nil: outside Unix every read goes through the net.Conn,
// and the buffer is held while a read waits.
func rawConnOf(net.Conn) syscall.RawConn { return nil }

func readFD(uintptr, []byte) (int, bool, error) { return 0, false, errors.ErrUnsupported }

func writeFD(uintptr, []byte) (int, bool, error) { return 0, false, errors.ErrUnsupported }
