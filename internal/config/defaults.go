package config

import "time"

// This file is the one place cutover's configuration defaults live. The
// decoder starts from these values and overwrites what the file sets, so an
// explicit zero (max_p99_latency: 0 to disable the latency check,
// keep_previous: 0s) is kept rather than mistaken for "unset". Relative
// paths here are resolved against the config file's directory afterwards.

func defaultConfig() *Config {
	return &Config{
		API:      API{Listen: "127.0.0.1:7070"},
		StateDir: ".cutover",
		Services: make(map[string]*Service),
	}
}

func defaultService(name string) *Service {
	return &Service{
		Name:         name,
		StickyCookie: "cutover_" + name,
		Instances:    1,
		Start:        Start{Parallel: 1},
		Health: Health{
			Path:               "/healthz",
			Interval:           time.Second,
			Timeout:            2 * time.Second,
			HealthyThreshold:   2,
			UnhealthyThreshold: 3,
		},
		Timeouts: Timeouts{
			ReadHeader:     10 * time.Second,
			Idle:           120 * time.Second,
			UpstreamHeader: 60 * time.Second,
		},
		DrainTimeout: 30 * time.Second,
		Strategy: Strategy{
			Analysis: Analysis{
				Interval:      time.Second,
				MaxErrorRate:  0.01,
				MaxP99Latency: time.Second,
				MinRequests:   50,
				CloudWatch:    CloudWatchMetrics{Period: time.Minute, Delay: time.Minute},
			},
			ProgressDeadline: 10 * time.Minute,
		},
		KeepPrevious: time.Hour,
		QuietPeriod:  10 * time.Second,
		Hooks:        Hooks{Timeout: 5 * time.Minute},
	}
}

func defaultProcess() *Process {
	return &Process{
		Dir:          ".",
		StopTimeout:  10 * time.Second,
		StartTimeout: 60 * time.Second,
	}
}
