package config

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// This file holds the strict, position-keeping YAML node walker. Every
// helper that decodes a value returns a setter for a field table, so the
// schema (schema.go) reads as a list of keys and where they go.

// position is where a key's value sits in the file.
type position struct{ line, col int }

// decoder walks a YAML node tree into a Config, collecting problems instead
// of stopping at the first one, and remembering where every key was so that
// Validate can point at lines too.
type decoder struct {
	file  string
	probs []Problem
	pos   map[string]position
}

// setter decodes the value node n found at the dotted key.
type setter func(key string, n *yaml.Node)

// fields maps the known keys of a mapping to their setters.
type fields map[string]setter

func (d *decoder) problem(n *yaml.Node, key, format string, args ...any) {
	p := Problem{File: d.file, Key: key, Msg: fmt.Sprintf(format, args...)}
	if n != nil {
		p.Line, p.Column = n.Line, n.Column
	}
	d.probs = append(d.probs, p)
}

// resolve follows aliases and unwraps documents.
func resolve(n *yaml.Node) *yaml.Node {
	for n != nil {
		switch {
		case n.Kind == yaml.AliasNode:
			n = n.Alias
		case n.Kind == yaml.DocumentNode && len(n.Content) == 1:
			n = n.Content[0]
		default:
			return n
		}
	}
	return nil
}

