// Package sockets gives the daemon listening sockets that someone else
// bound: a supervisor using systemd-style socket activation (LISTEN_FDS), or
// the previous daemon during an upgrade (file descriptors passed over a unix
// socket with SCM_RIGHTS, see Conn). It matches them to the addresses the
// configuration names and binds whatever was not inherited.
//
// A listener is known by its configuration key: "api.listen",
// "services.NAME.listen" and "services.NAME.preview_listen" (see Name). An
// inherited socket is assigned to a listener by its local address; when it
// carries a name (LISTEN_FDNAMES, or the name the previous daemon sent) that
// is a listener's key, it belongs to that listener and its address must
// agree. An inherited socket that no listener takes is an error that names
// it, so a socket unit and a configuration that drifted apart are noticed at
// start instead of leaving a port that accepts connections nobody serves.
//
// Listeners is safe for concurrent use.
package sockets

import (
	"errors"
	"fmt"
	"net"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
)

// Socket is one inherited listening socket and the name it came with ("" when
// none).
type Socket struct {
	Name     string
	Listener net.Listener
}

// Want is a listener the daemon needs: its configuration key and the address
// configured for it.
type Want struct {
	Name string
	Addr string
}

// Name returns the key of a service's listener: "services.web.listen", or
// "services.web.preview_listen" when preview is set.
func Name(service string, preview bool) string {
	if preview {
		return "services." + service + ".preview_listen"
	}
	return "services." + service + ".listen"
}

// APIName is the key of the control API's listener.
const APIName = "api.listen"

// Environment variables of systemd's socket activation protocol
// (sd_listen_fds(3)).
const (
	envPID     = "LISTEN_PID"
	envFDs     = "LISTEN_FDS"
	envFDNames = "LISTEN_FDNAMES"
	firstFD    = 3
)

// FromEnv returns the sockets passed by socket activation: when LISTEN_PID is
// pid and LISTEN_FDS is set, the listening sockets on descriptors 3 to
// 3+LISTEN_FDS-1, named by LISTEN_FDNAMES (colon-separated) when given. It
// unsets the three variables in every case, so that no child (an instance, a
// hook, the next daemon) takes them for its own, and marks the descriptors
// close-on-exec. A LISTEN_PID of another process means the variables were
// meant for someone else: FromEnv returns nothing. A descriptor that is not a
// listening TCP socket is an error.
func FromEnv(getenv func(string) string, unsetenv func(string) error, pid int) ([]Socket, error) {
	pidVar, fdsVar, namesVar := getenv(envPID), getenv(envFDs), getenv(envFDNames)
	for _, k := range []string{envPID, envFDs, envFDNames} {
		_ = unsetenv(k) // os.Unsetenv never fails on Linux
	}
	if fdsVar == "" || pidVar == "" {
		return nil, nil
	}
	if p, err := strconv.Atoi(pidVar); err != nil || p != pid {
		return nil, nil
	}
	n, err := strconv.Atoi(fdsVar)
	if err != nil || n < 0 {
		return nil, fmt.Errorf("socket activation: LISTEN_FDS=%q is not a count", fdsVar)
	}
	var names []string
	if namesVar != "" {
		names = strings.Split(namesVar, ":")
	}
	var socks []Socket
	for i := range n {
		fd := firstFD + i
		syscall.CloseOnExec(fd)
		name := ""
		if i < len(names) {
			name = names[i]
		}
		ln, err := listenerFromFD(fd, name)
		if err != nil {
			CloseAll(socks)
			return nil, fmt.Errorf("socket activation: %w", err)
		}
		socks = append(socks, Socket{Name: name, Listener: ln})
	}
	return socks, nil
}

// listenerFromFD turns descriptor fd into a listener and closes fd (the
// listener holds its own close-on-exec duplicate).
func listenerFromFD(fd int, name string) (net.Listener, error) {
	f := os.NewFile(uintptr(fd), describe(fd, name))
	defer f.Close()
	return fileListener(f)
}

func fileListener(f *os.File) (net.Listener, error) {
	ln, err := net.FileListener(f)
	if err != nil {
		return nil, fmt.Errorf("%s is not a listening socket: %w", f.Name(), err)
	}
	if _, ok := ln.(*net.TCPListener); !ok {
		ln.Close()
		return nil, fmt.Errorf("%s is not a TCP socket (%s)", f.Name(), ln.Addr().Network())
	}
	return ln, nil
}

func describe(fd int, name string) string {
	if name != "" {
		return fmt.Sprintf("fd %d (%s)", fd, name)
	}
	return fmt.Sprintf("fd %d", fd)
}

// CloseAll closes every socket's listener.
func CloseAll(socks []Socket) {
	for _, s := range socks {
		s.Listener.Close()
	}
}

// Listeners hands out the listeners of one daemon run: the inherited one
// that Match assigned to a name, or a newly bound one. It remembers every
// listener it handed out, by name, for the next daemon (Handed). A nil
// *Listeners binds everything.
type Listeners struct {
	mu     sync.Mutex
	taken  map[string]net.Listener // assigned by Match, not yet handed out
	handed map[string]net.Listener
}

