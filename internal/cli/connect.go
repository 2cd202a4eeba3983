package cli

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/cutover/cutover/internal/api/client"
)

// This file finds the daemon a command talks to. In order, the first that
// is set wins:
//
//	address: --api, CUTOVER_API, api.listen of the config, DefaultAPI
//	token:   CUTOVER_TOKEN, the file api.token_file of the config names
//
// The config is the file -c names, else ./cutover.yaml when it exists. It
// is read only when the flags and the environment leave something open.

// conn is where a command finds the daemon, and where that came from, so
// that an error can say which setting to change.
type conn struct {
	url     string
	urlFrom string // "--api", "CUTOVER_API", "api.listen of FILE" or "" (the default)
	token   string
	// tokenNote says why the config's token file gave no token; "" when
	// it did or when the config names none.
	tokenNote string
}

// apiSection is the part of a config file the CLI reads.
type apiSection struct {
	API struct {
		Listen    string `yaml:"listen"`
		TokenFile string `yaml:"token_file"`
	} `yaml:"api"`
}

// connection resolves where to find the daemon, once per invocation. A
// config that cannot be read or parsed is reported in one line on stderr
// and the defaults apply: a command must not fail over a file it may not
// need (--api may be given, the daemon may take no token).
func (a *app) connection() conn {
	if a.conn != nil {
		return *a.conn
	}
	c := conn{url: a.api, urlFrom: "--api", token: a.getenv("CUTOVER_TOKEN")}
	if c.url == "" {
		c.url, c.urlFrom = a.getenv("CUTOVER_API"), "CUTOVER_API"
	}
	if c.url == "" || c.token == "" {
		a.fromConfig(&c)
	}
	if c.url == "" {
		c.url, c.urlFrom = DefaultAPI, ""
	}
	a.conn = &c
	return c
}

// fromConfig fills what c lacks from the config file's api section.
func (a *app) fromConfig(c *conn) {
	path, explicit := a.opts.daemonConfig, a.opts.daemonConfig != ""
	if !explicit {
		path = DefaultConfig
	}
	sec, err := readAPISection(path)
	switch {
	case err == nil:
	case !explicit && errors.Is(err, fs.ErrNotExist):
		return // no ./cutover.yaml: nothing to say
	default:
		fmt.Fprintf(a.stderr, "cutover: config %s ignored: %v\n", path, err)
		return
	}
	if c.url == "" && sec.API.Listen != "" {
		url, err := clientURL(sec.API.Listen)
		if err != nil {
			fmt.Fprintf(a.stderr, "cutover: api.listen %q of %s ignored: %v\n", sec.API.Listen, path, err)
		} else {
			c.url, c.urlFrom = url, "api.listen of "+path
		}
	}
	if c.token == "" && sec.API.TokenFile != "" {
		c.token, c.tokenNote = readTokenFile(path, sec.API.TokenFile)
	}
}

// readAPISection reads the api section of a config file. It decodes
// leniently, unlike config.Load: the client needs two keys, and must find
// its daemon even when a service's section holds something only the
// daemon's host can resolve (a command, a certificate) or a key a newer
// cutover added.
func readAPISection(path string) (apiSection, error) {
	var sec apiSection
	data, err := os.ReadFile(path)
	if err != nil {
		return sec, err
	}
	if err := yaml.Unmarshal(data, &sec); err != nil {
		return sec, errors.New(oneLine(err.Error()))
	}
	return sec, nil
}

// clientURL turns an api.listen address into the URL a client on this
// host reaches it at: a wildcard host ("0.0.0.0:7070", ":7070", "[::]:7070")
// listens on loopback too, and is dialled there.
func clientURL(listen string) (string, error) {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return "", errors.New("want host:port")
	}
	if host == "" {
		host = "127.0.0.1"
	} else if ip, err := netip.ParseAddr(host); err == nil && ip.IsUnspecified() {
		host = "127.0.0.1"
		if ip.Is6() {
			host = "::1"
		}
	}
	return "http://" + net.JoinHostPort(host, port), nil
}

// readTokenFile reads the token file a config names (relative to the
// config's directory), returning the token or why there is none.
func readTokenFile(config, file string) (token, note string) {
	if !filepath.IsAbs(file) {
		file = filepath.Join(filepath.Dir(config), file)
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Sprintf("api.token_file of %s is not readable: %v", config, err)
	}
	if tok := strings.TrimSpace(string(b)); tok != "" {
		return tok, ""
	}
	return "", fmt.Sprintf("api.token_file %s of %s is empty", file, config)
}

// client returns the API client of the daemon that connection finds.
func (a *app) client() *client.Client {
	c := a.connection()
	// No overall timeout: streams (events, logs) last as long as ctx.
	return client.New(c.url, c.token, &http.Client{})
}

// unreachableHint says where the address came from and how to change it.
func (c conn) unreachableHint() string {
	from := "the default"
	if c.urlFrom != "" {
		from = "from " + c.urlFrom
	}
	return fmt.Sprintf("%s; is `cutover serve` running? set --api, CUTOVER_API or -c FILE to point elsewhere", from)
}

// tokenHint says how to give the token the daemon asked for.
func (c conn) tokenHint() string {
	if c.tokenNote != "" {
		return "the daemon requires a token: set CUTOVER_TOKEN; " + c.tokenNote
	}
	return "the daemon requires a token: set CUTOVER_TOKEN, or api.token_file in the config (-c FILE or ./cutover.yaml)"
}
