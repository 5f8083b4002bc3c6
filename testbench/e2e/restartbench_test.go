package e2e

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/reef-db/reef/testbench/restartbench"
)

// TestRestartBench runs `reef bench restart` small: every path starts the way it
// should (Run checks the start path of each restart) with all its rows, and the
// report is written.
func TestRestartBench(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test with real processes; skipped with -short")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dir := t.TempDir()
	shmDir := filepath.Join(dir, "shm")
	if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() {
		shmDir = filepath.Join("/dev/shm", "reef-e2e-restart-"+filepath.Base(dir))
		defer os.RemoveAll(shmDir)
	}
	res, err := restartbench.Run(ctx, restartbench.Config{
		Binary: reefBin, Dir: filepath.Join(dir, "work"), ShmDir: shmDir, Bytes: 24 << 20, Runs: 1,
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Paths) != 3 || res.Blocks == 0 {
		t.Fatalf("result %+v", res)
	}
	for _, p := range res.Paths {
		if len(p.ExecToReadyMS) != 1 || p.MedianMS <= 0 || p.Rows < res.Rows {
			t.Errorf("path %s: %+v; want one run and at least the %d prepared rows", p.Path, p, res.Rows)
		}
	}
	out := filepath.Join(dir, "report")
	if err := res.Write(out); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"report.md", "report.json"} {
		if st, err := os.Stat(filepath.Join(out, f)); err != nil || st.Size() == 0 {
			t.Errorf("report file %s: %v", f, err)
		}
	}
	t.Logf("\n%s", res.Markdown())
}
