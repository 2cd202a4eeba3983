package docker

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"

	"github.com/cutover/cutover/internal/envfile"
)

// envLayers is what a container's environment is built from, read at its
// start. secrets holds values that must not be logged.
type envLayers struct {
	inherited, file, secrets map[string]string
}

// readEnv reads InheritEnv, EnvFile and Secrets. Its errors name the file
// or variable, never a value. Unlike a process, a container gets nothing
// of the daemon's environment but what InheritEnv names: its image sets
// PATH and the like.
func (d *Driver) readEnv() (envLayers, error) {
	l := envLayers{inherited: map[string]string{}, secrets: map[string]string{}}
	for _, k := range d.opts.InheritEnv {
		if v, ok := os.LookupEnv(k); ok {
			l.inherited[k] = v
		}
	}
	if path := d.opts.EnvFile; path != "" {
		f, err := envfile.Read(path)
		if err != nil {
			return envLayers{}, fmt.Errorf("env_file: %w", err)
		}
		l.file = f
	}
	for _, name := range slices.Sorted(maps.Keys(d.opts.Secrets)) {
		v, err := readSecret(d.opts.Secrets[name])
		if err != nil {
			return envLayers{}, fmt.Errorf("secret %s: %w", name, err)
		}
		l.secrets[name] = v
	}
	return l, nil
}

// HookEnv reads the env_file and secrets as a container start would, for
// the release hooks.
func (d *Driver) HookEnv() (file, secrets map[string]string, err error) {
	l, err := d.readEnv()
	return l.file, l.secrets, err
}

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
		return "", err
	}
	v := strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")
	if strings.IndexByte(v, 0) >= 0 {
		return "", fmt.Errorf("%s holds a NUL byte, which no environment variable can", s.File)
	}
	return v, nil
}

// substitute replaces ${PORT}, ${VERSION}, ${COLOR}, ${SERVICE} and
// ${INSTANCE} in s.
func substitute(s string, vars map[string]string) string {
	return strings.NewReplacer("${PORT}", vars["PORT"], "${VERSION}", vars["VERSION"],
		"${COLOR}", vars["COLOR"], "${SERVICE}", vars["SERVICE"], "${INSTANCE}", vars["INSTANCE"]).Replace(s)
}

// containerEnv is a container's whole environment, sorted, and the names
// of its variables whose values are secret (env_file and secrets).
func (d *Driver) containerEnv(l envLayers, release, vars map[string]string) (env []string, secret map[string]bool) {
	own := make(map[string]string, len(d.opts.Env))
	for k, v := range d.opts.Env {
		own[k] = substitute(v, vars)
	}
	all := map[string]string{}
	secret = map[string]bool{}
	for i, layer := range []map[string]string{l.inherited, l.file, own, release, l.secrets, vars} {
		for k, v := range layer {
			all[k] = v
			secret[k] = i != 2 && i != 5 // all but env and cutover's own: inherited, env file, release env, secrets
		}
	}
	for _, k := range slices.Sorted(maps.Keys(all)) {
		env = append(env, k+"="+all[k])
	}
	return env, secret
}

// hashValue is how Describe shows a secret: enough to compare two colours,
// nothing to read.
func hashValue(v string) string {
	sum := sha256.Sum256([]byte(v))
	return "sha256:" + hex.EncodeToString(sum[:8])
}