func isNull(n *yaml.Node) bool {
	return n == nil || n.Kind == 0 || (n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null")
}

// describe renders a node for "got ..." in messages.
func describe(n *yaml.Node) string {
	switch {
	case isNull(n):
		return "nothing (null)"
	case n.Kind == yaml.MappingNode:
		return "a mapping"
	case n.Kind == yaml.SequenceNode:
		return "a list"
	case n.ShortTag() == "!!str":
		return strconv.Quote(n.Value)
	}
	return n.Value
}

func join(key, name string) string {
	if key == "" {
		return name
	}
	return key + "." + name
}

func (d *decoder) mark(key string, n *yaml.Node) {
	if n != nil {
		d.pos[key] = position{n.Line, n.Column}
	}
}

// mapping decodes a mapping node through its field table: unknown keys
// (with a suggestion for near misses) and repeated keys are problems; a
// null node leaves every field as it is.
func (d *decoder) mapping(n *yaml.Node, key string, fs fields) {
	d.entries(n, key, func(name, child string, kn, vn *yaml.Node) {
		set, ok := fs[name]
		if !ok {
			d.problem(kn, child, "unknown key%s", suggest(name, fs))
			return
		}
		set(child, vn)
	})
}

// entries walks a mapping with arbitrary scalar keys (service names,
// environment variables, versions), reporting repeated keys.
func (d *decoder) entries(n *yaml.Node, key string, each func(name, child string, kn, vn *yaml.Node)) {
	n = resolve(n)
	if isNull(n) {
		return
	}
	if n.Kind != yaml.MappingNode {
		d.problem(n, key, "must be a mapping, got %s", describe(n))
		return
	}
	seen := make(map[string]int)
	for i := 0; i+1 < len(n.Content); i += 2 {
		kn, vn := resolve(n.Content[i]), resolve(n.Content[i+1])
		if kn == nil || kn.Kind != yaml.ScalarNode {
			d.problem(n.Content[i], key, "keys must be plain names, got %s", describe(kn))
			continue
		}
		child := join(key, kn.Value)
		if line, dup := seen[kn.Value]; dup {
			d.problem(kn, child, "set twice (first on line %d)", line)
			continue
		}
		seen[kn.Value] = kn.Line
		if isNull(vn) {
			d.mark(child, kn)
		} else {
			d.mark(child, vn)
		}
		each(kn.Value, child, kn, vn)
	}
}

// seq walks a list, calling each with the element's key ("key[i]").
func (d *decoder) seq(n *yaml.Node, key string, each func(child string, en *yaml.Node)) {
	n = resolve(n)
	if isNull(n) {
		return
	}
	if n.Kind != yaml.SequenceNode {
		d.problem(n, key, "must be a list, got %s", describe(n))
		return
	}
	for i, en := range n.Content {
		child := fmt.Sprintf("%s[%d]", key, i)
		en = resolve(en)
		d.mark(child, en)
		each(child, en)
	}
}

// scalar reports whether n is a scalar with one of the tags, and a problem
// naming want when it is not. Null never reaches it.
func (d *decoder) scalar(n *yaml.Node, key, want string, tags ...string) bool {
	if n.Kind == yaml.ScalarNode {
		for _, t := range tags {
			if n.ShortTag() == t {
				return true
			}
		}
	}
	d.problem(n, key, "must be %s, got %s", want, describe(n))
	return false
}

// str decodes a YAML string; null keeps the current value.
func (d *decoder) str(dst *string) setter {
	return func(key string, n *yaml.Node) {
		if !isNull(n) && d.scalar(n, key, "a string", "!!str") {
			*dst = n.Value
		}
	}
}

// text decodes any scalar as its text, for argv elements and environment
// values where `8080` means "8080". Null gives "" so that Validate can
// report an empty entry where one is not allowed.
func (d *decoder) text(n *yaml.Node, key string) (string, bool) {
	if isNull(n) {
		return "", true
	}
	if !d.scalar(n, key, "a string", "!!str", "!!int", "!!float", "!!bool") {
		return "", false
	}
	return n.Value, true
}

// strs decodes a list of scalars as strings.
func (d *decoder) strs(dst *[]string) setter {
	return func(key string, n *yaml.Node) {
		out := []string{}
		d.seq(n, key, func(child string, en *yaml.Node) {
			if s, ok := d.text(en, child); ok {
				out = append(out, s)
			}
		})
		if !isNull(n) {
			*dst = out
		}
	}
}

// hosts decodes a list of Host patterns; validate.go checks each one.
func (d *decoder) hosts(dst *HostList) setter {
	return func(key string, n *yaml.Node) {
		if isNull(n) {
			return
		}
		var list []string
		d.strs(&list)(key, n)
		*dst = Hosts(list...)
	}
}

// hooks decodes a hook list, whose entries are shell commands (strings)
// and mappings ({url: ..., timeout: ...} for a webhook, {command: ...,
// timeout: ...} for a command with its own timeout), mixed in any order.
// A single entry is accepted as a list of one. A bad entry keeps its
// place, so that Validate's keys ("key[i]") match the file's.
func (d *decoder) hooks(dst *[]Hook) setter {
	return func(key string, n *yaml.Node) {
		if isNull(n) {
			return
		}
		if n.Kind != yaml.SequenceNode {
			*dst = []Hook{d.hook(n, key)}
			return
		}
		out := []Hook{}
		d.seq(n, key, func(child string, en *yaml.Node) {
			out = append(out, d.hook(en, child))
		})
		*dst = out
	}
}

// hookWant is what a hook list entry may be, for messages.
const hookWant = "a shell command (a string) or a webhook like {url: https://hooks.example.com/deploy, timeout: 10s}"

// hook decodes one hook list entry. Null gives an empty command, which
// Validate reports.
func (d *decoder) hook(n *yaml.Node, key string) Hook {
	var h Hook
	switch {
	case isNull(n):
		return h
	case n.Kind == yaml.ScalarNode:
		h.Command, _ = d.text(n, key)
		return h
	case n.Kind != yaml.MappingNode:
		d.problem(n, key, "must be %s, got %s", hookWant, describe(n))
		return h
	}
	before := len(d.probs)
	d.mapping(n, key, fields{"command": d.str(&h.Command), "url": d.str(&h.URL), "timeout": d.duration(&h.Timeout)})
	switch {
	case len(d.probs) > before:
	case h.Command == "" && h.URL == "":
		d.problem(n, key, "needs url (a webhook) or command (a shell command)")
	case h.Command != "" && h.URL != "":
		d.problem(n, key, "sets both url and command; choose one")
	}
	return h
}

// int decodes a YAML integer.
func (d *decoder) int(dst *int) setter {
	return func(key string, n *yaml.Node) {
		if isNull(n) || !d.scalar(n, key, "an integer", "!!int") {
			return
		}
		var v int
		if err := n.Decode(&v); err != nil {
			d.problem(n, key, "must be an integer, got %s", describe(n))
			return
		}
		*dst = v
	}
}

// bool decodes true/false.
func (d *decoder) bool(dst *bool) setter {
	return func(key string, n *yaml.Node) {
		if isNull(n) || !d.scalar(n, key, "true or false", "!!bool") {
			return
		}
		var v bool
		if err := n.Decode(&v); err != nil {
			d.problem(n, key, "must be true or false, got %s", describe(n))
			return
		}
		*dst = v
	}
}

// duration decodes a Go duration ("30s", "1m30s", "1h"); a bare 0 is
// accepted, other bare numbers are not (the unit would be a guess).
func (d *decoder) duration(dst *time.Duration) setter {
	return func(key string, n *yaml.Node) {
		if isNull(n) {
			return
		}
		v, ok := d.parseDuration(n, key, durationWant)
		if ok {
			*dst = v
		}
	}
}

const durationWant = "a duration like 500ms, 30s, 1m30s or 1h"

func (d *decoder) parseDuration(n *yaml.Node, key, want string) (time.Duration, bool) {
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!int" && n.Value == "0" {
		return 0, true
	}
	if !d.scalar(n, key, want, "!!str") {
		return 0, false
	}
	v, err := time.ParseDuration(strings.TrimSpace(n.Value))
	if err != nil {
		d.problem(n, key, "must be %s, got %s", want, describe(n))
		return 0, false
	}
	if v < 0 {
		d.problem(n, key, "must not be negative (got %s)", n.Value)
		return 0, false
	}
	return v, true
}

