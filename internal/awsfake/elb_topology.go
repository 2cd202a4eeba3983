package awsfake

import (
	"sort"
	"strconv"
	"strings"
)

// Weight is one target group of a weighted forward action.
type Weight struct {
	TargetGroupARN string
	Weight         int
}

// Listener describes a fake listener: its ARN and the URL of its real
// HTTP listener on 127.0.0.1.
type Listener struct {
	ARN            string
	URL            string
	DefaultRuleARN string
}

// CreateListener adds an HTTP listener to a load balancer whose default
// action forwards to the given target groups by weight (with none, it
// answers a fixed 404). port is the port the API reports (default 80); the
// real listener is on an ephemeral port, see Listener.URL.
func (e *ELB) CreateListener(lbARN string, port int, forward ...Weight) (Listener, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	lb := e.lbs[lbARN]
	if lb == nil {
		return Listener{}, Errorf("LoadBalancerNotFound", "One or more load balancers not found")
	}
	if port == 0 {
		port = 80
	}
	as := actions{{typ: "fixed-response", order: 1, fixed: &fixedResponse{status: 404, contentType: "text/plain", body: "no rule"}}}
	if len(forward) > 0 {
		as = actions{forwardAction(forward)}
	}
	if err := e.validateActionsLocked(lb, as, "defaultActions"); err != nil {
		return Listener{}, err
	}
	l, err := e.newListener(lb, port, as)
	if err != nil {
		return Listener{}, err
	}
	e.listeners[l.arn] = l
	e.republishLocked(l)
	e.publishAllLocked()
	return Listener{ARN: l.arn, URL: l.url(), DefaultRuleARN: l.defaultRule}, nil
}

func forwardAction(ws []Weight) action {
	a := action{typ: "forward", order: 1}
	for _, w := range ws {
		a.forward = append(a.forward, weightedGroup{w.TargetGroupARN, w.Weight})
	}
	return a
}

// CreateRule adds a rule to a listener: requests whose path matches one of
// paths (ELB wildcards) and, when hosts is not empty, whose host matches
// one of hosts, are forwarded by the given weights. It returns the rule's
// ARN.
func (e *ELB) CreateRule(listenerARN string, priority int, paths, hosts []string, forward ...Weight) (string, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	l := e.listeners[listenerARN]
	if l == nil {
		return "", Errorf("ListenerNotFound", "One or more listeners not found")
	}
	for _, r := range e.rules {
		if r.listener == l && r.priority == priority {
			return "", Errorf("PriorityInUse", "Priority '%d' is currently in use", priority)
		}
	}
	r := &rule{arn: e.arn("listener-rule/" + l.lb.dimension() + "/" + l.id + "/" + randomID(8)), listener: l, priority: priority}
	if len(paths) > 0 {
		r.conditions = append(r.conditions, condition{field: "path-pattern", values: paths})
	}
	if len(hosts) > 0 {
		r.conditions = append(r.conditions, condition{field: "host-header", values: hosts})
	}
	r.actions = actions{forwardAction(forward)}
	if err := e.validateActionsLocked(l.lb, r.actions, "actions"); err != nil {
		return "", err
	}
	e.rules[r.arn] = r
	e.republishLocked(l)
	e.publishAllLocked()
	return r.arn, nil
}

// SetForward replaces the forward action of a listener (its default
// action) or of a rule, as someone in the console would: the change is
// validated like ModifyListener/ModifyRule and takes effect at once.
func (e *ELB) SetForward(arn string, forward ...Weight) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	as := actions{forwardAction(forward)}
	if l := e.listeners[arn]; l != nil {
		if err := e.validateActionsLocked(l.lb, as, "defaultActions"); err != nil {
			return err
		}
		l.actions = as
		e.republishLocked(l)
		return nil
	}
	if r := e.rules[arn]; r != nil {
		if err := e.validateActionsLocked(r.listener.lb, as, "actions"); err != nil {
			return err
		}
		r.actions = as
		e.republishLocked(r.listener)
		return nil
	}
	return Errorf("ListenerNotFound", "One or more listeners not found")
}

// Forward returns the weights of the forward action of a listener's
// default action or of a rule.
func (e *ELB) Forward(arn string) ([]Weight, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	var as actions
	switch {
	case e.listeners[arn] != nil:
		as = e.listeners[arn].actions
	case e.rules[arn] != nil:
		as = e.rules[arn].actions
	default:
		return nil, Errorf("ListenerNotFound", "One or more listeners not found")
	}
	a := as.terminal()
	if a == nil || a.typ != "forward" {
		return nil, nil
	}
	var out []Weight
	for _, g := range a.groups() {
		out = append(out, Weight{g.arn, g.weight})
	}
	return out, nil
}

// SetTargetGroupAttribute sets one attribute (as
// ModifyTargetGroupAttributes does), e.g.
// "deregistration_delay.timeout_seconds" or "stickiness.enabled".
func (e *ELB) SetTargetGroupAttribute(tgARN, key, value string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	tg := e.tgs[tgARN]
	if tg == nil {
		return Errorf("TargetGroupNotFound", "One or more target groups not found")
	}
	if err := validateAttr(key, value); err != nil {
		return err
	}
	tg.attrs[key] = value
	tg.applyAttrsLocked()
	return nil
}

