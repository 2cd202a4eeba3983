// Package config turns cutover.yaml into a Config: it decodes strictly
// (unknown keys, wrong types and unparsable values are errors), applies the
// defaults kept in one place (defaults.go), resolves relative paths against
// the config file's directory, and validates, reporting every problem at
// once with file:line.
//
// Load and Parse share no state and are safe to call concurrently. A
// returned *Config is plain data: callers must not modify one that other
// goroutines read.
//
// Units: durations are Go durations ("30s", "1m30s", "1h"); a bare 0 is
// accepted as no time. Percentages (analysis.max_error_rate) are written
// "1%", "0.5%" or as a bare number meaning percent (1 is 1%, 0.5 is 0.5%)
// and stored as a fraction (0.01). Step weights are percent of traffic and
// stay in percent (10 is 10%, "10%" is accepted too); each is above the
// previous step's, at most 100 and a multiple of 0.01 (MinWeight), the
// finest share the router can split. A step whose pause is
// absent, null, "" or "manual" is a manual gate that holds until
// `cutover promote`. A hook list's entries are shell commands (strings)
// and webhooks ({url: ..., timeout: ...}), mixed; a single entry is
// accepted as a list of one.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Load reads the configuration file at path and returns it with defaults
// applied, relative paths made absolute and every check passed. A file
// that cannot be read gives the read error (errors.Is(err, fs.ErrNotExist)
// works); a file that is unusable gives a *ValidationError listing every
// problem.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config %s: %w", path, err)
	}
	return Parse(path, data)
}

// Parse is Load for a file already read: file names the configuration in
// messages and its directory anchors relative paths ("" means the current
// directory). Every error it returns is a *ValidationError.
func Parse(file string, data []byte) (*Config, error) {
	name, abs, dir := locate(file)
	d := &decoder{file: name, pos: make(map[string]position)}
	root, err := d.document(data)
	if err != nil {
		return nil, err
	}
	c := defaultConfig()
	c.File, c.name, c.pos = abs, name, d.pos
	d.config(root, c)
	c.finish(dir)

	problems := d.probs
	var verr *ValidationError
	if errors.As(c.Validate(), &verr) {
		for _, p := range verr.Problems {
			if !reported(d.probs, p.Key) {
				problems = append(problems, p)
			}
		}
	}
	if len(problems) > 0 {
		sortProblems(problems)
		return nil, &ValidationError{Problems: problems}
	}
	return c, nil
}

// locate returns the name for messages, the absolute file path and the
// directory relative paths are resolved against.
func locate(file string) (name, abs, dir string) {
	if file == "" {
		wd, err := os.Getwd()
		if err != nil {
			wd = "."
		}
		return "<config>", "", wd
	}
	abs, err := filepath.Abs(file)
	if err != nil {
		abs = filepath.Clean(file)
	}
	return file, abs, filepath.Dir(abs)
}

// reported says whether the decoder already reported a problem at key or
// at one of its parents, so Validate does not repeat it in other words
// (a listen that was not a string is not also "required").
func reported(probs []Problem, key string) bool {
	for _, p := range probs {
		if p.Key == "" {
			continue
		}
		if key == p.Key || strings.HasPrefix(key, p.Key+".") || strings.HasPrefix(key, p.Key+"[") {
			return true
		}
	}
	return false
}

// document parses the single YAML document in data. A syntax error or a
// second document is a *ValidationError; an empty file gives a nil root.
func (d *decoder) document(data []byte) (*yaml.Node, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil
		}
		return nil, &ValidationError{Problems: []Problem{syntaxProblem(d.file, err)}}
	}
	var next yaml.Node
	switch err := dec.Decode(&next); {
	case errors.Is(err, io.EOF):
	case err != nil:
		return nil, &ValidationError{Problems: []Problem{syntaxProblem(d.file, err)}}
	default:
		return nil, &ValidationError{Problems: []Problem{{File: d.file, Line: next.Line, Column: next.Column,
			Msg: "holds a second YAML document (after ---); a config file holds one"}}}
	}
	return &doc, nil
}

// syntaxProblem turns yaml's "yaml: line 3: did not find expected key"
// into a located Problem.
func syntaxProblem(file string, err error) Problem {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	p := Problem{File: file, Msg: "invalid YAML: " + msg}
	if rest, ok := strings.CutPrefix(msg, "line "); ok {
		if num, text, ok := strings.Cut(rest, ": "); ok {
			if line, err := strconv.Atoi(num); err == nil {
				p.Line, p.Msg = line, "invalid YAML: "+text
			}
		}
	}
	return p
}

// finish resolves relative paths against dir, writes bare trusted proxy
// addresses as single-address prefixes and lists the service names.
func (c *Config) finish(dir string) {
	abs := func(p *string) {
		if *p != "" && !filepath.IsAbs(*p) {
			*p = filepath.Join(dir, *p)
		}
	}
	abs(&c.StateDir)
	abs(&c.API.TokenFile)
	c.ServiceNames = c.ServiceNames[:0]
	for name, s := range c.Services {
		c.ServiceNames = append(c.ServiceNames, name)
		abs(&s.FallbackPage)
		s.Preflight.resolve(abs)
		if s.TLS != nil {
			abs(&s.TLS.Cert)
			abs(&s.TLS.Key)
		}
		if p := s.Runtime.Process; p != nil {
			abs(&p.Dir)
			abs(&p.EnvFile)
			for name, sec := range p.Secrets {
				abs(&sec.File)
				p.Secrets[name] = sec
			}
		}
		if dk := s.Runtime.Docker; dk != nil {
			dk.resolvePaths(abs)
		}
		if s.Runtime.UpstreamTLS != nil {
			abs(&s.Runtime.UpstreamTLS.CAFile)
		}
		for i, p := range s.TrustedProxies {
			if a, err := netip.ParseAddr(p); err == nil {
				s.TrustedProxies[i] = netip.PrefixFrom(a, a.BitLen()).String()
			}
		}
	}
	sort.Strings(c.ServiceNames)
}
