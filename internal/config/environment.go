package config

import (
	"errors"
	"fmt"
	"slices"
	"sort"

	"github.com/cutover/cutover/internal/envfile"
)

// OwnEnv are the variables cutover sets in every instance's environment
// itself; they override whatever the configuration says, so secrets and
// inherit_env may not name them.
var OwnEnv = []string{"PORT", "VERSION", "COLOR", "SERVICE", "INSTANCE", "CUTOVER_MARK"}

// startParallel checks start.parallel. A zero that the file did not
// write (a Config built in code) means the default, 1.
func (v *validator) startParallel(key string, parallel, instances int) {
	_, written := v.c.pos[key]
	switch {
	case parallel < 0 || (parallel == 0 && written):
		v.add(key, "must be at least 1 (got %d)", parallel)
	case instances >= 1 && parallel > instances:
		v.add(key, "must be at most instances, %d (got %d)", instances, parallel)
	}
}

// envFile checks runtime.process.env_file: the file must exist and parse
// (the values are not kept). It is read again at every instance start.
func (v *validator) envFile(key, path string) {
	if path == "" {
		return
	}
	v.file(key, path)
	if _, err := envfile.Read(path); err != nil {
		var perr *envfile.Error
		if !errors.As(err, &perr) {
			return // the read error was reported by v.file
		}
		for _, e := range unjoin(err) {
			v.add(key, "%v", e)
		}
	}
}

// unjoin lists the errors errors.Join combined.
func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

func (v *validator) secrets(key string, secrets map[string]Secret) {
	names := make([]string, 0, len(secrets))
	for name := range secrets {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		sk, s := key+"."+name, secrets[name]
		v.envName(sk, name)
		switch {
		case s.File == "" && s.Env == "":
			v.add(sk, "needs file (a file holding the value) or env (a variable of the daemon's environment)")
		case s.File != "" && s.Env != "":
			v.add(sk, "sets both file and env; choose one")
		case s.File != "":
			v.file(sk+".file", s.File)
		case !envfile.ValidName(s.Env):
			v.add(sk+".env", "%q is not a valid environment variable name", s.Env)
		}
	}
}

func (v *validator) inheritEnv(key string, names []string) {
	for i, name := range names {
		ik := fmt.Sprintf("%s[%d]", key, i)
		v.envName(ik, name)
		if slices.Index(names, name) < i {
			v.add(ik, "%s is listed twice", name)
		}
	}
}

// envName checks a variable name that secrets or inherit_env set.
func (v *validator) envName(key, name string) {
	switch {
	case !envfile.ValidName(name):
		v.add(key, "%q is not a valid environment variable name (letters, digits and '_', not starting with a digit)", name)
	case slices.Contains(OwnEnv, name):
		v.add(key, "%s is set by cutover for every instance and cannot be overridden", name)
	}
}

// InstanceEnv is where a runtime's instances get their environment from:
// the env, env_file and secrets of runtime.process or runtime.docker. ok is
// false for runtimes whose instances cutover does not start (static, asg).
func (r Runtime) InstanceEnv() (env map[string]string, envFile string, secrets map[string]Secret, ok bool) {
	switch {
	case r.Process != nil:
		return r.Process.Env, r.Process.EnvFile, r.Process.Secrets, true
	case r.Docker != nil:
		return r.Docker.Env, r.Docker.EnvFile, r.Docker.Secrets, true
	}
	return nil, "", nil, false
}
