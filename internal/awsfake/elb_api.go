package awsfake

import (
	"regexp"
	"sort"
	"strconv"
)

const elbXMLNS = "http://elasticloadbalancing.amazonaws.com/doc/2015-12-01/"

var (
	arnPrefix       = `^arn:aws[a-z-]*:elasticloadbalancing:[a-z0-9-]+:\d{12}:`
	lbARNPattern    = regexp.MustCompile(arnPrefix + `loadbalancer/app/[A-Za-z0-9-]{1,32}/[0-9a-f]{1,32}$`)
	tgARNPattern    = regexp.MustCompile(arnPrefix + `targetgroup/[A-Za-z0-9-]{1,32}/[0-9a-f]{1,32}$`)
	lisARNPattern   = regexp.MustCompile(arnPrefix + `listener/app/[A-Za-z0-9-]{1,32}/[0-9a-f]{1,32}/[0-9a-f]{1,32}$`)
	ruleARNPattern  = regexp.MustCompile(arnPrefix + `listener-rule/app/[A-Za-z0-9-]{1,32}/[0-9a-f]{1,32}/[0-9a-f]{1,32}/[0-9a-f]{1,32}$`)
	errNoTargetGrps = Errorf("TargetGroupNotFound", "One or more target groups not found")
)

func (e *ELB) service() *QueryService {
	return &QueryService{XMLNS: elbXMLNS, Actions: map[string]QueryAction{
		"DescribeLoadBalancers":         e.apiDescribeLoadBalancers,
		"DescribeListeners":             e.apiDescribeListeners,
		"ModifyListener":                e.apiModifyListener,
		"DescribeRules":                 e.apiDescribeRules,
		"ModifyRule":                    e.apiModifyRule,
		"DescribeTargetGroups":          e.apiDescribeTargetGroups,
		"DescribeTargetGroupAttributes": e.apiDescribeTargetGroupAttributes,
		"ModifyTargetGroupAttributes":   e.apiModifyTargetGroupAttributes,
		"DescribeTargetHealth":          e.apiDescribeTargetHealth,
		"RegisterTargets":               e.apiRegisterTargets,
		"DeregisterTargets":             e.apiDeregisterTargets,
	}}
}

// XML shapes of the ELBv2 responses (lists are <member> elements).

type xmlAction struct {
	Type                string            `xml:"Type"`
	Order               int               `xml:"Order,omitempty"`
	TargetGroupArn      string            `xml:"TargetGroupArn,omitempty"`
	ForwardConfig       *xmlForwardConfig `xml:"ForwardConfig,omitempty"`
	FixedResponseConfig *xmlFixedResponse `xml:"FixedResponseConfig,omitempty"`
	RedirectConfig      *xmlRedirect      `xml:"RedirectConfig,omitempty"`
}

type xmlForwardConfig struct {
	TargetGroups                []xmlTuple `xml:"TargetGroups>member"`
	TargetGroupStickinessConfig xmlSticky  `xml:"TargetGroupStickinessConfig"`
}

type xmlTuple struct {
	TargetGroupArn string `xml:"TargetGroupArn"`
	Weight         int    `xml:"Weight"`
}

type xmlSticky struct {
	Enabled         bool `xml:"Enabled"`
	DurationSeconds int  `xml:"DurationSeconds,omitempty"`
}

type xmlFixedResponse struct {
	StatusCode  string `xml:"StatusCode"`
	ContentType string `xml:"ContentType,omitempty"`
	MessageBody string `xml:"MessageBody,omitempty"`
}

type xmlRedirect struct {
	Protocol   string `xml:"Protocol,omitempty"`
	Port       string `xml:"Port,omitempty"`
	Host       string `xml:"Host,omitempty"`
	Path       string `xml:"Path,omitempty"`
	Query      string `xml:"Query,omitempty"`
	StatusCode string `xml:"StatusCode"`
}

type xmlListener struct {
	ListenerArn     string      `xml:"ListenerArn"`
	LoadBalancerArn string      `xml:"LoadBalancerArn"`
	Port            int         `xml:"Port"`
	Protocol        string      `xml:"Protocol"`
	DefaultActions  []xmlAction `xml:"DefaultActions>member"`
}

type xmlValues struct {
	Values []string `xml:"Values>member"`
}

