package config

import (
	"fmt"
	"strings"
)

// Problem is one thing wrong with a configuration, located in its file.
type Problem struct {
	// File is the configuration file's name as the user gave it.
	File string
	// Line and Column locate the offending value (1-based); 0 when unknown,
	// for example for a Config built in code.
	Line, Column int
	// Key is the dotted path of the offending key, with 0-based list
	// indices: "services.web.strategy.steps[1].weight". "" for problems
	// with the file as a whole (syntax errors).
	Key string
	// Msg says what is wrong and, where it helps, what was found.
	Msg string
}

// String formats the problem as "file:line: key: message", leaving out the
// parts that are unknown.
func (p Problem) String() string {
	var b strings.Builder
	switch {
	case p.File != "" && p.Line > 0:
		fmt.Fprintf(&b, "%s:%d: ", p.File, p.Line)
	case p.File != "":
		fmt.Fprintf(&b, "%s: ", p.File)
	case p.Line > 0:
		fmt.Fprintf(&b, "line %d: ", p.Line)
	}
	if p.Key != "" {
		b.WriteString(p.Key)
		b.WriteString(": ")
	}
	b.WriteString(p.Msg)
	return b.String()
}

// ValidationError lists every problem found in a configuration, in file
// order. Load, Parse and Validate return it (as *ValidationError) whenever
// the configuration is unusable; it always holds at least one Problem.
type ValidationError struct {
	Problems []Problem
}

// Error returns the problems one per line.
func (e *ValidationError) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}
