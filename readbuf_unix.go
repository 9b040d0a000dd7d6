//go:build unix

package websocket

import (
	"net"
	"os"
	"syscall"
)

// rawConnOf returns the RawConn of a TCP or Unix-domain socket, and nil for
// anything else. Only these exact types qualify: a wrapper that merely
// embeds one may buffer or transform what it reads, and reading its socket
// underneath it would skip that.
func rawConnOf(nc net.Conn) syscall.RawConn {
	var sc syscall.Conn
	switch c := nc.(type) {
	case *net.TCPConn:
		sc = c
	case *net.UnixConn:
		sc = c
	default:
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	return rc
}

// readFD makes one read(2) on a non-blocking socket. wouldBlock reports
// that nothing was there to read yet.
func readFD(fd uintptr, p []byte) (n int, wouldBlock bool, err error) {
	return retryInterrupted("read", syscall.Read, fd, p)
}

// writeFD makes one write(2) on a non-blocking socket. wouldBlock reports
// a send buffer too full to take any of p.
func writeFD(fd uintptr, p []byte) (n int, wouldBlock bool, err error) {
	return retryInterrupted("write", syscall.Write, fd, p)
}

// retryInterrupted makes the system call op on fd, again if a signal
// interrupted it, and reports EAGAIN as wouldBlock rather than an error.
func retryInterrupted(op string, call func(int, []byte) (int, error), fd uintptr, p []byte) (n int, wouldBlock bool, err error) {
	for {
		n, err = call(int(fd), p)
		switch {
		case err == syscall.EINTR:
			continue
		case err == syscall.EAGAIN:
			return 0, true, nil
		case err != nil:
			return 0, false, os.NewSyscallError(op, err)
		}
		return n, false, nil
	}
}