type xmlCondition struct {
	Field             string     `xml:"Field"`
	Values            []string   `xml:"Values>member"`
	PathPatternConfig *xmlValues `xml:"PathPatternConfig,omitempty"`
	HostHeaderConfig  *xmlValues `xml:"HostHeaderConfig,omitempty"`
}

type xmlRule struct {
	RuleArn    string         `xml:"RuleArn"`
	Priority   string         `xml:"Priority"`
	Conditions []xmlCondition `xml:"Conditions>member"`
	Actions    []xmlAction    `xml:"Actions>member"`
	IsDefault  bool           `xml:"IsDefault"`
}

type xmlTargetGroup struct {
	TargetGroupArn             string   `xml:"TargetGroupArn"`
	TargetGroupName            string   `xml:"TargetGroupName"`
	Protocol                   string   `xml:"Protocol"`
	Port                       int      `xml:"Port"`
	VpcID                      string   `xml:"VpcId"`
	HealthCheckProtocol        string   `xml:"HealthCheckProtocol"`
	HealthCheckPort            string   `xml:"HealthCheckPort"`
	HealthCheckEnabled         bool     `xml:"HealthCheckEnabled"`
	HealthCheckIntervalSeconds int      `xml:"HealthCheckIntervalSeconds"`
	HealthCheckTimeoutSeconds  int      `xml:"HealthCheckTimeoutSeconds"`
	HealthyThresholdCount      int      `xml:"HealthyThresholdCount"`
	UnhealthyThresholdCount    int      `xml:"UnhealthyThresholdCount"`
	HealthCheckPath            string   `xml:"HealthCheckPath"`
	Matcher                    string   `xml:"Matcher>HttpCode"`
	LoadBalancerArns           []string `xml:"LoadBalancerArns>member"`
	TargetType                 string   `xml:"TargetType"`
	ProtocolVersion            string   `xml:"ProtocolVersion"`
	IPAddressType              string   `xml:"IpAddressType"`
}

type xmlTargetHealthDescription struct {
	Target struct {
		ID   string `xml:"Id"`
		Port int    `xml:"Port"`
	} `xml:"Target"`
	HealthCheckPort string `xml:"HealthCheckPort"`
	TargetHealth    struct {
		State       string `xml:"State"`
		Reason      string `xml:"Reason,omitempty"`
		Description string `xml:"Description,omitempty"`
	} `xml:"TargetHealth"`
}

type xmlAttr struct {
	Key   string `xml:"Key"`
	Value string `xml:"Value"`
}

type xmlLoadBalancer struct {
	LoadBalancerArn       string `xml:"LoadBalancerArn"`
	DNSName               string `xml:"DNSName"`
	CanonicalHostedZoneID string `xml:"CanonicalHostedZoneId"`
	LoadBalancerName      string `xml:"LoadBalancerName"`
	Scheme                string `xml:"Scheme"`
	VpcID                 string `xml:"VpcId"`
	State                 struct {
		Code string `xml:"Code"`
	} `xml:"State"`
	Type          string `xml:"Type"`
	IPAddressType string `xml:"IpAddressType"`
	CreatedTime   string `xml:"CreatedTime"`
}

// ALBHostedZoneID is the canonical hosted zone id of us-east-1's
// application load balancers, for Route53 alias records.
const ALBHostedZoneID = "Z35SXDOTRQ7X7K"

func (e *ELB) xmlActions(as actions) []xmlAction {
	out := []xmlAction{}
	for _, a := range as {
		x := xmlAction{Type: a.typ, Order: a.order}
		switch a.typ {
		case "forward":
			gs := a.groups()
			fc := &xmlForwardConfig{TargetGroupStickinessConfig: xmlSticky{Enabled: a.sticky}}
			if a.sticky {
				fc.TargetGroupStickinessConfig.DurationSeconds = a.stickyS
			}
			for _, g := range gs {
				fc.TargetGroups = append(fc.TargetGroups, xmlTuple{g.arn, g.weight})
			}
			if len(gs) == 1 {
				x.TargetGroupArn = gs[0].arn
			}
			x.ForwardConfig = fc
		case "fixed-response":
			x.FixedResponseConfig = &xmlFixedResponse{StatusCode: strconv.Itoa(a.fixed.status), ContentType: a.fixed.contentType, MessageBody: a.fixed.body}
		case "redirect":
			r := a.redirect
			x.RedirectConfig = &xmlRedirect{Protocol: r["Protocol"], Port: r["Port"], Host: r["Host"], Path: r["Path"], Query: r["Query"], StatusCode: r["StatusCode"]}
		}
		out = append(out, x)
	}
	return out
}