// number decodes a finite number, or a string "N%", in the unit written
// (percent). It reports whether it found one.
func (d *decoder) number(n *yaml.Node, key, want string) (float64, bool) {
	if !d.scalar(n, key, want, "!!int", "!!float", "!!str") {
		return 0, false
	}
	s := strings.TrimSpace(n.Value)
	if n.ShortTag() == "!!str" {
		var pct bool
		s, pct = strings.CutSuffix(s, "%")
		if !pct {
			d.problem(n, key, "must be %s, got %s", want, describe(n))
			return 0, false
		}
		s = strings.TrimSpace(s)
	}
	v, err := strconv.ParseFloat(strings.ReplaceAll(s, "_", ""), 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		d.problem(n, key, "must be %s, got %s", want, describe(n))
		return 0, false
	}
	return v, true
}

// percent decodes "1%", "0.5%" or a bare number meaning percent (1 is 1%)
// and stores it as a fraction (0.01).
func (d *decoder) percent(dst *float64) setter {
	return func(key string, n *yaml.Node) {
		if isNull(n) {
			return
		}
		if v, ok := d.number(n, key, `a percentage like 1% or 0.5`); ok {
			*dst = v / 100
		}
	}
}

// weight decodes a step weight in percent: 10, 12.5 or "10%".
func (d *decoder) weight(dst *float64) setter {
	return func(key string, n *yaml.Node) {
		if isNull(n) {
			return
		}
		if v, ok := d.number(n, key, "a percentage of traffic like 10 or 12.5"); ok {
			*dst = v
		}
	}
}

// pause decodes a step's pause: a duration, or nothing / "" / "manual" for
// a manual gate that holds until `cutover promote`.
func (d *decoder) pause(st *Step) setter {
	return func(key string, n *yaml.Node) {
		if isNull(n) {
			st.Manual = true
			return
		}
		if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!str" {
			switch strings.TrimSpace(n.Value) {
			case "", "manual":
				st.Manual, st.Pause = true, 0
				return
			}
		}
		if v, ok := d.parseDuration(n, key, durationWant+`, or "manual"`); ok {
			st.Manual, st.Pause = false, v
		}
	}
}
