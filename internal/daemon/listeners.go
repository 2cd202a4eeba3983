package daemon

import (
	"fmt"
	"net"
	"os"

	"github.com/cutover/cutover/internal/config"
	"github.com/cutover/cutover/internal/sockets"
)

// listenerWants lists every listener cfg configures, by its key, in the
// order the daemon opens them.
func listenerWants(cfg *config.Config) []sockets.Want {
	var wants []sockets.Want
	for _, name := range cfg.ServiceNames {
		sc := cfg.Services[name]
		wants = append(wants, sockets.Want{Name: sockets.Name(name, false), Addr: sc.Listen})
		if sc.PreviewListen != "" {
			wants = append(wants, sockets.Want{Name: sockets.Name(name, true), Addr: sc.PreviewListen})
		}
	}
	return append(wants, sockets.Want{Name: sockets.APIName, Addr: cfg.API.Listen})
}

// activatedListeners takes the sockets a supervisor passed by socket
// activation (LISTEN_FDS for this pid) and matches them to cfg's listeners.
// It unsets the activation variables whether or not they were for this
// process, so that no instance or hook inherits them. With nothing
// inherited every listener is bound as usual.
func activatedListeners(cfg *config.Config) (*sockets.Listeners, error) {
	socks, err := sockets.FromEnv(os.Getenv, os.Unsetenv, os.Getpid())
	if err != nil {
		return nil, err
	}
	return sockets.Match(socks, listenerWants(cfg))
}

// listen returns the listener for the configuration key name: the
// inherited socket when there is one, else a new one bound to addr.
func (d *Daemon) listen(name, addr string) (net.Listener, error) {
	ln, err := d.opts.Listeners.Listen(name, addr)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", name, addr, err)
	}
	return ln, nil
}
