// Package awsconf builds the AWS SDK configuration every cutover driver
// that talks to AWS uses, the standard way: the SDK's default credential
// chain (environment, shared config and profile, web identity, IMDS),
// AWS_REGION (or a region from the configuration file), AWS_ENDPOINT_URL
// and the per-service AWS_ENDPOINT_URL_<SERVICE> overrides, AWS_CA_BUNDLE,
// all handled by the SDK's own config loader. Throttling and transient
// errors are retried by the SDK's standard retryer with more attempts
// than its default, so a burst of throttling is survived; a caller that
// still gets an error treats it as "the call keeps failing".
//
// AWS_MAX_ATTEMPTS, the SDK's own setting, replaces MaxAttempts when set
// (1 = no retries): how long a failing call is retried before it pauses
// a deployment.
//
// It holds no state; Load is safe for concurrent use.
package awsconf

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/config"
)

// MaxAttempts is how many times one AWS call is tried (the SDK default is
// 3) before it counts as failing.
const MaxAttempts = 8

// MaxBackoff bounds the SDK retryer's exponential backoff between tries.
const MaxBackoff = 5 * time.Second

// Load returns the SDK configuration for region ("" takes AWS_REGION or
// the profile's region). It fails when no region can be found, naming
// what to set, and never reads or logs the credentials themselves.
func Load(ctx context.Context, region string) (aws.Config, error) {
	attempts := MaxAttempts
	if v := os.Getenv("AWS_MAX_ATTEMPTS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return aws.Config{}, fmt.Errorf("aws config: AWS_MAX_ATTEMPTS=%q: want a whole number of attempts, at least 1", v)
		}
		attempts = n
	}
	opts := []func(*config.LoadOptions) error{
		config.WithRetryer(func() aws.Retryer {
			return retry.NewStandard(func(o *retry.StandardOptions) {
				o.MaxAttempts = attempts
				o.MaxBackoff = MaxBackoff
			})
		}),
	}
	if region != "" {
		opts = append(opts, config.WithRegion(region))
	}
	cfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return aws.Config{}, fmt.Errorf("aws config: %w", err)
	}
	if cfg.Region == "" {
		return aws.Config{}, fmt.Errorf("aws config: no region: set traffic.*.region in the config or AWS_REGION in the daemon's environment")
	}
	return cfg, nil
}
