package process

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/cutover/cutover/internal/route"
	"github.com/cutover/cutover/internal/runtime"
)

// This file is the process driver's runtime.Describer, for the drift
// check: what a colour runs now is read from its first live instance in
// /proc (argv, environment, working directory, the executable's digest),
// not from the configuration, so a pool started under an older
// configuration shows what it really runs. What a colour would run for a
// release is computed from the options as Start would.

var _ runtime.Describer = (*Driver)(nil)

// Describe implements runtime.Describer.
func (d *Driver) Describe(ctx context.Context, c route.Color, rel *runtime.Release) (runtime.Description, error) {
	return describer{opts: d.opts}.Describe(ctx, c, rel)
}

// NewDescriber returns the Describer of a process runtime without a
// Driver: it reads the record file under opts.StateDir and /proc, starts
// and changes nothing (for `cutover diff` without a daemon).
func NewDescriber(opts Options) runtime.Describer {
	opts.defaults()
	return describer{opts: opts}
}

type describer struct{ opts Options }

// expectedVars are the variables the driver sets itself, which differ
// between colours by design.
var expectedVars = []string{"PORT", "VERSION", "COLOR", "SERVICE", "INSTANCE", markVar}

func (ds describer) Describe(ctx context.Context, c route.Color, rel *runtime.Release) (runtime.Description, error) {
	if rel != nil {
		return ds.wouldRun(c, *rel)
	}
	pr, err := ds.recorded(c)
	if err != nil || pr == nil {
		return runtime.Description{Color: c, Fields: []runtime.Field{}}, err
	}
	for _, ir := range pr.Instances {
		if !sameProcess(ir.PID, ir.StartTicks) {
			continue
		}
		if desc, err := ds.running(c, *pr, ir); err == nil {
			return desc, nil
		}
	}
	// Recorded but no instance readable (stopped, or another user's).
	desc, err := ds.wouldRun(c, runtime.Release{Version: pr.Version, Env: pr.Env})
	desc.Fields = append(desc.Fields, runtime.Field{Name: "state", Value: "recorded, no live instance to read", Expected: true})
	return desc, err
}

// recorded is the colour's pool in the record file, or nil.
func (ds describer) recorded(c route.Color) (*poolRecord, error) {
	path := filepath.Join(ds.opts.StateDir, "instances", ds.opts.Service+".json")
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var rec records
	if err := json.Unmarshal(b, &rec); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	for _, pr := range rec.Pools {
		if pr.Color == c && len(pr.Instances) > 0 {
			return &pr, nil
		}
	}
	return nil, nil
}

// running reads one live instance.
func (ds describer) running(c route.Color, pr poolRecord, ir instanceRecord) (runtime.Description, error) {
	proc := "/proc/" + strconv.Itoa(ir.PID)
	cmdline, err := os.ReadFile(proc + "/cmdline")
	if err != nil {
		return runtime.Description{}, err
	}
	environ, err := os.ReadFile(proc + "/environ")
	if err != nil {
		return runtime.Description{}, err
	}
	cwd, _ := os.Readlink(proc + "/cwd")
	argv := strings.Split(strings.TrimSuffix(string(cmdline), "\x00"), "\x00")
	argv = ds.normalize(argv, c, pr.Version, ir.ID, strconv.Itoa(ir.Port))
	env := map[string]string{}
	for kv := range bytes.SplitSeq(environ, []byte{0}) {
		if k, v, ok := strings.Cut(string(kv), "="); ok {
			env[k] = v
		}
	}
	desc := runtime.Description{Color: c, Version: pr.Version}
	desc.Fields = append(desc.Fields, ds.common(c, pr.Version, len(pr.Instances))...)
	desc.Fields = append(desc.Fields,
		runtime.Field{Name: "command", Value: quoteArgv(argv)},
		runtime.Field{Name: "dir", Value: cwd},
		runtime.Field{Name: "binary.digest", Value: digestFile(proc + "/exe")},
	)
	desc.Fields = append(desc.Fields, ds.envFields(env, pr.Env)...)
	return desc, nil
}