// Match assigns socks to wants. A socket whose name is a want's name goes to
// that want, and its address must agree with the configured one (a
// configured port 0 agrees with any port); any other socket goes to the want
// whose configured address is its local address. A socket that no want
// takes, two sockets for one want, and a named socket on the wrong address
// are errors; then every socket is closed.
func Match(socks []Socket, wants []Want) (*Listeners, error) {
	l := &Listeners{taken: map[string]net.Listener{}, handed: map[string]net.Listener{}}
	byName := map[string]Want{}
	for _, w := range wants {
		byName[w.Name] = w
	}
	var errs []error
	assign := func(w Want, s Socket) {
		if _, dup := l.taken[w.Name]; dup {
			errs = append(errs, fmt.Errorf("two inherited sockets for %s (%s): %s", w.Name, w.Addr, label(s)))
			return
		}
		l.taken[w.Name] = s.Listener
	}
	for _, s := range socks {
		if w, ok := byName[s.Name]; ok {
			if !addrAgrees(w.Addr, s.Listener.Addr(), true) {
				errs = append(errs, fmt.Errorf("inherited socket %s is for %s, which is configured as %s", label(s), w.Name, w.Addr))
				continue
			}
			assign(w, s)
			continue
		}
		found := false
		for _, w := range wants {
			if addrAgrees(w.Addr, s.Listener.Addr(), false) {
				assign(w, s)
				found = true
				break
			}
		}
		if !found {
			errs = append(errs, fmt.Errorf("inherited socket %s matches no listener in the configuration (%s)", label(s), wantList(wants)))
		}
	}
	if err := errors.Join(errs...); err != nil {
		CloseAll(socks)
		return nil, err
	}
	return l, nil
}

func label(s Socket) string {
	if s.Name != "" {
		return fmt.Sprintf("%q on %s", s.Name, s.Listener.Addr())
	}
	return s.Listener.Addr().String()
}

func wantList(wants []Want) string {
	parts := make([]string, len(wants))
	for i, w := range wants {
		parts[i] = w.Name + " " + w.Addr
	}
	return strings.Join(parts, ", ")
}

// addrAgrees reports whether the configured address want is where got
// listens. An unspecified host (":8080", "0.0.0.0:8080", "[::]:8080") agrees
// with an unspecified address of either family; a host name is resolved.
// A configured port 0 agrees with any port only when anyPort is set (the
// socket was matched by name): by address alone it matches nothing.
func addrAgrees(want string, got net.Addr, anyPort bool) bool {
	g, ok := got.(*net.TCPAddr)
	if !ok {
		return false
	}
	w, err := net.ResolveTCPAddr("tcp", want)
	if err != nil {
		return false
	}
	switch {
	case w.Port == 0 && !anyPort:
		return false
	case w.Port != 0 && w.Port != g.Port:
		return false
	}
	if w.IP == nil || w.IP.IsUnspecified() {
		return g.IP == nil || g.IP.IsUnspecified()
	}
	return w.IP.Equal(g.IP)
}

// Listen returns the listener for name: the inherited one Match assigned to
// it, or else a new one bound to addr.
func (l *Listeners) Listen(name, addr string) (net.Listener, error) {
	if l == nil {
		return net.Listen("tcp", addr)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if ln, ok := l.taken[name]; ok {
		delete(l.taken, name)
		l.handed[name] = ln
		return ln, nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	l.handed[name] = ln
	return ln, nil
}

// Release forgets the listener handed out for name (a service removed by
// a reload), so that an upgrade no longer passes it on; the caller closes
// it. A name never handed out is ignored.
func (l *Listeners) Release(name string) {
	if l == nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.handed, name)
}

// Replace records ln as the listener handed out for name (a listen
// address changed by a reload, bound by the caller), so that an upgrade
// passes it on instead of the one it replaces.
func (l *Listeners) Replace(name string, ln net.Listener) {
	if l == nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.handed[name] = ln
}

// Inherited reports whether name was assigned an inherited socket (whether or
// not it has been handed out yet).
func (l *Listeners) Inherited(name string) bool {
	if l == nil {
		return false
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	_, ok := l.taken[name]
	return ok
}

// Close closes the inherited sockets that were never handed out (a start
// that failed before binding everything).
func (l *Listeners) Close() {
	if l == nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for name, ln := range l.taken {
		ln.Close()
		delete(l.taken, name)
	}
}

// NamedFile is a duplicate of a listening socket and its listener's key.
type NamedFile struct {
	Name string
	File *os.File
}

// Files returns duplicates of every listener handed out so far, sorted by
// name, for passing to the next daemon. The caller closes them. A listener
// that is already closed is an error.
func (l *Listeners) Files() ([]NamedFile, error) {
	if l == nil {
		return nil, nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	names := make([]string, 0, len(l.handed))
	for name := range l.handed {
		names = append(names, name)
	}
	sort.Strings(names)
	var files []NamedFile
	for _, name := range names {
		tl, ok := l.handed[name].(*net.TCPListener)
		if !ok {
			CloseFiles(files)
			return nil, fmt.Errorf("listener %s is not a TCP listener", name)
		}
		f, err := tl.File()
		if err != nil {
			CloseFiles(files)
			return nil, fmt.Errorf("duplicate listener %s (%s): %w", name, tl.Addr(), err)
		}
		files = append(files, NamedFile{Name: name, File: f})
	}
	return files, nil
}

// CloseFiles closes every file.
func CloseFiles(files []NamedFile) {
	for _, f := range files {
		f.File.Close()
	}
}
