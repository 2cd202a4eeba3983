package awsfake

import (
	"fmt"
	"net"
	"strconv"
	"time"
)

// Topology describes resources to create at start, for a fake run as its
// own process (cmd/awsfake reads it as JSON).
type Topology struct {
	LoadBalancers []LoadBalancerTopology `json:"load_balancers"`
	HostedZones   []string               `json:"hosted_zones"`
	Alarms        []AlarmSpec            `json:"alarms"`
}

// LoadBalancerTopology is one load balancer with its target groups and
// listeners.
type LoadBalancerTopology struct {
	Name         string                `json:"name"`
	TargetGroups []TargetGroupTopology `json:"target_groups"`
	Listeners    []ListenerTopology    `json:"listeners"`
}

// TargetGroupTopology is a target group and the addresses (host:port) of
// its targets, registered as IP targets.
type TargetGroupTopology struct {
	Name                string   `json:"name"`
	HealthCheckPath     string   `json:"health_check_path"`
	DeregistrationDelay string   `json:"deregistration_delay"`
	Targets             []string `json:"targets"`
}

// ListenerTopology is a listener forwarding to target groups (by name) by
// weight.
type ListenerTopology struct {
	Name    string         `json:"name"`
	Port    int            `json:"port"`
	Forward map[string]int `json:"forward"`
}

// Created lists what Build made, for the caller to configure the code
// under test with.
type Created struct {
	Endpoint      string                  `json:"endpoint"`
	Env           []string                `json:"env"`
	LoadBalancers map[string]LoadBalancer `json:"load_balancers"`
	TargetGroups  map[string]TargetGroup  `json:"target_groups"`
	Listeners     map[string]Listener     `json:"listeners"`
	HostedZones   map[string]HostedZone   `json:"hosted_zones"`
}

// Build creates a topology in the server. Listeners are keyed
// "LB/NAME" (NAME defaults to the port).
func (s *Server) Build(t Topology) (*Created, error) {
	c := &Created{Endpoint: s.URL(), Env: s.Env(), LoadBalancers: map[string]LoadBalancer{}, TargetGroups: map[string]TargetGroup{},
		Listeners: map[string]Listener{}, HostedZones: map[string]HostedZone{}}
	for _, lbt := range t.LoadBalancers {
		lb := s.elb.CreateLoadBalancer(lbt.Name)
		c.LoadBalancers[lbt.Name] = lb
		for _, tgt := range lbt.TargetGroups {
			spec := TargetGroupSpec{Name: tgt.Name, TargetType: "ip", HealthCheck: HealthCheck{Path: tgt.HealthCheckPath}}
			if tgt.DeregistrationDelay != "" {
				d, err := time.ParseDuration(tgt.DeregistrationDelay)
				if err != nil {
					return nil, fmt.Errorf("target group %s: deregistration_delay: %w", tgt.Name, err)
				}
				spec.DeregistrationDelay = d
				if d == 0 {
					spec.DeregistrationDelay = -1
				}
			}
			tg := s.elb.CreateTargetGroup(spec)
			c.TargetGroups[tgt.Name] = tg
			for _, addr := range tgt.Targets {
				host, port, err := net.SplitHostPort(addr)
				if err != nil {
					return nil, fmt.Errorf("target group %s: target %q: %w", tgt.Name, addr, err)
				}
				p, _ := strconv.Atoi(port)
				if err := s.elb.RegisterTarget(tg.ARN, host, p); err != nil {
					return nil, fmt.Errorf("target group %s: target %q: %w", tgt.Name, addr, err)
				}
			}
		}
		for _, lt := range lbt.Listeners {
			var ws []Weight
			for name, w := range lt.Forward {
				tg, ok := c.TargetGroups[name]
				if !ok {
					return nil, fmt.Errorf("listener %s/%s: no target group %q", lbt.Name, lt.Name, name)
				}
				ws = append(ws, Weight{tg.ARN, w})
			}
			l, err := s.elb.CreateListener(lb.ARN, lt.Port, ws...)
			if err != nil {
				return nil, fmt.Errorf("listener %s/%s: %w", lbt.Name, lt.Name, err)
			}
			name := lt.Name
			if name == "" {
				name = strconv.Itoa(lt.Port)
			}
			c.Listeners[lbt.Name+"/"+name] = l
		}
	}
	for _, z := range t.HostedZones {
		c.HostedZones[z] = s.r53.CreateHostedZone(z)
	}
	for _, a := range t.Alarms {
		s.cw.PutAlarm(a)
	}
	return c, nil
}
