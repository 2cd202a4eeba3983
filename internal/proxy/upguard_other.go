//go:build !unix

package proxy

import "net"

// upPeek cannot peek here: transport connections are not guarded.
type upPeek struct{}

func (p *upPeek) init(net.Conn) bool  { return false }
func (p *upPeek) wait() (bool, error) { return false, nil }
func (p *upPeek) waiting() bool       { return false }
