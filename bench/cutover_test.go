//go:build cutover_router

package bench

import (
	"context"
	"testing"
)

func init() {
	subjects = append(subjects, proxySubject{"cutover", func(ctx context.Context, tb testing.TB, blue, green string) string {
		c, err := StartCutover(ctx, blue, green, 10, nil)
		if err != nil {
			tb.Fatal(err)
		}
		return c.Addr
	}})
}