// wouldRun computes what an instance of rel in colour c would get.
func (ds describer) wouldRun(c route.Color, rel runtime.Release) (runtime.Description, error) {
	o := ds.opts
	vars := map[string]string{"VERSION": rel.Version, "COLOR": c.String(), "SERVICE": o.Service,
		"INSTANCE": instanceID(o.Service, c, 1)}
	r := strings.NewReplacer("${VERSION}", vars["VERSION"], "${COLOR}", vars["COLOR"],
		"${SERVICE}", vars["SERVICE"], "${INSTANCE}", vars["INSTANCE"], "${PORT}", "${PORT}")
	argv := make([]string, len(o.Command))
	for i, a := range o.Command {
		argv[i] = r.Replace(a)
	}
	tmpl := ds.normalize(argv, c, rel.Version, vars["INSTANCE"], "${PORT}")
	d := &Driver{name: o.Service, opts: o, stateDir: o.StateDir}
	inherited, file, secrets, err := d.readEnv()
	if err != nil {
		return runtime.Description{}, fmt.Errorf("service %s: %w", o.Service, err)
	}
	configured := make(map[string]string, len(o.Env))
	for k, v := range o.Env {
		configured[k] = r.Replace(v)
	}
	vars[markVar] = d.mark()
	env := map[string]string{}
	for _, l := range []map[string]string{inherited, file, configured, rel.Env, secrets, vars} {
		maps.Copy(env, l)
	}
	dir := o.Dir
	if dir == "" {
		dir, _ = os.Getwd()
	}
	desc := runtime.Description{Color: c, Version: rel.Version}
	desc.Fields = append(desc.Fields, ds.common(c, rel.Version, o.Instances)...)
	desc.Fields = append(desc.Fields,
		runtime.Field{Name: "command", Value: quoteArgv(tmpl)},
		runtime.Field{Name: "dir", Value: dir},
		runtime.Field{Name: "binary.digest", Value: digestFile(executable(argv, dir))},
	)
	desc.Fields = append(desc.Fields, ds.envFields(env, rel.Env)...)
	return desc, nil
}

// common are the fields that come from the options: the runtime and
// health settings, and the colour's identity.
func (ds describer) common(c route.Color, version string, instances int) []runtime.Field {
	o := ds.opts
	return []runtime.Field{
		{Name: "version", Value: version, Expected: true},
		{Name: "color", Value: c.String(), Expected: true},
		{Name: "runtime", Value: "process"},
		{Name: "instances", Value: strconv.Itoa(instances)},
		{Name: "runtime.stop_timeout", Value: o.StopTimeout.String()},
		{Name: "runtime.start_timeout", Value: o.StartTimeout.String()},
		{Name: "runtime.inherit_env", Value: strings.Join(o.InheritEnv, ",")},
		{Name: "health.path", Value: o.Gate.Path},
		{Name: "health.timeout", Value: o.Gate.Timeout.String()},
		{Name: "health.unhealthy_threshold", Value: strconv.Itoa(o.UnhealthyThreshold)},
	}
}

// envFields lists env as fields "env.NAME", sorted; secrets and values
// that look secret are hashed, the release's own variables and the
// driver's are expected to differ.
func (ds describer) envFields(env, release map[string]string) []runtime.Field {
	var out []runtime.Field
	for _, k := range slices.Sorted(maps.Keys(env)) {
		v := env[k]
		_, isSecret := ds.opts.Secrets[k]
		f := runtime.Field{Name: "env." + k, Value: v}
		if isSecret || secretLike(k, v) {
			f.Value, f.Secret = Hash(v), true
		}
		if slices.Contains(expectedVars, k) {
			f.Expected = true
		}
		out = append(out, f)
	}
	return out
}

// Hash is how a secret value is shown: "sha256:" and 12 hex digits, the
// same for the same value, and nothing of the value itself.
func Hash(v string) string {
	sum := sha256.Sum256([]byte(v))
	return "sha256:" + hex.EncodeToString(sum[:6])
}

var secretName = regexp.MustCompile(`(?i)(pass|secret|token|key|credential|private|auth|cert|signature|salt)`)

// secretLike reports whether a variable looks like a secret by its name,
// or holds a URL with a password.
func secretLike(name, value string) bool {
	if secretName.MatchString(name) {
		return true
	}
	if u, err := url.Parse(value); err == nil && u.User != nil {
		if _, ok := u.User.Password(); ok {
			return true
		}
	}
	return false
}

// normalize turns an instance's argv back into its template as far as
// the values differ between colours by design (instance id, port,
// version, and the colour where the template substitutes it), so that
// two colours compare by everything else.
func (ds describer) normalize(argv []string, c route.Color, version, instance, port string) []string {
	vals := []string{instance, "${INSTANCE}", port, "${PORT}"}
	if len(version) > 1 {
		vals = append(vals, version, "${VERSION}")
	}
	back := strings.NewReplacer(vals...)
	out := make([]string, len(argv))
	colorWord := regexp.MustCompile(`\b` + c.String() + `\b`)
	for i, a := range argv {
		out[i] = back.Replace(a)
		if i < len(ds.opts.Command) && strings.Contains(ds.opts.Command[i], "${COLOR}") {
			out[i] = colorWord.ReplaceAllString(out[i], "${COLOR}")
		}
	}
	return out
}

// executable is where argv[0] would be found from dir.
func executable(argv []string, dir string) string {
	if len(argv) == 0 {
		return ""
	}
	p := argv[0]
	if strings.Contains(p, "/") {
		if !filepath.IsAbs(p) {
			p = filepath.Join(dir, p)
		}
		return p
	}
	if lp, err := exec.LookPath(p); err == nil {
		return lp
	}
	return p
}

// digestFile is the sha256 of a file, or why it could not be read.
func digestFile(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return "unreadable: " + errors.Unwrap(err).Error()
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "unreadable: " + err.Error()
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil))
}

// quoteArgv renders argv as a JSON list, unambiguous about spaces.
func quoteArgv(argv []string) string {
	b, _ := json.Marshal(argv)
	return string(b)
}
