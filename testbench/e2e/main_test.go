package e2e

import (
	"context"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/reef-db/reef/testbench"
)

var reefBin string

func TestMain(m *testing.M) {
	code := func() int {
		flag.Parse()
		if testing.Short() {
			return m.Run()
		}
		dir, err := os.MkdirTemp("", "reef-e2e-bin-")
		if err != nil {
			panic(err)
		}
		defer os.RemoveAll(dir)
		reefBin = filepath.Join(dir, "reef")
		_, file, _, _ := runtime.Caller(0)
		root := filepath.Join(filepath.Dir(file), "..", "..")
		cmd := exec.Command("go", "build", "-pgo=off", "-o", reefBin, "./cmd/reef")
		cmd.Dir = root
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			panic("cannot build reef: " + err.Error())
		}
		return m.Run()
	}()
	os.Exit(code)
}

// startCluster starts a cluster for t; its directory is removed when t passes and
// kept (and named in the log) when it fails.
func startCluster(t *testing.T, cfg testbench.ClusterConfig) *testbench.Cluster {
	t.Helper()
	if testing.Short() {
		t.Skip("end-to-end test with real processes; skipped with -short")
	}
	dir, err := os.MkdirTemp("", "reef-e2e-"+t.Name()+"-")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Binary = reefBin
	cfg.Dir = dir
	if cfg.BasePort == 0 {
		cfg.BasePort = 17070
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := testbench.StartCluster(ctx, cfg)
	if err != nil {
		t.Fatalf("cannot start cluster (logs in %s): %v", dir, err)
	}
	t.Cleanup(func() {
		_ = c.Close()
		if t.Failed() {
			t.Logf("cluster directory kept: %s", dir)
			return
		}
		_ = os.RemoveAll(dir)
	})
	return c
}
