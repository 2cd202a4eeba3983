package config

import (
	"fmt"
	"net/url"
	"strings"
)

// hookList is one of a service's hook lists with its config key.
type hookList struct {
	name  string
	hooks []Hook
}

// lists returns the hook lists in the order they run in a deployment.
func (h Hooks) lists() []hookList {
	return []hookList{
		{"pre_provision", h.PreProvision}, {"pre_traffic", h.PreTraffic}, {"post_traffic", h.PostTraffic},
		{"post_promote", h.PostPromote}, {"post_retire", h.PostRetire}, {"on_rollback", h.OnRollback},
	}
}

func (v *validator) hooks(key string, h Hooks) {
	for _, list := range h.lists() {
		for i, hk := range list.hooks {
			v.hook(fmt.Sprintf("%s.%s[%d]", key, list.name, i), hk)
		}
	}
	v.positive(key+".timeout", h.Timeout)
}

// hook checks one hook list entry: a non-blank command, or an http(s) URL
// with a host, never both.
func (v *validator) hook(key string, h Hook) {
	switch {
	case h.Command != "" && h.URL != "":
		v.add(key, "sets both url and command; choose one")
	case h.URL != "":
		u, err := url.Parse(h.URL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			v.add(key+".url", "must be an http:// or https:// URL with a host (got %q)", h.URL)
		}
	case strings.TrimSpace(h.Command) == "":
		v.add(key, "must not be an empty command")
	}
	v.notNegative(key+".timeout", h.Timeout)
}
