//go:build unix

package testbench

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// syncBuffer is a bytes.Buffer that RunLocal writes to while the test reads it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func TestRunLocal(t *testing.T) {
	// RunLocal starts processes with the harness's environment: make them fakes, and
	// let the default data dir land in a directory the test owns.
	t.Setenv(fakeEnv, "1")
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	ready := filepath.Join(t.TempDir(), "ready")

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out syncBuffer
	errc := make(chan error, 1)
	go func() {
		errc <- RunLocal(ctx, LocalOptions{Binary: exe, Leaves: 2, Port: 27270, DemoRows: 3000, ReadyFile: ready, Out: &out})
	}()

	// The ready file appears once the demo data is in.
	var url string
	deadline := time.Now().Add(60 * time.Second)
	for url == "" {
		select {
		case err := <-errc:
			t.Fatalf("RunLocal returned early: %v\n%s", err, out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("no ready file after 60s:\n%s", out.String())
		}
		if data, err := os.ReadFile(ready); err == nil {
			url = strings.TrimSpace(string(data))
		}
		time.Sleep(20 * time.Millisecond)
	}

	lines := strings.Split(out.String(), "\n")
	if !strings.HasPrefix(lines[0], "data dir "+tmp+string(filepath.Separator)+"reef-local-") {
		t.Errorf("first line %q, want the data dir under %s", lines[0], tmp)
	}
	if !strings.Contains(out.String(), "\naggregator "+url+"\n") {
		t.Errorf("no line %q in:\n%s", "aggregator "+url, out.String())
	}
	if !strings.Contains(out.String(), "loaded 3000 rows into events") || !strings.Contains(out.String(), "reef shell --addr "+url) {
		t.Errorf("no load summary or shell hint in:\n%s", out.String())
	}
	ctx2, cancel2 := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel2()
	tbl, err := testClient(t, url).Table(ctx2, DemoTable)
	if err != nil || tbl.Rows != 3000 {
		t.Fatalf("table events: %+v, %v; want 3000 rows", tbl, err)
	}
	dirs, _ := filepath.Glob(filepath.Join(tmp, "reef-local-*"))
	if len(dirs) != 1 {
		t.Fatalf("data dirs %v, want one", dirs)
	}
	if _, err := ReadClusterFile(filepath.Join(dirs[0], ClusterFileName)); err != nil {
		t.Error(err)
	}

	// Ctrl-C: everything stops, the temporary dir and the ready file go away.
	cancel()
	select {
	case err := <-errc:
		if err != nil {
			t.Fatalf("RunLocal: %v\n%s", err, out.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("RunLocal did not return after cancel")
	}
	if _, err := os.Stat(dirs[0]); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("temporary data dir %s left behind: %v", dirs[0], err)
	}
	if _, err := os.Stat(ready); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("ready file left behind: %v", err)
	}
	if !strings.Contains(out.String(), "stopped in ") {
		t.Errorf("no stop message in:\n%s", out.String())
	}
}

func TestRunLocalStartFailure(t *testing.T) {
	t.Setenv(fakeEnv, "1")
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	var out syncBuffer
	err = RunLocal(context.Background(), LocalOptions{Binary: exe, Dir: dir, Leaves: 1, ExtraLeafArgs: []string{"--fail"}, Out: &out})
	if err == nil || !strings.Contains(err.Error(), "failing as asked") {
		t.Fatalf("RunLocal: %v, want the leaf's failure", err)
	}
	if !strings.Contains(out.String(), "logs kept in "+filepath.Join(dir, "logs")) {
		t.Errorf("output does not say where the logs are:\n%s", out.String())
	}
	if _, err := os.Stat(filepath.Join(dir, "logs", "leaf-0.log")); err != nil {
		t.Error(err)
	}
}