// parseActions reads a list of actions from a request (prefix
// "DefaultActions" or "Actions").
func parseActions(q *Query, prefix string) (actions, error) {
	var out actions
	for i, p := range q.Members(prefix) {
		a := action{typ: q.Get(p + ".Type"), single: q.Get(p + ".TargetGroupArn"), order: i + 1}
		if v, ok, err := q.Int(p + ".Order"); err != nil {
			return nil, err
		} else if ok {
			if v < 1 || v > 50000 {
				return nil, ValidationError("1 validation error detected: Value '%d' at '%s.order' failed to satisfy constraint: Member must have value between 1 and 50000", v, lowerFirst(p))
			}
			a.order = int(v)
		}
		fc := p + ".ForwardConfig"
		for _, gp := range q.Members(fc + ".TargetGroups") {
			w := 1 // AWS's default weight
			if v, ok, err := q.Int(gp + ".Weight"); err != nil {
				return nil, err
			} else if ok {
				w = int(v)
			}
			arn, err := q.Required(gp + ".TargetGroupArn")
			if err != nil {
				return nil, err
			}
			a.forward = append(a.forward, weightedGroup{arn, w})
		}
		a.sticky = q.Get(fc+".TargetGroupStickinessConfig.Enabled") == "true"
		if a.sticky {
			if v, ok, err := q.Int(fc + ".TargetGroupStickinessConfig.DurationSeconds"); err != nil {
				return nil, err
			} else if ok {
				a.stickyS = int(v)
			}
		}
		if a.typ == "fixed-response" {
			code, err := q.Required(p + ".FixedResponseConfig.StatusCode")
			if err != nil {
				return nil, err
			}
			st, _ := strconv.Atoi(code)
			a.fixed = &fixedResponse{status: st, contentType: q.Get(p + ".FixedResponseConfig.ContentType"), body: q.Get(p + ".FixedResponseConfig.MessageBody")}
		}
		if a.typ == "redirect" {
			a.redirect = map[string]string{}
			for _, k := range []string{"Protocol", "Port", "Host", "Path", "Query", "StatusCode"} {
				a.redirect[k] = q.Get(p + ".RedirectConfig." + k)
			}
			if a.redirect["StatusCode"] != "HTTP_301" && a.redirect["StatusCode"] != "HTTP_302" {
				return nil, ValidationError("1 validation error detected: Value at '%s.redirectConfig.statusCode' failed to satisfy constraint: Member must satisfy enum value set: [HTTP_301, HTTP_302]", lowerFirst(p))
			}
		}
		out = append(out, a)
	}
	return out, nil
}

func parseConditions(q *Query) []condition {
	var out []condition
	for _, p := range q.Members("Conditions") {
		c := condition{field: q.Get(p + ".Field"), values: q.Strings(p + ".Values")}
		switch c.field {
		case "path-pattern":
			c.values = append(c.values, q.Strings(p+".PathPatternConfig.Values")...)
		case "host-header":
			c.values = append(c.values, q.Strings(p+".HostHeaderConfig.Values")...)
		}
		out = append(out, c)
	}
	return out
}

func xmlConditions(cs []condition) []xmlCondition {
	out := []xmlCondition{}
	for _, c := range cs {
		x := xmlCondition{Field: c.field, Values: c.values}
		switch c.field {
		case "path-pattern":
			x.PathPatternConfig = &xmlValues{c.values}
		case "host-header":
			x.HostHeaderConfig = &xmlValues{c.values}
		}
		out = append(out, x)
	}
	return out
}

func checkARN(pattern *regexp.Regexp, arn, kind string) error {
	if !pattern.MatchString(arn) {
		return ValidationError("'%s' is not a valid %s ARN", arn, kind)
	}
	return nil
}

