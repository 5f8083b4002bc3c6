//go:build unix

package testbench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/reef-db/reef/api"
)

// fakeCluster starts a cluster of fake reef processes (this test binary, see
// fakeMain) and closes it when the test ends.
func fakeCluster(t *testing.T, cfg ClusterConfig) *Cluster {
	t.Helper()
	c, err := StartCluster(context.Background(), fakeConfig(t, cfg))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func fakeConfig(t *testing.T, cfg ClusterConfig) ClusterConfig {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cfg.Binary = exe
	if cfg.Dir == "" {
		cfg.Dir = t.TempDir()
	}
	cfg.Env = append(cfg.Env, fakeEnv+"=1")
	if cfg.ReadyTimeout == 0 {
		cfg.ReadyTimeout = 20 * time.Second
	}
	return cfg
}

// testClient returns a client of url whose connections are closed when the test ends.
func testClient(t *testing.T, url string) *api.Client {
	t.Helper()
	c := api.NewClient(url)
	t.Cleanup(c.HTTP.CloseIdleConnections)
	return c
}

// alive reports whether a process with this pid exists.
func alive(pid int) bool { return syscall.Kill(pid, 0) == nil }

func TestCluster(t *testing.T) {
	ctx := context.Background()
	c := fakeCluster(t, ClusterConfig{Leaves: 3, BasePort: 27070, ExtraAggArgs: []string{"--reject-every", "4"}})
	dir, exe := c.Dir(), c.cfg.Binary

	// Command lines, ids and dirs are as documented.
	leaves := c.Leaves()
	if len(leaves) != 3 {
		t.Fatalf("%d leaves, want 3", len(leaves))
	}
	var urls []string
	for i, l := range leaves {
		id := fmt.Sprintf("leaf-%d", i)
		want := []string{exe, "leaf", "--id", id, "--listen", fmt.Sprintf("127.0.0.1:%d", l.Port),
			"--data", filepath.Join(dir, id), "--shm-dir", filepath.Join(dir, "shm", id)}
		if l.ID != id || l.Role != RoleLeaf || !slices.Equal(l.Argv, want) || l.URL != fmt.Sprintf("http://127.0.0.1:%d", l.Port) {
			t.Errorf("leaf %d: %+v, want id %s and argv %q", i, l, id, want)
		}
		if l.DataDir != filepath.Join(dir, id) || l.ShmDir != filepath.Join(dir, "shm", id) || l.Log != filepath.Join(dir, "logs", id+".log") {
			t.Errorf("leaf %d dirs: %+v", i, l)
		}
		log, err := os.ReadFile(l.Log)
		if err != nil || !strings.Contains(string(log), "fake leaf "+id+" listening") {
			t.Errorf("log of %s: %q, %v", id, log, err)
		}
		urls = append(urls, l.URL)
	}
	agg := c.Processes()[3]
	wantAgg := []string{exe, "aggregator", "--listen", fmt.Sprintf("127.0.0.1:%d", agg.Port), "--leaves", strings.Join(urls, ","), "--reject-every", "4"}
	if agg.Role != RoleAggregator || agg.ID != "agg-0" || !slices.Equal(agg.Argv, wantAgg) || agg.URL != c.AggregatorURL() {
		t.Errorf("aggregator %+v, want argv %q at %s", agg, wantAgg, c.AggregatorURL())
	}
	if agg.Port != 27070 && portFree(27070) {
		t.Errorf("aggregator on port %d although the base port 27070 is free", agg.Port)
	}

	// cluster.json records all of it.
	cf, err := ReadClusterFile(filepath.Join(dir, ClusterFileName))
	if err != nil {
		t.Fatal(err)
	}
	if cf.AggregatorURL != c.AggregatorURL() || cf.Dir != dir || cf.Binary != exe || !processesEqual(cf.Processes, c.Processes()) {
		t.Errorf("cluster.json %+v, want the cluster's processes %+v", cf, c.Processes())
	}

	// Load through the aggregator, which refuses every 4th request: every row lands
	// on a leaf exactly once.
	st, err := Load(ctx, c.Client(), "events", GenConfig{Seed: 1, Rows: 20_000, End: testEnd}, LoadOptions{BatchRows: 1000, Concurrency: 2})
	if err != nil {
		t.Fatal(err)
	}
	if st.Rows != 20_000 || st.Retries == 0 {
		t.Errorf("load stats %+v, want 20000 rows and some retries", st)
	}
	if n := leafRows(t, c, "events"); n != 20_000 {
		t.Errorf("leaves hold %d rows, want 20000", n)
	}

	// A stopped leaf hangs; continued, it answers again.
	if err := c.Stop(1); err != nil {
		t.Fatal(err)
	}
	if err := probe(t, leaves[1].URL, 300*time.Millisecond); err == nil {
		t.Error("a stopped leaf answered /readyz")
	}
	if !c.Running(1) {
		t.Error("a stopped leaf is not reported running")
	}
	if err := c.Cont(1); err != nil {
		t.Fatal(err)
	}
	if err := probe(t, leaves[1].URL, 5*time.Second); err != nil {
		t.Errorf("continued leaf: %v", err)
	}

	// Kill is a crash: the process is gone at once.
	if err := c.Kill(2); err != nil {
		t.Fatal(err)
	}
	if c.Running(2) || alive(leaves[2].PID) {
		t.Error("killed leaf still running")
	}
	if err := c.Kill(2); err == nil || !strings.Contains(err.Error(), "not running") {
		t.Errorf("second Kill: %v, want not running", err)
	}
	if err := c.Stop(2); err == nil {
		t.Error("Stop of a killed leaf succeeded")
	}

	// RestartLeaf brings a killed leaf back, and restarts a running one (SIGTERM
	// first), each with the same command line and a new pid in cluster.json.
	for _, i := range []int{2, 0} {
		if err := c.RestartLeaf(ctx, i); err != nil {
			t.Fatalf("RestartLeaf(%d): %v", i, err)
		}
		now := c.Leaves()[i]
		if !c.Running(i) || now.PID == leaves[i].PID || !slices.Equal(now.Argv, leaves[i].Argv) {
			t.Errorf("restarted leaf %d: %+v, was %+v", i, now, leaves[i])
		}
		if alive(leaves[i].PID) {
			t.Errorf("old process of leaf %d still alive", i)
		}
		if err := probe(t, now.URL, 5*time.Second); err != nil {
			t.Errorf("restarted leaf %d: %v", i, err)
		}
		cf, err := ReadClusterFile(filepath.Join(dir, ClusterFileName))
		if err != nil || cf.Processes[i].PID != now.PID {
			t.Errorf("cluster.json after restart of leaf %d: %+v, %v", i, cf, err)
		}
	}
	log, _ := os.ReadFile(leaves[0].Log)
	if n := strings.Count(string(log), "--- testbench: starting leaf-0"); n != 2 {
		t.Errorf("log of leaf-0 records %d starts, want 2 (it is appended to)", n)
	}
	if !strings.Contains(string(log), "terminated, exiting") {
		t.Errorf("leaf-0 did not get SIGTERM before its restart: %s", log)
	}

	// Close ends everything cleanly and only once.
	if err := c.Stop(1); err != nil { // Close must continue a stopped leaf to stop it
		t.Fatal(err)
	}
	procs := c.Processes()
	if err := c.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	for _, p := range procs {
		if alive(p.PID) {
			t.Errorf("%s (pid %d) alive after Close", p.ID, p.PID)
		}
	}
	if err := c.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if err := c.Kill(0); err == nil || !strings.Contains(err.Error(), "closed") {
		t.Errorf("Kill after Close: %v", err)
	}
	for _, p := range procs {
		if !portFree(p.Port) {
			t.Errorf("port %d of %s still taken after Close", p.Port, p.ID)
		}
	}
}

func processesEqual(a, b []ProcessInfo) bool {
	return slices.EqualFunc(a, b, func(x, y ProcessInfo) bool {
		return x.Role == y.Role && x.ID == y.ID && x.URL == y.URL && x.Port == y.Port && x.PID == y.PID &&
			slices.Equal(x.Argv, y.Argv) && x.DataDir == y.DataDir && x.ShmDir == y.ShmDir && x.Log == y.Log
	})
}

// probe asks url's /readyz once, waiting at most d.
func probe(t *testing.T, url string, d time.Duration) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	c := api.NewClient(url)
	defer c.HTTP.CloseIdleConnections()
	return c.Ready(ctx)
}

