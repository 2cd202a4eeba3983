// Package testsupport holds helpers shared by the tests of several
// packages. It is imported only from _test.go files and never reaches the
// cutover binary (TestNotInBinary in cmd/cutover checks that).
package testsupport

import (
	"bytes"
	"sync"
)

// Buffer is a bytes.Buffer that concurrent writers (a child process's
// stdout and stderr copiers, a logger) and a reading test may share. The
// zero value is ready to use.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p.
func (s *Buffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String returns everything written so far.
func (s *Buffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
