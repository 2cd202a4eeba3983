package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode"
)

// duplicateKeys returns an error naming the first key that an object in
// data gives twice, with its path ("strategy.steps[0].weight"), or nil.
// Keys are compared as encoding/json matches struct fields: after
// unescaping and without regard to case, so "Version" repeats "version".
// Without this check the last value would silently win, and whatever read
// the first (a proxy, a log, an audit) would see another request.
// data must be one valid JSON value.
func duplicateKeys(data []byte) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var stack []*jsonScope
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		top := (*jsonScope)(nil)
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		if top != nil && top.object && top.wantKey {
			if tok == json.Delim('}') {
				stack = stack[:len(stack)-1]
				valueDone(stack)
				continue
			}
			key, _ := tok.(string)
			fold := foldKey(key)
			if first, dup := top.keys[fold]; dup {
				path := top.child(key)
				if first != key {
					return fmt.Errorf("duplicate key %q at %s (the same field as %q)", key, path, first)
				}
				return fmt.Errorf("duplicate key %q at %s", key, path)
			}
			top.keys[fold] = key
			top.key, top.wantKey = key, false
			continue
		}
		switch tok {
		case json.Delim('{'):
			stack = append(stack, &jsonScope{path: top.childPath(), object: true, wantKey: true, keys: map[string]string{}})
		case json.Delim('['):
			stack = append(stack, &jsonScope{path: top.childPath()})
		case json.Delim(']'):
			stack = stack[:len(stack)-1]
			valueDone(stack)
		default:
			valueDone(stack)
		}
	}
}

// jsonScope is an object or array being read by duplicateKeys.
type jsonScope struct {
	path    string // of the object or array itself; "" at the top
	object  bool
	wantKey bool              // an object expecting a key (or its end)
	keys    map[string]string // folded key -> key as first written
	key     string            // an object's current key
	index   int               // an array's current element
}

// child returns the path of an object's key.
func (s *jsonScope) child(key string) string {
	if s.path == "" {
		return key
	}
	return s.path + "." + key
}

// childPath returns the path of the value s is reading now.
func (s *jsonScope) childPath() string {
	switch {
	case s == nil:
		return ""
	case s.object:
		return s.child(s.key)
	}
	return fmt.Sprintf("%s[%d]", s.path, s.index)
}

// valueDone moves the innermost scope past the value just read.
func valueDone(stack []*jsonScope) {
	if len(stack) == 0 {
		return
	}
	if top := stack[len(stack)-1]; top.object {
		top.wantKey = true
	} else {
		top.index++
	}
}

// foldKey maps every rune to the smallest of its case-folding orbit, so
// that two keys strings.EqualFold calls equal fold to the same string.
func foldKey(s string) string {
	return strings.Map(func(r rune) rune {
		min := r
		for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
			if f < min {
				min = f
			}
		}
		return min
	}, s)
}
