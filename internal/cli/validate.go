package cli

import (
	"errors"
	"fmt"

	"github.com/cutover/cutover/internal/config"
)

// validateReport is the --json output of validate.
type validateReport struct {
	File     string          `json:"file"`
	Valid    bool            `json:"valid"`
	Services int             `json:"services"`
	Problems []problemReport `json:"problems"`
}

type problemReport struct {
	File    string `json:"file"`
	Line    int    `json:"line,omitempty"`
	Column  int    `json:"column,omitempty"`
	Key     string `json:"key,omitempty"`
	Message string `json:"message"`
}

// validate checks a config file without a daemon: every problem, one per
// line as "file:line: key: message", exit 1; or "FILE: valid (N services)".
func (a *app) validate(o *opts, pos []string) int {
	cfg, err := config.Load(o.config)
	var verr *config.ValidationError
	if err != nil && !errors.As(err, &verr) {
		return a.fail(err) // unreadable file
	}
	if o.json {
		rep := validateReport{File: o.config, Valid: err == nil, Problems: []problemReport{}}
		if cfg != nil {
			rep.Services = len(cfg.Services)
		}
		if verr != nil {
			for _, p := range verr.Problems {
				rep.Problems = append(rep.Problems, problemReport{File: p.File, Line: p.Line, Column: p.Column, Key: p.Key, Message: p.Msg})
			}
		}
		if code := a.printJSON(rep); code != ExitOK || err == nil {
			return code
		}
		return ExitError
	}
	if verr != nil {
		for _, p := range verr.Problems {
			fmt.Fprintln(a.stdout, p.String())
		}
		fmt.Fprintf(a.stderr, "cutover: %s is invalid: %d %s\n", o.config, len(verr.Problems), plural(len(verr.Problems), "problem"))
		return ExitError
	}
	fmt.Fprintf(a.stdout, "%s: valid (%d %s)\n", o.config, len(cfg.Services), plural(len(cfg.Services), "service"))
	return ExitOK
}

func plural(n int, word string) string {
	if n == 1 {
		return word
	}
	return word + "s"
}
