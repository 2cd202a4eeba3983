package config

import "go.yaml.in/yaml/v3"

// This file is the file format: every key cutover.yaml may hold, and the
// field it fills. Keys not listed here are errors.

func (d *decoder) config(root *yaml.Node, c *Config) {
	d.mapping(root, "", fields{
		"api": func(key string, n *yaml.Node) {
			d.mapping(n, key, fields{
				"listen":        d.str(&c.API.Listen),
				"token_file":    d.str(&c.API.TokenFile),
				"allowed_hosts": d.hosts(&c.API.AllowedHosts),
			})
		},
		"state_dir": d.str(&c.StateDir),
		"services": func(key string, n *yaml.Node) {
			d.entries(n, key, func(name, child string, _, vn *yaml.Node) {
				s := defaultService(name)
				d.service(vn, child, s)
				c.Services[name] = s
			})
		},
	})
}

func (d *decoder) service(n *yaml.Node, key string, s *Service) {
	d.mapping(n, key, fields{
		"listen":         d.str(&s.Listen),
		"preview_listen": d.str(&s.PreviewListen),
		"tls": func(key string, n *yaml.Node) {
			if isNull(n) {
				return
			}
			s.TLS = &TLS{}
			d.mapping(n, key, fields{"cert": d.str(&s.TLS.Cert), "key": d.str(&s.TLS.Key)})
		},
		"h2c":             d.bool(&s.H2C),
		"trusted_proxies": d.strs(&s.TrustedProxies),
		"sticky_cookie":   d.str(&s.StickyCookie),
		"instances":       d.int(&s.Instances),
		"start": func(key string, n *yaml.Node) {
			d.mapping(n, key, fields{"parallel": d.int(&s.Start.Parallel)})
		},
		"runtime": func(key string, n *yaml.Node) { d.runtime(n, key, &s.Runtime) },
		"traffic": func(key string, n *yaml.Node) { d.traffic(n, key, &s.Traffic) },
		"health": func(key string, n *yaml.Node) {
			h := &s.Health
			d.mapping(n, key, fields{
				"path":                d.str(&h.Path),
				"interval":            d.duration(&h.Interval),
				"timeout":             d.duration(&h.Timeout),
				"healthy_threshold":   d.int(&h.HealthyThreshold),
				"unhealthy_threshold": d.int(&h.UnhealthyThreshold),
			})
		},
		"timeouts": func(key string, n *yaml.Node) {
			t := &s.Timeouts
			d.mapping(n, key, fields{
				"read_header":     d.duration(&t.ReadHeader),
				"idle":            d.duration(&t.Idle),
				"upstream_header": d.duration(&t.UpstreamHeader),
			})
		},
		"drain_timeout": d.duration(&s.DrainTimeout),
		"strategy":      func(key string, n *yaml.Node) { d.strategy(n, key, &s.Strategy) },
		"keep_previous": d.duration(&s.KeepPrevious),
		"quiet_period":  d.duration(&s.QuietPeriod),
		"hooks": func(key string, n *yaml.Node) {
			h := &s.Hooks
			d.mapping(n, key, fields{
				"pre_provision": d.hooks(&h.PreProvision),
				"pre_traffic":   d.hooks(&h.PreTraffic),
				"post_traffic":  d.hooks(&h.PostTraffic),
				"post_promote":  d.hooks(&h.PostPromote),
				"post_retire":   d.hooks(&h.PostRetire),
				"on_rollback":   d.hooks(&h.OnRollback),
				"timeout":       d.duration(&h.Timeout),
			})
		},
		"fallback_page": d.str(&s.FallbackPage),
		"preflight":     func(key string, n *yaml.Node) { d.preflight(n, key, s) },
	})
}

func (d *decoder) runtime(n *yaml.Node, key string, r *Runtime) {
	d.mapping(n, key, fields{
		"process": func(key string, n *yaml.Node) {
			if isNull(n) {
				return
			}
			p := defaultProcess()
			r.Process = p
			d.mapping(n, key, fields{
				"command": d.strs(&p.Command),
				"env": func(key string, n *yaml.Node) {
					p.Env = make(map[string]string)
					d.entries(n, key, func(name, child string, _, vn *yaml.Node) {
						if v, ok := d.text(vn, child); ok {
							p.Env[name] = v
						}
					})
				},
				"env_file":      d.str(&p.EnvFile),
				"secrets":       func(key string, n *yaml.Node) { d.secrets(n, key, p) },
				"inherit_env":   d.strs(&p.InheritEnv),
				"dir":           d.str(&p.Dir),
				"stop_timeout":  d.duration(&p.StopTimeout),
				"start_timeout": d.duration(&p.StartTimeout),
			})
		},
		"docker": func(key string, n *yaml.Node) { d.docker(n, key, r) },
		"static": func(key string, n *yaml.Node) {
			if isNull(n) {
				return
			}
			st := &Static{Versions: make(map[string][]string)}
			r.Static = st
			d.mapping(n, key, fields{
				"versions": func(key string, n *yaml.Node) {
					d.entries(n, key, func(version, child string, _, vn *yaml.Node) {
						var addrs []string
						d.strs(&addrs)(child, vn)
						st.Versions[version] = addrs
					})
				},
			})
		},
		"asg": func(key string, n *yaml.Node) { d.asg(n, key, r) },
		"upstream_tls": func(key string, n *yaml.Node) {
			if isNull(n) {
				return
			}
			u := &UpstreamTLS{}
			r.UpstreamTLS = u
			d.mapping(n, key, fields{"ca_file": d.str(&u.CAFile), "server_name": d.str(&u.ServerName)})
		},
	})
}

// secrets decodes runtime.process.secrets: NAME: {file: PATH} or
// NAME: {env: DAEMON_VAR}; validate.go checks that exactly one is set.
func (d *decoder) secrets(n *yaml.Node, key string, p *Process) {
	p.Secrets = make(map[string]Secret)
	d.entries(n, key, func(name, child string, _, vn *yaml.Node) {
		var s Secret
		if !isNull(vn) && vn.Kind != yaml.MappingNode {
			d.problem(vn, child, "must be {file: PATH} or {env: DAEMON_VAR}, got %s", describe(vn))
			return
		}
		d.mapping(vn, child, fields{"file": d.str(&s.File), "env": d.str(&s.Env)})
		p.Secrets[name] = s
	})
}

func (d *decoder) strategy(n *yaml.Node, key string, s *Strategy) {
	d.mapping(n, key, fields{
		"steps": func(key string, n *yaml.Node) {
			s.Steps = nil
			d.seq(n, key, func(child string, en *yaml.Node) {
				st := Step{Manual: true, Line: en.Line}
				d.mapping(en, child, fields{"weight": d.weight(&st.Weight), "pause": d.pause(&st)})
				s.Steps = append(s.Steps, st)
			})
		},
		"analysis": func(key string, n *yaml.Node) {
			a := &s.Analysis
			d.mapping(n, key, fields{
				"interval":        d.duration(&a.Interval),
				"max_error_rate":  d.percent(&a.MaxErrorRate),
				"max_p99_latency": d.duration(&a.MaxP99Latency),
				"min_requests":    d.int(&a.MinRequests),
				"alarms":          d.strs(&a.Alarms),
				"cloudwatch":      d.cloudWatch(&a.CloudWatch),
			})
		},
		"progress_deadline": d.duration(&s.ProgressDeadline),
	})
}
