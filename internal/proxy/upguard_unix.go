//go:build unix

package proxy

import (
	"net"
	"syscall"
)

// upPeek looks at a transport connection's socket without consuming it.
type upPeek struct {
	raw     syscall.RawConn
	buf     [1]byte
	n       int
	errno   error
	peekFn  func(fd uintptr)
	blockFn func(fd uintptr) bool
}

// init prepares the peeks of c and reports whether c can be peeked.
func (p *upPeek) init(c net.Conn) bool {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return false
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	p.raw = raw
	p.peekFn = func(fd uintptr) {
		p.n, _, p.errno = syscall.Recvfrom(int(fd), p.buf[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
	}
	p.blockFn = func(fd uintptr) bool {
		p.peekFn(fd)
		return p.errno != syscall.EAGAIN && p.errno != syscall.EWOULDBLOCK
	}
	return true
}

// wait blocks until the socket has data, the instance's close or an error
// to read, consumes none of it, and reports whether it is data. Only the
// transport's reader calls it, from Read.
func (p *upPeek) wait() (data bool, err error) {
	if err := p.raw.Read(p.blockFn); err != nil {
		return false, err
	}
	return p.n > 0, nil
}

// waiting reports, without blocking, whether anything (data, the
// instance's close, an error) waits on the socket. It takes no read lock,
// so a reader parked in wait does not hold it up.
func (p *upPeek) waiting() bool {
	var errno error
	if err := p.raw.Control(func(fd uintptr) {
		var b [1]byte
		_, _, errno = syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
	}); err != nil {
		return true
	}
	return errno != syscall.EAGAIN && errno != syscall.EWOULDBLOCK
}