// leafRows sums table's rows over the cluster's leaves.
func leafRows(t *testing.T, c *Cluster, table string) int64 {
	t.Helper()
	var n int64
	for _, l := range c.Leaves() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		st, err := testClient(t, l.URL).Stats(ctx)
		cancel()
		if err != nil {
			t.Fatalf("stats of %s: %v", l.ID, err)
		}
		n += st.Tables[table].Rows
	}
	return n
}

func TestClustersSideBySide(t *testing.T) {
	a := fakeCluster(t, ClusterConfig{Leaves: 1, BasePort: 27170})
	b := fakeCluster(t, ClusterConfig{Leaves: 1, BasePort: 27170})
	ports := map[int]string{}
	for _, c := range []*Cluster{a, b} {
		for _, p := range c.Processes() {
			if other, ok := ports[p.Port]; ok {
				t.Errorf("%s and %s share port %d", other, p.ID, p.Port)
			}
			ports[p.Port] = p.ID
			if err := probe(t, p.URL, 5*time.Second); err != nil {
				t.Errorf("%s: %v", p.ID, err)
			}
		}
	}
}

func TestClusterStartFailure(t *testing.T) {
	cfg := fakeConfig(t, ClusterConfig{Leaves: 2, ExtraLeafArgs: []string{"--fail"}})
	_, err := StartCluster(context.Background(), cfg)
	if err == nil {
		t.Fatal("StartCluster succeeded with failing leaves")
	}
	for _, want := range []string{"leaf-0 exited before it was ready", "leaf-1 exited", "exit status 3", "failing as asked", filepath.Join(cfg.Dir, "logs", "leaf-0.log")} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %q", err, want)
		}
	}
	if _, err := os.Stat(filepath.Join(cfg.Dir, ClusterFileName)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("cluster.json written for a cluster that did not start: %v", err)
	}

	// A process that never becomes ready is given up after ReadyTimeout and stopped.
	cfg = fakeConfig(t, ClusterConfig{Leaves: 1, ReadyTimeout: 300 * time.Millisecond, ExtraLeafArgs: []string{"--listen", "127.0.0.1:1"}})
	_, err = StartCluster(context.Background(), cfg)
	if err == nil || !strings.Contains(err.Error(), "exited before it was ready") && !strings.Contains(err.Error(), "not ready after 300ms") {
		t.Fatalf("err = %v, want a leaf that is not ready", err)
	}

	// A cancelled start stops what it started.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := StartCluster(ctx, fakeConfig(t, ClusterConfig{Leaves: 1})); err == nil {
		t.Fatal("StartCluster with a cancelled context succeeded")
	}
}