func validateAttr(key, value string) error {
	num := func(lo, hi int) error {
		n, err := strconv.Atoi(value)
		if err != nil || n < lo || n > hi {
			return Errorf("InvalidConfigurationRequest", "The value of '%s' must be between %d-%d", key, lo, hi)
		}
		return nil
	}
	switch key {
	case "deregistration_delay.timeout_seconds":
		return num(0, 3600)
	case "stickiness.lb_cookie.duration_seconds":
		return num(1, 604800)
	case "slow_start.duration_seconds":
		return num(0, 900)
	case "stickiness.enabled":
		if value != "true" && value != "false" {
			return ValidationError("The value of 'stickiness.enabled' must be 'true' or 'false'")
		}
	case "stickiness.type":
		if value != "lb_cookie" && value != "app_cookie" {
			return ValidationError("The value of 'stickiness.type' must be 'lb_cookie' or 'app_cookie'")
		}
	case "load_balancing.algorithm.type":
		if value != "round_robin" && value != "least_outstanding_requests" {
			return ValidationError("The value of 'load_balancing.algorithm.type' is not valid")
		}
	default:
		if !strings.HasPrefix(key, "stickiness.") && !strings.HasPrefix(key, "target_group_health.") && !strings.HasPrefix(key, "load_balancing.") {
			return ValidationError("Target group attribute key '%s' is not recognized", key)
		}
	}
	return nil
}

// publishAllLocked refreshes every group's routable set (a group's
// "unused" state depends on the listeners).
func (e *ELB) publishAllLocked() {
	for _, tg := range e.tgs {
		e.publishLocked(tg)
	}
}

// validateActionsLocked checks actions as ELBv2 does; where names the
// request member for messages ("defaultActions" or "actions").
func (e *ELB) validateActionsLocked(lb *loadBalancer, as actions, where string) error {
	if len(as) == 0 {
		return ValidationError("1 validation error detected: Value null at '%s' failed to satisfy constraint: Member must not be null", where)
	}
	terminal := 0
	for i, a := range as {
		at := where + ".member." + strconv.Itoa(i+1)
		switch a.typ {
		case "forward":
			terminal++
			if err := e.validateForwardLocked(lb, a, at); err != nil {
				return err
			}
		case "fixed-response":
			terminal++
			if a.fixed == nil || a.fixed.status < 200 || a.fixed.status > 599 || a.fixed.status/100 == 3 {
				return ValidationError("1 validation error detected: Value at '%s.fixedResponseConfig.statusCode' failed to satisfy constraint: Member must satisfy regular expression pattern: ^(2|4|5)\\d\\d$", at)
			}
		case "redirect":
			terminal++
		case "authenticate-oidc", "authenticate-cognito":
			return Errorf("InvalidLoadBalancerAction", "Authenticate actions are only supported on HTTPS listeners")
		case "":
			return ValidationError("1 validation error detected: Value null at '%s.type' failed to satisfy constraint: Member must not be null", at)
		default:
			return ValidationError("1 validation error detected: Value '%s' at '%s.type' failed to satisfy constraint: Member must satisfy enum value set: [forward, authenticate-oidc, authenticate-cognito, redirect, fixed-response]", a.typ, at)
		}
	}
	if terminal != 1 {
		return Errorf("InvalidLoadBalancerAction", "You must specify exactly one forward, fixed-response or redirect action")
	}
	return nil
}

func (e *ELB) validateForwardLocked(lb *loadBalancer, a action, at string) error {
	groups := a.groups()
	if len(groups) == 0 {
		return ValidationError("A target group ARN must be specified for a forward action ('%s')", at)
	}
	if a.single != "" && len(a.forward) > 0 && (len(a.forward) != 1 || a.forward[0].arn != a.single) {
		return ValidationError("You cannot specify a target group ARN and a forward config with different target groups ('%s')", at)
	}
	if len(groups) > 5 {
		return ValidationError("1 validation error detected: Value at '%s.forwardConfig.targetGroups' failed to satisfy constraint: Member must have length less than or equal to 5", at)
	}
	if a.sticky && (a.stickyS < 1 || a.stickyS > 604800) {
		return ValidationError("1 validation error detected: Value '%d' at '%s.forwardConfig.targetGroupStickinessConfig.durationSeconds' failed to satisfy constraint: Member must be between 1 and 604800", a.stickyS, at)
	}
	seen := map[string]bool{}
	var missing []string
	for j, g := range groups {
		gat := at + ".forwardConfig.targetGroups.member." + strconv.Itoa(j+1)
		if g.weight < 0 || g.weight > 999 {
			return ValidationError("1 validation error detected: Value '%d' at '%s.weight' failed to satisfy constraint: Member must have value between 0 and 999", g.weight, gat)
		}
		if !tgARNPattern.MatchString(g.arn) {
			return ValidationError("'%s' is not a valid target group ARN", g.arn)
		}
		if seen[g.arn] {
			return ValidationError("Target group '%s' cannot be specified more than once", g.arn)
		}
		seen[g.arn] = true
		tg := e.tgs[g.arn]
		if tg == nil {
			missing = append(missing, g.arn)
			continue
		}
		for _, other := range e.lbsOfLocked(tg) {
			if other != lb.arn {
				return Errorf("TargetGroupAssociationLimit", "The following target groups cannot be associated with more than one load balancer: %s", g.arn)
			}
		}
	}
	if len(missing) > 0 {
		sort.Strings(missing)
		return Errorf("TargetGroupNotFound", "Target groups '%s' not found", strings.Join(missing, ", "))
	}
	return nil
}
