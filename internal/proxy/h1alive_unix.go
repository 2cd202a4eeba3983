//go:build unix

package proxy

import (
	"net"
	"syscall"
)

// idlePeek checks an idle connection without blocking: one recvfrom with
// MSG_PEEK. It is made once per connection (the raw connection and the
// callback are kept), so a check before each reuse allocates nothing.
type idlePeek struct {
	raw   syscall.RawConn // nil: the connection cannot be peeked
	fn    func(fd uintptr) bool
	clean bool
	buf   [1]byte
}

// init prepares the peek of c.
func (p *idlePeek) init(c net.Conn) {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return
	}
	p.raw = raw
	p.fn = func(fd uintptr) bool {
		_, _, err := syscall.Recvfrom(int(fd), p.buf[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		p.clean = err == syscall.EAGAIN || err == syscall.EWOULDBLOCK // nothing to read, not closed
		return true
	}
}

// isClean reports whether the connection may carry a request: the instance
// has neither closed it nor sent anything unasked (a byte waiting on an
// idle connection is an answer to no request, or the tail of one that
// said it was shorter). A connection that cannot be peeked counts as
// clean; its failures show when it is used.
func (p *idlePeek) isClean() bool {
	if p.raw == nil {
		return true
	}
	p.clean = false
	if err := p.raw.Read(p.fn); err != nil {
		return false
	}
	return p.clean
}