func (e *ELB) apiDescribeLoadBalancers(q *Query) (any, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	arns, names := q.Strings("LoadBalancerArns"), q.Strings("Names")
	var out []xmlLoadBalancer
	add := func(lb *loadBalancer) {
		x := xmlLoadBalancer{LoadBalancerArn: lb.arn, DNSName: e.dnsName(lb), CanonicalHostedZoneID: ALBHostedZoneID, LoadBalancerName: lb.name,
			Scheme: "internet-facing", VpcID: "vpc-0fa4e0000000fake", Type: "application", IPAddressType: "ipv4", CreatedTime: lb.created.UTC().Format("2006-01-02T15:04:05.000Z")}
		x.State.Code = "active"
		out = append(out, x)
	}
	switch {
	case len(arns) > 0:
		for _, a := range arns {
			if err := checkARN(lbARNPattern, a, "load balancer"); err != nil {
				return nil, err
			}
			lb := e.lbs[a]
			if lb == nil {
				return nil, Errorf("LoadBalancerNotFound", "One or more load balancers not found")
			}
			add(lb)
		}
	case len(names) > 0:
		for _, n := range names {
			var found *loadBalancer
			for _, lb := range e.lbs {
				if lb.name == n {
					found = lb
				}
			}
			if found == nil {
				return nil, Errorf("LoadBalancerNotFound", "Load balancers '[%s]' not found", n)
			}
			add(found)
		}
	default:
		for _, lb := range e.lbs {
			add(lb)
		}
		sort.Slice(out, func(i, j int) bool { return out[i].LoadBalancerArn < out[j].LoadBalancerArn })
	}
	return struct {
		LoadBalancers []xmlLoadBalancer `xml:"LoadBalancers>member"`
	}{out}, nil
}

func (e *ELB) xmlListener(l *listener) xmlListener {
	return xmlListener{ListenerArn: l.arn, LoadBalancerArn: l.lb.arn, Port: l.port, Protocol: l.protocol, DefaultActions: e.xmlActions(l.actions)}
}

type listenersResult struct {
	Listeners []xmlListener `xml:"Listeners>member"`
}

func (e *ELB) apiDescribeListeners(q *Query) (any, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	arns, lbARN := q.Strings("ListenerArns"), q.Get("LoadBalancerArn")
	if len(arns) == 0 && lbARN == "" {
		return nil, ValidationError("You must specify either listener ARNs or a load balancer ARN")
	}
	if len(arns) > 0 && lbARN != "" {
		return nil, ValidationError("Listener ARNs and a load balancer ARN cannot be specified at the same time")
	}
	out := listenersResult{Listeners: []xmlListener{}}
	if lbARN != "" {
		if err := checkARN(lbARNPattern, lbARN, "load balancer"); err != nil {
			return nil, err
		}
		if e.lbs[lbARN] == nil {
			return nil, Errorf("LoadBalancerNotFound", "One or more load balancers not found")
		}
		for _, l := range e.listeners {
			if l.lb.arn == lbARN {
				out.Listeners = append(out.Listeners, e.xmlListener(l))
			}
		}
		sort.Slice(out.Listeners, func(i, j int) bool { return out.Listeners[i].ListenerArn < out.Listeners[j].ListenerArn })
		return out, nil
	}
	for _, a := range arns {
		if err := checkARN(lisARNPattern, a, "listener"); err != nil {
			return nil, err
		}
		l := e.listeners[a]
		if l == nil {
			return nil, Errorf("ListenerNotFound", "One or more listeners not found")
		}
		out.Listeners = append(out.Listeners, e.xmlListener(l))
	}
	return out, nil
}

