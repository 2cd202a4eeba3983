package runtime

import (
	"context"

	"github.com/cutover/cutover/internal/route"
)

// Describer is implemented by drivers that can say what a colour runs (or
// would run for a release), for the drift check between blue and green
// (`cutover diff`, and the preflight before a deployment). Drivers differ
// in what they know: a process pool has a command, an environment, a
// directory and a binary digest; a container pool an image and its digest;
// an Auto Scaling group its subnets, instance type and launch template.
type Describer interface {
	// Describe returns what the colour runs now, or would run for rel
	// when rel is not nil (the candidate before it starts). A colour that
	// runs nothing returns an empty Description and no error.
	Describe(ctx context.Context, color route.Color, rel *Release) (Description, error)
}

// Description is a colour's settings as named fields, in a stable order.
type Description struct {
	Color   route.Color `json:"color"`
	Version string      `json:"version,omitempty"`
	Fields  []Field     `json:"fields"`
}

// Field is one setting of a colour. A secret's Value is a hash of the
// value (never the value itself), so that two colours can be compared and
// the difference shown without revealing either. Expected marks fields
// that differ between colours by design (version, colour, instance
// numbers): the drift check reports them only for information.
type Field struct {
	Name     string `json:"name"`
	Value    string `json:"value"`
	Secret   bool   `json:"secret,omitempty"`
	Expected bool   `json:"expected,omitempty"`
}
