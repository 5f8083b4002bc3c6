//go:build !unix

package leaf

import (
	"log/slog"
	"time"
)

// lockDir does nothing where flock is not available: one process per leaf
// directory is then up to the operator.
func lockDir(dir string, wait time.Duration, log *slog.Logger) (func(), error) {
	return func() {}, nil
}
