package config

// Setting is one top-level key of a service and its value, as a reload
// compares them.
type Setting struct {
	Key   string
	Value any
}

// Settings lists the service's top-level keys with their values, in the
// order the file format declares them (schema.go); the name is not a key.
// A reload diffs two services by it, so it names every key the file has:
// a test checks that it covers every field of Service.
func (s *Service) Settings() []Setting {
	return []Setting{
		{"listen", s.Listen},
		{"preview_listen", s.PreviewListen},
		{"tls", s.TLS},
		{"h2c", s.H2C},
		{"trusted_proxies", s.TrustedProxies},
		{"sticky_cookie", s.StickyCookie},
		{"instances", s.Instances},
		{"start", s.Start},
		{"runtime", s.Runtime},
		{"traffic", s.Traffic},
		{"health", s.Health},
		{"timeouts", s.Timeouts},
		{"drain_timeout", s.DrainTimeout},
		{"strategy", s.Strategy},
		{"keep_previous", s.KeepPrevious},
		{"quiet_period", s.QuietPeriod},
		{"hooks", s.Hooks},
		{"fallback_page", s.FallbackPage},
		{"preflight", s.Preflight},
	}
}
