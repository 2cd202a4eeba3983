//go:build unix

package proxy

import (
	"net"
	"syscall"
)

// connAlive reports whether an idle connection may still carry a request:
// the instance has neither closed it nor sent anything unasked. It peeks
// without blocking, one system call.
func connAlive(c net.Conn) bool {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return true
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	alive := true
	var buf [1]byte
	err = rc.Read(func(fd uintptr) bool {
		_, _, rerr := syscall.Recvfrom(int(fd), buf[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		alive = rerr == syscall.EAGAIN || rerr == syscall.EWOULDBLOCK // nothing to read, not closed
		return true
	})
	return err == nil && alive
}