func TestClusterPortTaken(t *testing.T) {
	// The leaf claims its port is taken on its first start, as when another program
	// binds the port between the harness choosing it and the leaf binding it.
	marker := filepath.Join(t.TempDir(), "taken")
	c := fakeCluster(t, ClusterConfig{Leaves: 1, ExtraLeafArgs: []string{"--port-taken-once", marker}})
	l := c.Leaves()[0]
	log, err := os.ReadFile(l.Log)
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(log), "--- testbench: starting leaf-0"); n != 2 {
		t.Errorf("leaf-0 started %d times, want 2:\n%s", n, log)
	}
	if !strings.Contains(string(log), fmt.Sprintf("listening on 127.0.0.1:%d", l.Port)) {
		t.Errorf("leaf-0 does not listen on its recorded port %d:\n%s", l.Port, log)
	}
	if err := probe(t, l.URL, 5*time.Second); err != nil {
		t.Error(err)
	}
}

func TestClusterStopTimeout(t *testing.T) {
	c := fakeCluster(t, ClusterConfig{Leaves: 1, StopTimeout: 300 * time.Millisecond, ExtraLeafArgs: []string{"--ignore-term"}})
	pid := c.Leaves()[0].PID
	err := c.Close()
	if err == nil || !strings.Contains(err.Error(), "leaf-0 did not exit within 300ms of SIGTERM; killed it") {
		t.Fatalf("Close: %v, want leaf-0 killed after the stop timeout", err)
	}
	if alive(pid) {
		t.Error("leaf-0 alive after Close")
	}
}

func TestClusterDiedLeafReported(t *testing.T) {
	c := fakeCluster(t, ClusterConfig{Leaves: 2})
	// Killed behind the harness's back: Close reports it.
	if err := syscall.Kill(c.Leaves()[1].PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for c.Running(1) && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	err := c.Close()
	if err == nil || !strings.Contains(err.Error(), "leaf-1 had died before it was stopped (signal: killed)") {
		t.Fatalf("Close: %v, want leaf-1 reported dead", err)
	}
	if strings.Contains(err.Error(), "leaf-0") || strings.Contains(err.Error(), "agg-0") {
		t.Errorf("Close reports processes that stopped cleanly: %v", err)
	}
}

func TestClusterConfigErrors(t *testing.T) {
	f := func(cfg ClusterConfig, want string) {
		t.Helper()
		_, err := StartCluster(context.Background(), cfg)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("StartCluster(%+v) = %v, want an error containing %q", cfg, err, want)
		}
	}
	dir := t.TempDir()
	exe, _ := os.Executable()
	f(ClusterConfig{Dir: dir}, "no reef binary")
	f(ClusterConfig{Binary: filepath.Join(dir, "nope"), Dir: dir}, "reef binary")
	f(ClusterConfig{Binary: exe}, "no data dir")
	f(ClusterConfig{Binary: exe, Dir: dir, Leaves: -1}, "-1 leaves")
	f(ClusterConfig{Binary: exe, Dir: dir, Leaves: 1, Aggregators: 3}, "intermediate aggregators")
	f(ClusterConfig{Binary: exe, Dir: dir, BasePort: 65535}, "out of range")
	f(ClusterConfig{Binary: exe, Dir: dir, Leaves: 1, BasePort: -5}, "out of range")
}

