package process

import (
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"

	"github.com/cutover/cutover/internal/envfile"
)

// Secret says where a secret variable's value is read from at every
// instance start: exactly one of File (the file's content, without one
// trailing newline) and Env (a variable of the daemon's environment).
type Secret struct {
	File string
	Env  string
}

// baseEnv are the variables of the daemon's environment every instance
// gets (those the daemon has): what a program needs to find its tools,
// its home, its language and its time zone. Nothing else is passed
// unless InheritEnv names it, so that the daemon's CUTOVER_TOKEN, cloud
// credentials and the like never reach an application.
var baseEnv = []string{"PATH", "HOME", "LANG", "TZ"}

// readEnv reads what an instance's environment takes from outside the
// driver's options, at its start: the inherited variables, the env file
// and the secrets. Its errors name the file or variable, never a value.
func (d *Driver) readEnv() (inherited, file, secrets map[string]string, err error) {
	inherited = make(map[string]string)
	for _, k := range slices.Concat(baseEnv, d.opts.InheritEnv) {
		if v, ok := os.LookupEnv(k); ok {
			inherited[k] = v
		}
	}
	if path := d.opts.EnvFile; path != "" {
		if file, err = envfile.Read(path); err != nil {
			return nil, nil, nil, fmt.Errorf("env_file: %w", err)
		}
	}
	secrets = make(map[string]string, len(d.opts.Secrets))
	for _, name := range slices.Sorted(maps.Keys(d.opts.Secrets)) {
		v, err := readSecret(d.opts.Secrets[name])
		if err != nil {
			return nil, nil, nil, fmt.Errorf("secret %s: %w", name, err)
		}
		secrets[name] = v
	}
	return inherited, file, secrets, nil
}

// HookEnv reads, as an instance start would, the service's env_file and
// secrets, for the release hooks (a pre_provision migration needs the
// database password the instances get). Errors name the file or
// variable, never a value.
func (d *Driver) HookEnv() (file, secrets map[string]string, err error) {
	_, file, secrets, err = d.readEnv()
	return file, secrets, err
}

// readSecret reads one secret's value. A file's one trailing newline (as
// `echo value > file` writes) is not part of the value.
func readSecret(s Secret) (string, error) {
	if s.Env != "" {
		v, ok := os.LookupEnv(s.Env)
		if !ok {
			return "", fmt.Errorf("the daemon's environment has no %s", s.Env)
		}
		return v, nil
	}
	b, err := os.ReadFile(s.File)
	if err != nil {
		return "", err // names the file, and only the file
	}
	v := strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")
	if strings.IndexByte(v, 0) >= 0 {
		return "", fmt.Errorf("%s holds a NUL byte, which no environment variable can", s.File)
	}
	return v, nil
}

// environ is an instance's whole environment, sorted by name: the layers
// in order of precedence, each overriding the ones before.
func environ(layers ...map[string]string) []string {
	all := make(map[string]string)
	for _, l := range layers {
		maps.Copy(all, l)
	}
	env := make([]string, 0, len(all))
	for _, k := range slices.Sorted(maps.Keys(all)) {
		env = append(env, k+"="+all[k])
	}
	return env
}
