package awsfake

import (
	"path"
	"strings"
)

// action is one listener or rule action as ELBv2 stores it.
type action struct {
	typ   string // forward | fixed-response | redirect
	order int
	// single is the TargetGroupArn form of a forward action.
	single  string
	forward []weightedGroup
	sticky  bool
	stickyS int
	fixed   *fixedResponse
	// redirect keeps a redirect action's fields as given.
	redirect map[string]string
}

type weightedGroup struct {
	arn    string
	weight int
}

type fixedResponse struct {
	status      int
	contentType string
	body        string
}

type actions []action

// groups lists the target groups an action forwards to with their weights.
func (a action) groups() []weightedGroup {
	if a.single != "" && len(a.forward) == 0 {
		return []weightedGroup{{a.single, 1}}
	}
	return a.forward
}

func (as actions) forwardsTo(arn string) bool {
	for _, a := range as {
		for _, g := range a.groups() {
			if g.arn == arn {
				return true
			}
		}
	}
	return false
}

// terminal is the action that answers a request: the first forward,
// fixed-response or redirect by order.
func (as actions) terminal() *action {
	best := -1
	for i, a := range as {
		switch a.typ {
		case "forward", "fixed-response", "redirect":
			if best < 0 || a.order < as[best].order {
				best = i
			}
		}
	}
	if best < 0 {
		return nil
	}
	return &as[best]
}

// condition is a rule condition the data plane evaluates.
type condition struct {
	field  string // path-pattern | host-header | http-header ... (only the first two are matched)
	values []string
}

func (c condition) match(host, p string) bool {
	switch c.field {
	case "path-pattern":
		return anyGlob(c.values, p)
	case "host-header":
		h, _, _ := strings.Cut(host, ":")
		return anyGlob(c.values, strings.ToLower(h))
	}
	return false
}

// anyGlob matches ELB's wildcards (* any run, ? one character), case-sensitive.
func anyGlob(patterns []string, s string) bool {
	for _, p := range patterns {
		// path.Match treats / specially; ELB does not, so compare with a
		// separator-free rewrite.
		pp := strings.ReplaceAll(p, "/", "\x00")
		ss := strings.ReplaceAll(s, "/", "\x00")
		if ok, _ := path.Match(pp, ss); ok {
			return true
		}
	}
	return false
}
