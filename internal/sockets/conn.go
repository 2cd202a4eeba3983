package sockets

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"syscall"
	"time"
)

// maxFiles bounds the descriptors one message carries (a daemon has one API
// listener and two per service).
const maxFiles = 250

// maxMessage bounds one message's JSON.
const maxMessage = 64 << 10

// Conn is one end of the channel between a daemon and the one that replaces
// it: a unix SOCK_SEQPACKET socket, so each Send arrives whole in one Receive
// together with the descriptors it carries (SCM_RIGHTS). A Conn is safe for
// one sender and one receiver at a time.
type Conn struct {
	c *net.UnixConn
}

// Pair returns a connected pair: a Conn for this process, and the other end
// as a file to hand to a child process (exec.Cmd.ExtraFiles), which opens it
// with FileConn. The caller closes the file once the child has started.
func Pair() (*Conn, *os.File, error) {
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_SEQPACKET|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("socketpair: %w", err)
	}
	c, err := FileConn(os.NewFile(uintptr(fds[0]), "handover"))
	if err != nil {
		syscall.Close(fds[1])
		return nil, nil, err
	}
	return c, os.NewFile(uintptr(fds[1]), "handover"), nil
}

// FileConn makes a Conn of f, one end of a Pair, and closes f (the Conn holds
// its own duplicate).
func FileConn(f *os.File) (*Conn, error) {
	defer f.Close()
	c, err := net.FileConn(f)
	if err != nil {
		return nil, fmt.Errorf("hand-over channel %s: %w", f.Name(), err)
	}
	uc, ok := c.(*net.UnixConn)
	if !ok {
		c.Close()
		return nil, fmt.Errorf("hand-over channel %s is not a unix socket", f.Name())
	}
	return &Conn{c: uc}, nil
}

// Send sends msg as JSON with duplicates of files attached. The files stay
// open; the caller closes them.
func (c *Conn) Send(msg any, files []*os.File) error {
	if len(files) > maxFiles {
		return fmt.Errorf("send %d descriptors: at most %d", len(files), maxFiles)
	}
	b, err := json.Marshal(msg)
	if err != nil {
		return err
	}
	if len(b) > maxMessage {
		return fmt.Errorf("message of %d bytes: at most %d", len(b), maxMessage)
	}
	fds := make([]int, 0, len(files))
	for _, f := range files {
		fd, err := rawFD(f)
		if err != nil {
			return err
		}
		fds = append(fds, fd)
	}
	var oob []byte
	if len(fds) > 0 {
		oob = syscall.UnixRights(fds...)
	}
	_, _, err = c.c.WriteMsgUnix(b, oob, nil)
	// The descriptors must stay open until the kernel copied them.
	for _, f := range files {
		runtime.KeepAlive(f)
	}
	if err != nil {
		return fmt.Errorf("send over hand-over channel: %w", err)
	}
	return nil
}

// rawFD returns f's descriptor without putting it in blocking mode (which
// os.File.Fd would do, and which a socket shares with every duplicate,
// including the listener still serving in this process).
func rawFD(f *os.File) (int, error) {
	sc, err := f.SyscallConn()
	if err != nil {
		return 0, fmt.Errorf("descriptor of %s: %w", f.Name(), err)
	}
	fd := -1
	if err := sc.Control(func(u uintptr) { fd = int(u) }); err != nil {
		return 0, fmt.Errorf("descriptor of %s: %w", f.Name(), err)
	}
	return fd, nil
}

// ErrClosed is returned (wrapped) by Receive when the other end closed the
// channel or exited.
var ErrClosed = errors.New("hand-over channel closed by the other process")

// Receive reads one message into msg and returns the files attached to it,
// close-on-exec; the caller owns them.
func (c *Conn) Receive(msg any) ([]*os.File, error) {
	buf := make([]byte, maxMessage)
	oob := make([]byte, syscall.CmsgSpace(4*maxFiles))
	n, oobn, _, _, err := c.c.ReadMsgUnix(buf, oob)
	if errors.Is(err, io.EOF) {
		return nil, ErrClosed
	}
	if err != nil {
		return nil, fmt.Errorf("receive over hand-over channel: %w", err)
	}
	files, ferr := parseRights(oob[:oobn])
	if n == 0 && oobn == 0 {
		return nil, ErrClosed
	}
	if ferr != nil {
		closeAllFiles(files)
		return nil, ferr
	}
	if err := json.Unmarshal(buf[:n], msg); err != nil {
		closeAllFiles(files)
		return nil, fmt.Errorf("receive over hand-over channel: %w", err)
	}
	return files, nil
}

func parseRights(oob []byte) ([]*os.File, error) {
	if len(oob) == 0 {
		return nil, nil
	}
	msgs, err := syscall.ParseSocketControlMessage(oob)
	if err != nil {
		return nil, fmt.Errorf("receive descriptors: %w", err)
	}
	var files []*os.File
	for _, m := range msgs {
		fds, err := syscall.ParseUnixRights(&m)
		if err != nil {
			return files, fmt.Errorf("receive descriptors: %w", err)
		}
		for _, fd := range fds {
			syscall.CloseOnExec(fd)
			files = append(files, os.NewFile(uintptr(fd), fmt.Sprintf("received fd %d", fd)))
		}
	}
	return files, nil
}

func closeAllFiles(files []*os.File) {
	for _, f := range files {
		f.Close()
	}
}

// SetDeadline bounds the next Send and Receive.
func (c *Conn) SetDeadline(t time.Time) error { return c.c.SetDeadline(t) }

// Close closes this end; the other end's Receive then returns ErrClosed.
func (c *Conn) Close() error { return c.c.Close() }

// Listen turns received files into sockets named by names (same order), and
// closes the files. A file that is not a listening TCP socket is an error;
// then nothing is kept open.
func Listen(files []*os.File, names []string) ([]Socket, error) {
	defer closeAllFiles(files)
	if len(files) != len(names) {
		return nil, fmt.Errorf("received %d sockets for %d names", len(files), len(names))
	}
	var socks []Socket
	for i, f := range files {
		ln, err := fileListener(f)
		if err != nil {
			CloseAll(socks)
			return nil, fmt.Errorf("socket %s: %w", names[i], err)
		}
		socks = append(socks, Socket{Name: names[i], Listener: ln})
	}
	return socks, nil
}
