//go:build !unix

package proxy

import "net"

// idlePeek cannot peek here.
type idlePeek struct{}

func (p *idlePeek) init(net.Conn) {}

// isClean reports false: without a way to look at an idle connection,
// stray bytes on it cannot be ruled out, so no connection is reused.
func (p *idlePeek) isClean() bool { return false }
