// Command fakessh stands in for ssh in the tests of ssh:// Docker hosts:
// it appends its arguments to $FAKESSH_ARGS and then, as
// `docker system dial-stdio` does on a real host, joins its standard input
// and output to the engine socket $FAKESSH_SOCKET.
package main

import (
	"io"
	"net"
	"os"
	"strings"
)

func main() {
	f, err := os.OpenFile(os.Getenv("FAKESSH_ARGS"), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		os.Exit(255)
	}
	f.WriteString(strings.Join(os.Args[1:], " ") + "\n")
	f.Close()
	c, err := net.Dial("unix", os.Getenv("FAKESSH_SOCKET"))
	if err != nil {
		os.Exit(255)
	}
	done := make(chan struct{})
	go func() { io.Copy(c, os.Stdin); c.(*net.UnixConn).CloseWrite(); <-done; os.Exit(0) }()
	io.Copy(os.Stdout, c)
	close(done)
}