func (e *ELB) apiModifyListener(q *Query) (any, error) {
	arn, err := q.Required("ListenerArn")
	if err != nil {
		return nil, err
	}
	if err := checkARN(lisARNPattern, arn, "listener"); err != nil {
		return nil, err
	}
	as, err := parseActions(q, "DefaultActions")
	if err != nil {
		return nil, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	l := e.listeners[arn]
	if l == nil {
		return nil, Errorf("ListenerNotFound", "One or more listeners not found")
	}
	if p := q.Get("Protocol"); p != "" && p != "HTTP" {
		return nil, Errorf("UnsupportedProtocol", "Protocol '%s' is not supported by awsfake listeners (HTTP only)", p)
	}
	port := l.port
	if v, ok, err := q.Int("Port"); err != nil {
		return nil, err
	} else if ok {
		if v < 1 || v > 65535 {
			return nil, ValidationError("1 validation error detected: Value '%d' at 'port' failed to satisfy constraint: Member must have value between 1 and 65535", v)
		}
		port = int(v)
	}
	if len(as) > 0 {
		if err := e.validateActionsLocked(l.lb, as, "defaultActions"); err != nil {
			return nil, err
		}
		l.actions = as
	}
	l.port = port
	e.republishLocked(l)
	e.publishAllLocked()
	return listenersResult{Listeners: []xmlListener{e.xmlListener(l)}}, nil
}

type rulesResult struct {
	Rules []xmlRule `xml:"Rules>member"`
}

func (e *ELB) xmlRule(r *rule) xmlRule {
	return xmlRule{RuleArn: r.arn, Priority: strconv.Itoa(r.priority), Conditions: xmlConditions(r.conditions), Actions: e.xmlActions(r.actions)}
}

func (e *ELB) xmlDefaultRule(l *listener) xmlRule {
	return xmlRule{RuleArn: l.defaultRule, Priority: "default", Conditions: []xmlCondition{}, Actions: e.xmlActions(l.actions), IsDefault: true}
}

func (e *ELB) apiDescribeRules(q *Query) (any, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	arns, lisARN := q.Strings("RuleArns"), q.Get("ListenerArn")
	if len(arns) == 0 && lisARN == "" {
		return nil, ValidationError("You must specify either listener rule ARNs or a listener ARN")
	}
	out := rulesResult{Rules: []xmlRule{}}
	if lisARN != "" {
		if err := checkARN(lisARNPattern, lisARN, "listener"); err != nil {
			return nil, err
		}
		l := e.listeners[lisARN]
		if l == nil {
			return nil, Errorf("ListenerNotFound", "One or more listeners not found")
		}
		var rs []*rule
		for _, r := range e.rules {
			if r.listener == l {
				rs = append(rs, r)
			}
		}
		sort.Slice(rs, func(i, j int) bool { return rs[i].priority < rs[j].priority })
		for _, r := range rs {
			out.Rules = append(out.Rules, e.xmlRule(r))
		}
		out.Rules = append(out.Rules, e.xmlDefaultRule(l))
		return out, nil
	}
	for _, a := range arns {
		if err := checkARN(ruleARNPattern, a, "rule"); err != nil {
			return nil, err
		}
		if r := e.rules[a]; r != nil {
			out.Rules = append(out.Rules, e.xmlRule(r))
			continue
		}
		if l := e.defaultRuleOwnerLocked(a); l != nil {
			out.Rules = append(out.Rules, e.xmlDefaultRule(l))
			continue
		}
		return nil, Errorf("RuleNotFound", "One or more rules not found")
	}
	return out, nil
}

func (e *ELB) defaultRuleOwnerLocked(arn string) *listener {
	for _, l := range e.listeners {
		if l.defaultRule == arn {
			return l
		}
	}
	return nil
}

func (e *ELB) apiModifyRule(q *Query) (any, error) {
	arn, err := q.Required("RuleArn")
	if err != nil {
		return nil, err
	}
	if err := checkARN(ruleARNPattern, arn, "rule"); err != nil {
		return nil, err
	}
	as, err := parseActions(q, "Actions")
	if err != nil {
		return nil, err
	}
	conds := parseConditions(q)
	for _, c := range conds {
		if c.field != "path-pattern" && c.field != "host-header" {
			return nil, ValidationError("Condition field '%s' is not simulated by awsfake (path-pattern and host-header are)", c.field)
		}
		if len(c.values) == 0 {
			return nil, ValidationError("A condition value must be specified for field '%s'", c.field)
		}
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if l := e.defaultRuleOwnerLocked(arn); l != nil {
		if len(conds) > 0 {
			return nil, Errorf("OperationNotPermitted", "Conditions cannot be specified for the default rule")
		}
		if len(as) > 0 {
			if err := e.validateActionsLocked(l.lb, as, "actions"); err != nil {
				return nil, err
			}
			l.actions = as
		}
		e.republishLocked(l)
		e.publishAllLocked()
		return rulesResult{Rules: []xmlRule{e.xmlDefaultRule(l)}}, nil
	}
	r := e.rules[arn]
	if r == nil {
		return nil, Errorf("RuleNotFound", "One or more rules not found")
	}
	if len(as) > 0 {
		if err := e.validateActionsLocked(r.listener.lb, as, "actions"); err != nil {
			return nil, err
		}
		r.actions = as
	}
	if len(conds) > 0 {
		r.conditions = conds
	}
	e.republishLocked(r.listener)
	e.publishAllLocked()
	return rulesResult{Rules: []xmlRule{e.xmlRule(r)}}, nil
}

func (e *ELB) xmlTargetGroup(tg *targetGroup) xmlTargetGroup {
	h := tg.health
	port := "traffic-port"
	if h.Port != 0 {
		port = strconv.Itoa(h.Port)
	}
	secs := func(d interface{ Seconds() float64 }) int {
		s := int(d.Seconds())
		if s < 1 {
			s = 1
		}
		return s
	}
	return xmlTargetGroup{TargetGroupArn: tg.arn, TargetGroupName: tg.name, Protocol: tg.protocol, Port: tg.port, VpcID: "vpc-0fa4e0000000fake",
		HealthCheckProtocol: "HTTP", HealthCheckPort: port, HealthCheckEnabled: true,
		HealthCheckIntervalSeconds: secs(h.Interval), HealthCheckTimeoutSeconds: secs(h.Timeout),
		HealthyThresholdCount: h.HealthyThreshold, UnhealthyThresholdCount: h.UnhealthyThreshold,
		HealthCheckPath: h.Path, Matcher: h.Matcher, LoadBalancerArns: e.lbsOfLocked(tg), TargetType: tg.targetType,
		ProtocolVersion: "HTTP1", IPAddressType: "ipv4"}
}

func (e *ELB) apiDescribeTargetGroups(q *Query) (any, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	arns, names, lbARN := q.Strings("TargetGroupArns"), q.Strings("Names"), q.Get("LoadBalancerArn")
	out := []xmlTargetGroup{}
	switch {
	case len(arns) > 0:
		for _, a := range arns {
			if err := checkARN(tgARNPattern, a, "target group"); err != nil {
				return nil, err
			}
			tg := e.tgs[a]
			if tg == nil {
				return nil, errNoTargetGrps
			}
			out = append(out, e.xmlTargetGroup(tg))
		}
	case len(names) > 0:
		for _, n := range names {
			var found *targetGroup
			for _, tg := range e.tgs {
				if tg.name == n {
					found = tg
				}
			}
			if found == nil {
				return nil, Errorf("TargetGroupNotFound", "Target groups '[%s]' not found", n)
			}
			out = append(out, e.xmlTargetGroup(found))
		}
	default:
		if lbARN != "" {
			if err := checkARN(lbARNPattern, lbARN, "load balancer"); err != nil {
				return nil, err
			}
			if e.lbs[lbARN] == nil {
				return nil, Errorf("LoadBalancerNotFound", "One or more load balancers not found")
			}
		}
		for _, tg := range e.tgs {
			x := e.xmlTargetGroup(tg)
			if lbARN != "" && !contains(x.LoadBalancerArns, lbARN) {
				continue
			}
			out = append(out, x)
		}
		sort.Slice(out, func(i, j int) bool { return out[i].TargetGroupArn < out[j].TargetGroupArn })
	}
	return struct {
		TargetGroups []xmlTargetGroup `xml:"TargetGroups>member"`
	}{out}, nil
}

func contains(xs []string, x string) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}

func (e *ELB) targetGroupOf(q *Query) (*targetGroup, error) {
	arn, err := q.Required("TargetGroupArn")
	if err != nil {
		return nil, err
	}
	if err := checkARN(tgARNPattern, arn, "target group"); err != nil {
		return nil, err
	}
	tg := e.tgs[arn]
	if tg == nil {
		return nil, errNoTargetGrps
	}
	return tg, nil
}

type attrsResult struct {
	Attributes []xmlAttr `xml:"Attributes>member"`
}

func attrsOf(tg *targetGroup) attrsResult {
	keys := make([]string, 0, len(tg.attrs))
	for k := range tg.attrs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := attrsResult{}
	for _, k := range keys {
		out.Attributes = append(out.Attributes, xmlAttr{k, tg.attrs[k]})
	}
	return out
}

func (e *ELB) apiDescribeTargetGroupAttributes(q *Query) (any, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	tg, err := e.targetGroupOf(q)
	if err != nil {
		return nil, err
	}
	return attrsOf(tg), nil
}

func (e *ELB) apiModifyTargetGroupAttributes(q *Query) (any, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	tg, err := e.targetGroupOf(q)
	if err != nil {
		return nil, err
	}
	ms := q.Members("Attributes")
	if len(ms) == 0 {
		return nil, ValidationError("1 validation error detected: Value null at 'attributes' failed to satisfy constraint: Member must not be null")
	}
	for _, p := range ms {
		if err := validateAttr(q.Get(p+".Key"), q.Get(p+".Value")); err != nil {
			return nil, err
		}
	}
	for _, p := range ms {
		tg.attrs[q.Get(p+".Key")] = q.Get(p + ".Value")
	}
	tg.applyAttrsLocked()
	return attrsOf(tg), nil
}

type targetRef struct {
	id   string
	port int
}

func parseTargets(q *Query, required bool) ([]targetRef, error) {
	ms := q.Members("Targets")
	if len(ms) == 0 && required {
		return nil, ValidationError("1 validation error detected: Value null at 'targets' failed to satisfy constraint: Member must not be null")
	}
	var out []targetRef
	for _, p := range ms {
		id, err := q.Required(p + ".Id")
		if err != nil {
			return nil, err
		}
		port, _, err := q.Int(p + ".Port")
		if err != nil {
			return nil, err
		}
		out = append(out, targetRef{id, int(port)})
	}
	return out, nil
}

func (e *ELB) apiDescribeTargetHealth(q *Query) (any, error) {
	refs, err := parseTargets(q, false)
	if err != nil {
		return nil, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	tg, err := e.targetGroupOf(q)
	if err != nil {
		return nil, err
	}
	hs := e.healthLocked(tg)
	out := []xmlTargetHealthDescription{}
	add := func(id string, port int, state, reason, desc string) {
		var x xmlTargetHealthDescription
		x.Target.ID, x.Target.Port = id, port
		x.HealthCheckPort = strconv.Itoa(port)
		if tg.health.Port != 0 {
			x.HealthCheckPort = strconv.Itoa(tg.health.Port)
		}
		x.TargetHealth.State, x.TargetHealth.Reason, x.TargetHealth.Description = state, reason, desc
		out = append(out, x)
	}
	if len(refs) == 0 {
		for _, h := range hs {
			add(h.ID, h.Port, h.State, h.Reason, h.Description)
		}
	}
	for _, r := range refs {
		found := false
		for _, h := range hs {
			if h.ID == r.id && (r.port == 0 || r.port == h.Port) {
				add(h.ID, h.Port, h.State, h.Reason, h.Description)
				found = true
			}
		}
		if !found {
			port := r.port
			if port == 0 {
				port = tg.port
			}
			if tg.targetType == "instance" && !isInstanceID(r.id) {
				return nil, Errorf("InvalidTarget", "The following targets are not valid instances: '%s'", r.id)
			}
			add(r.id, port, StateUnused, "Target.NotRegistered", "Target is not registered to the target group")
		}
	}
	return struct {
		TargetHealthDescriptions []xmlTargetHealthDescription `xml:"TargetHealthDescriptions>member"`
	}{out}, nil
}

func (e *ELB) apiRegisterTargets(q *Query) (any, error) {
	refs, err := parseTargets(q, true)
	if err != nil {
		return nil, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	tg, err := e.targetGroupOf(q)
	if err != nil {
		return nil, err
	}
	// AWS checks every target before it registers any.
	for _, r := range refs {
		if err := checkTarget(tg, r.id, r.port); err != nil {
			return nil, err
		}
	}
	for _, r := range refs {
		if err := e.registerLocked(tg, r.id, r.port); err != nil {
			return nil, err
		}
	}
	return struct{}{}, nil
}

func (e *ELB) apiDeregisterTargets(q *Query) (any, error) {
	refs, err := parseTargets(q, true)
	if err != nil {
		return nil, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	tg, err := e.targetGroupOf(q)
	if err != nil {
		return nil, err
	}
	// AWS checks every target before it deregisters any.
	for _, r := range refs {
		port := r.port
		if port == 0 {
			port = tg.port
		}
		if tg.targets[targetKey{r.id, port}] == nil {
			return nil, Errorf("InvalidTarget", "The following targets are not registered in target group '%s': 'Id=%s,Port=%d'", tg.arn, r.id, port)
		}
	}
	for _, r := range refs {
		if err := e.deregisterLocked(tg, r.id, r.port); err != nil {
			return nil, err
		}
	}
	return struct{}{}, nil
}
