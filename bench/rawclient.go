package bench

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"time"
)

// RawConn is one keep-alive HTTP/1.1 client connection driven by hand: the
// request is fixed bytes written to a net.Conn and the response is parsed
// from the status line, the headers and a Content-Length (or chunked) body.
// It never retries and never reconnects; after any error the caller must
// Close it and dial again. A RawConn is not safe for concurrent use.
type RawConn struct {
	conn net.Conn
	br   *bufio.Reader
	req  []byte
	// Timeout bounds one request from write to the last body byte.
	Timeout time.Duration
}

// Response is what RawConn.Do parsed from one response.
type Response struct {
	// Status is the numeric status code.
	Status int
	// Color is the X-Color header's value ("" when absent), copied.
	Color string
	// Close reports that the server announced "Connection: close"; the
	// connection is unusable after this response.
	Close bool
}

// DialRaw connects to addr ("host:port") and prepares a GET for path with
// the given Host header.
func DialRaw(addr, host, path string) (*RawConn, error) {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	req := []byte("GET " + path + " HTTP/1.1\r\nHost: " + host + "\r\nUser-Agent: cutover-switchtest\r\n\r\n")
	return &RawConn{conn: c, br: bufio.NewReaderSize(c, 4096), req: req, Timeout: 5 * time.Second}, nil
}

// Close closes the connection.
func (rc *RawConn) Close() error { return rc.conn.Close() }

// errProtocol marks a response that could not be parsed.
var errProtocol = errors.New("malformed HTTP response")

// Do sends the request once and reads its whole response. Any I/O error,
// including the server closing the connection before a complete response,
// is returned as is (io.EOF, io.ErrUnexpectedEOF, ...).
func (rc *RawConn) Do() (Response, error) {
	var resp Response
	if rc.Timeout > 0 {
		rc.conn.SetDeadline(time.Now().Add(rc.Timeout))
	}
	if _, err := rc.conn.Write(rc.req); err != nil {
		return resp, fmt.Errorf("write request: %w", err)
	}
	line, err := rc.br.ReadSlice('\n')
	if err != nil {
		return resp, fmt.Errorf("read status line: %w", err)
	}
	// "HTTP/1.1 200 OK\r\n"
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) || line[8] != ' ' {
		return resp, fmt.Errorf("%w: status line %q", errProtocol, line)
	}
	resp.Status, err = strconv.Atoi(string(line[9:12]))
	if err != nil {
		return resp, fmt.Errorf("%w: status line %q", errProtocol, line)
	}
	length, chunked, err := rc.readHeaders(&resp)
	if err != nil {
		return resp, err
	}
	switch {
	case chunked:
		err = rc.discardChunked()
	case length >= 0:
		_, err = rc.br.Discard(int(length))
	case resp.Status == 204 || resp.Status == 304 || resp.Status/100 == 1:
	default:
		// No length: the body runs to the end of the connection, which a
		// keep-alive client cannot accept.
		err = fmt.Errorf("%w: response without Content-Length", errProtocol)
	}
	if err != nil {
		return resp, fmt.Errorf("read body: %w", err)
	}
	return resp, nil
}

// readHeaders consumes the header block and returns the Content-Length (-1
// when absent) and whether the body is chunked.
func (rc *RawConn) readHeaders(resp *Response) (length int64, chunked bool, err error) {
	length = -1
	for {
		line, err := rc.br.ReadSlice('\n')
		if err != nil {
			return 0, false, fmt.Errorf("read headers: %w", err)
		}
		if len(line) <= 2 { // "\r\n" ends the block
			return length, chunked, nil
		}
		colon := bytes.IndexByte(line, ':')
		if colon < 0 {
			return 0, false, fmt.Errorf("%w: header %q", errProtocol, line)
		}
		name := line[:colon]
		value := bytes.TrimSpace(line[colon+1:])
		switch {
		case bytes.EqualFold(name, []byte("Content-Length")):
			length, err = strconv.ParseInt(string(value), 10, 64)
			if err != nil || length < 0 {
				return 0, false, fmt.Errorf("%w: Content-Length %q", errProtocol, value)
			}
		case bytes.EqualFold(name, []byte("X-Color")):
			resp.Color = colorName(value)
		case bytes.EqualFold(name, []byte("Transfer-Encoding")):
			chunked = bytes.EqualFold(value, []byte("chunked"))
		case bytes.EqualFold(name, []byte("Connection")):
			resp.Close = bytes.EqualFold(value, []byte("close"))
		}
	}
}

// colorName returns the two known colours without allocating.
func colorName(v []byte) string {
	switch string(v) {
	case "blue":
		return "blue"
	case "green":
		return "green"
	}
	return string(v)
}

// discardChunked reads a chunked body and its trailer.
func (rc *RawConn) discardChunked() error {
	for {
		line, err := rc.br.ReadSlice('\n')
		if err != nil {
			return err
		}
		size := bytes.TrimSpace(line)
		if i := bytes.IndexByte(size, ';'); i >= 0 {
			size = size[:i]
		}
		n, err := strconv.ParseInt(string(size), 16, 64)
		if err != nil || n < 0 {
			return fmt.Errorf("%w: chunk size %q", errProtocol, line)
		}
		if n == 0 {
			break
		}
		if _, err := rc.br.Discard(int(n) + 2); err != nil {
			return err
		}
	}
	for { // trailer lines up to the empty one
		line, err := rc.br.ReadSlice('\n')
		if err != nil {
			if errors.Is(err, io.EOF) {
				return io.ErrUnexpectedEOF
			}
			return err
		}
		if len(line) <= 2 {
			return nil
		}
	}
}
