package testbench

import (
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	// The cluster tests start this very test binary as fake leaves and aggregators.
	if os.Getenv(fakeEnv) == "1" {
		os.Exit(fakeMain(os.Args[1:]))
	}
	goleak.VerifyTestMain(m, goleak.Cleanup(func(code int) {
		if realReef.dir != "" {
			_ = os.RemoveAll(realReef.dir)
		}
		os.Exit(code)
	}))
}

// realReef is the reef binary built from cmd/reef for the end-to-end tests, once per
// test run.
var realReef struct {
	once sync.Once
	dir  string
	path string
	err  error
}

// reefBinary builds cmd/reef and returns the binary's path, or skips the test when it
// cannot be built (cmd/reef without the leaf and aggregator subcommands).
func reefBinary(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("end-to-end test with real reef processes; skipped with -short")
	}
	realReef.once.Do(func() {
		realReef.dir, realReef.err = os.MkdirTemp("", "reef-testbench-bin-")
		if realReef.err != nil {
			return
		}
		realReef.path = filepath.Join(realReef.dir, "reef")
		out, err := exec.Command("go", "build", "-pgo=off", "-o", realReef.path, "github.com/reef-db/reef/cmd/reef").CombinedOutput()
		if err != nil {
			realReef.err = &buildError{err: err, out: string(out)}
		}
	})
	if realReef.err != nil {
		t.Fatalf("cannot build cmd/reef: %v", realReef.err)
	}
	return realReef.path
}

type buildError struct {
	err error
	out string
}

func (e *buildError) Error() string { return e.err.Error() + ": " + e.out }
