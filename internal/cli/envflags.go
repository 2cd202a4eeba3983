package cli

import (
	"fmt"
	"maps"
	"strings"

	"github.com/cutover/cutover/internal/envfile"
)

// releaseEnv is deploy's per-release environment: the --env-file's
// variables, then each --env KEY=VALUE over them. Its errors name the
// file, line or flag, never a value.
func releaseEnv(file string, pairs []string) (map[string]string, error) {
	env := map[string]string{}
	if file != "" {
		vars, err := envfile.Read(file)
		if err != nil {
			return nil, fmt.Errorf("--env-file: %w", err)
		}
		maps.Copy(env, vars)
	}
	for _, kv := range pairs {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			// The argument is not repeated: it may be a value typed alone.
			return nil, fmt.Errorf("--env takes KEY=VALUE; argument %d of --env has no KEY=", len(env)+1)
		}
		env[k] = v
	}
	if len(env) == 0 {
		return nil, nil
	}
	return env, nil
}