func TestParseClusterFile(t *testing.T) {
	const good = `{"version":1,"dir":"/d","binary":"/b","aggregator_url":"http://127.0.0.1:7070","processes":[
		{"role":"leaf","id":"leaf-0","url":"http://127.0.0.1:7071","port":7071,"pid":5,"argv":["/b","leaf"]},
		{"role":"aggregator","id":"agg-0","url":"http://127.0.0.1:7070","port":7070,"pid":6,"argv":["/b","aggregator"]}]}`
	cf, err := ParseClusterFile([]byte(good))
	if err != nil || len(cf.Processes) != 2 || cf.Processes[0].PID != 5 || cf.AggregatorURL != "http://127.0.0.1:7070" {
		t.Fatalf("ParseClusterFile(good) = %+v, %v", cf, err)
	}
	f := func(data, want string) {
		t.Helper()
		if _, err := ParseClusterFile([]byte(data)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseClusterFile(%s) = %v, want an error containing %q", data, err, want)
		}
	}
	f(``, "cannot decode")
	f(`{"version":2}`, "version 2, want 1")
	f(`{"version":1,"processes":[{"role":"router","id":"x","port":1,"argv":["b"]}]}`, `process 0: unknown role "router"`)
	f(`{"version":1,"processes":[{"role":"leaf","port":1,"argv":["b"]}]}`, "process 0: no id")
	f(`{"version":1,"processes":[{"role":"leaf","id":"a","port":1,"argv":["b"]},{"role":"leaf","id":"a","port":2,"argv":["b"]}]}`, `process 1: id "a" used twice`)
	f(`{"version":1,"processes":[{"role":"leaf","id":"a","port":70000,"argv":["b"]}]}`, "port 70000 out of range")
	f(`{"version":1,"processes":[{"role":"leaf","id":"a","port":1}]}`, "no command line")

	if _, err := ReadClusterFile(filepath.Join(t.TempDir(), "missing.json")); err == nil {
		t.Error("ReadClusterFile of a missing file succeeded")
	}
}

func FuzzParseClusterFile(f *testing.F) {
	f.Add([]byte(`{"version":1,"processes":[{"role":"leaf","id":"leaf-0","port":7071,"argv":["/b","leaf"]}]}`))
	f.Add([]byte(`{"version":1,"processes":[null]}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		cf, err := ParseClusterFile(data)
		if err != nil {
			return
		}
		for _, p := range cf.Processes {
			if p.ID == "" || len(p.Argv) == 0 || p.Port <= 0 {
				t.Fatalf("accepted an invalid process %+v", p)
			}
		}
	})
}

// TestSaysListening: a process counts as listening only once it logged so, for its
// own address, after it started (an earlier process's lines in the same log, or
// another address, do not count). waitReady needs this as well as /readyz, since
// another program may have taken the port and be the one answering.
func TestSaysListening(t *testing.T) {
	log := filepath.Join(t.TempDir(), "leaf-0.log")
	earlier := "time=… level=INFO msg=listening addr=127.0.0.1:7071\n"
	if err := os.WriteFile(log, []byte(earlier), 0o644); err != nil {
		t.Fatal(err)
	}
	p := &process{info: ProcessInfo{ID: "leaf-0", Port: 7071, Log: log}, logOffset: int64(len(earlier))}
	short := &process{info: ProcessInfo{ID: "leaf-1", Port: 1707, Log: log}}
	appendLog := func(s string) {
		f, err := os.OpenFile(log, os.O_WRONLY|os.O_APPEND, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if _, err := f.WriteString(s); err != nil {
			t.Fatal(err)
		}
	}
	if p.saysListening() {
		t.Error("a line from before the process started counts")
	}
	appendLog("time=… level=INFO msg=\"leaf opened\"\ntime=… level=INFO msg=listening addr=127.0.0.1:17071\n")
	if p.saysListening() {
		t.Error("a line for another port counts")
	}
	if short.saysListening() {
		t.Error("port 1707 taken for the start of 17071")
	}
	appendLog("time=… level=ERROR msg=\"cannot listen\" addr=127.0.0.1:7071 err=\"address already in use\"\n")
	if p.saysListening() {
		t.Error("a line without \"listening\" counts")
	}
	appendLog("time=… level=INFO msg=listening addr=127.0.0.1:7071 scheme=http\n")
	if !p.saysListening() {
		t.Error("the process's own listening line is not seen")
	}
}
