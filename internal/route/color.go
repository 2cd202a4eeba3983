package route

import "fmt"

// Color names one of the two slots a service has. The zero value is Blue.
type Color uint8

const (
	// Blue is the first slot; a service's first deployment goes live in it.
	Blue Color = 0
	// Green is the second slot.
	Green Color = 1
)

// Colors lists both colours in index order, for loops over a service's pools.
var Colors = [2]Color{Blue, Green}

// String returns "blue" or "green".
func (c Color) String() string {
	if c == Green {
		return "green"
	}
	return "blue"
}

// Other returns the opposite colour.
func (c Color) Other() Color { return 1 - c&1 }

// ParseColor accepts "blue" or "green".
func ParseColor(s string) (Color, error) {
	switch s {
	case "blue":
		return Blue, nil
	case "green":
		return Green, nil
	}
	return Blue, fmt.Errorf("unknown colour %q (want blue or green)", s)
}

// MarshalText encodes the colour as its name, so JSON carries "blue"/"green".
func (c Color) MarshalText() ([]byte, error) { return []byte(c.String()), nil }

// UnmarshalText decodes "blue" or "green".
func (c *Color) UnmarshalText(b []byte) error {
	v, err := ParseColor(string(b))
	if err != nil {
		return err
	}
	*c = v
	return nil
}
