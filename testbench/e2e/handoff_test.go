package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/reef-db/reef/api"
	"github.com/reef-db/reef/shm"
	"github.com/reef-db/reef/testbench"
)

// These tests restart leaves the three ways a leaf comes back — through the shm
// handoff, after kill -9, from a damaged handoff — and run the rolling deploy
// script, all with real processes.

// handoffQueries are answered before and after restarts; answers must not change.
var handoffQueries = []string{
	`SELECT count(*), sum(bytes), avg(latency_ms), min(latency_ms), max(latency_ms) FROM events`,
	`SELECT service, count(*) AS n, p50(latency_ms), p99(latency_ms), max(bytes) FROM events GROUP BY service ORDER BY service`,
	`SELECT endpoint, status, count(*), percentile(latency_ms, 0.999), count_distinct(host) FROM events
		WHERE status IN (404, 500) GROUP BY endpoint, status ORDER BY endpoint, status LIMIT 40`,
	`SELECT time(1h), count(*), sum(latency_ms) FROM events GROUP BY time(1h) ORDER BY time(1h)`,
}

// answers runs the queries at full coverage (waiting for every leaf to be back in
// the aggregator's view).
func answers(t *testing.T, ctx context.Context, c *testbench.Cluster) [][][]any {
	t.Helper()
	var out [][][]any
	for _, q := range handoffQueries {
		var res *api.QueryResult
		waitUntil(t, 20*time.Second, func() bool {
			var err error
			res, err = c.Client().SQL(ctx, api.QueryRequest{SQL: q, TimeoutMS: 5000})
			return err == nil && !res.Partial && res.Coverage.LeavesResponded == res.Coverage.LeavesTotal
		}, "a full answer to "+q)
		out = append(out, res.Rows)
	}
	return out
}

func waitUntil(t *testing.T, limit time.Duration, ok func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("no %s within %v", what, limit)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func leafStats(t *testing.T, ctx context.Context, l testbench.ProcessInfo) *api.Stats {
	t.Helper()
	st, err := api.NewClient(l.URL).Stats(ctx)
	if err != nil {
		t.Fatalf("stats of %s: %v", l.ID, err)
	}
	return st
}

// TestHandoffSameAnswers: every leaf restarted through the handoff (SIGTERM) comes
// back from shm with the rows it had, and every query gives the same answer.
func TestHandoffSameAnswers(t *testing.T) {
	c := startCluster(t, testbench.ClusterConfig{Leaves: 2})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	gen := testbench.GenConfig{Seed: 11, Rows: 150_000, End: time.Unix(1_764_000_000, 0)}
	if _, err := testbench.Load(ctx, c.Client(), "events", gen, testbench.LoadOptions{BatchRows: 5000}); err != nil {
		t.Fatal(err)
	}
	before := answers(t, ctx, c)
	var rows []int64
	for _, l := range c.Leaves() {
		rows = append(rows, leafStats(t, ctx, l).Rows)
	}
	for i := range c.Leaves() {
		if err := c.RestartLeaf(ctx, i); err != nil {
			t.Fatal(err)
		}
	}
	for i, l := range c.Leaves() {
		st := leafStats(t, ctx, l)
		if st.Start.Path != "shm" || st.Start.Rows != rows[i] || st.Rows != rows[i] {
			t.Errorf("%s after the handoff: start %+v, rows %d; want shm with %d rows", l.ID, st.Start, st.Rows, rows[i])
		}
	}
	after := answers(t, ctx, c)
	for i, q := range handoffQueries {
		if err := sameRows(before[i], after[i]); err != nil {
			t.Errorf("%s: answer changed across the handoff: %v", q, err)
		}
	}
}

// batchLoader writes batches of rows {"time", "batch", "i"} with batch ids,
// retrying each (with the same id) until it is acknowledged, and records which
// batches were acknowledged.
type batchLoader struct {
	client *api.Client
	table  string
	rows   int // per batch
	prefix string
	pace   time.Duration // pause of a worker between batches

	next   atomic.Int64
	mu     sync.Mutex
	acked  map[int]bool
	errors int
}

func newBatchLoader(client *api.Client, table string, rows int) *batchLoader {
	return &batchLoader{client: client, table: table, rows: rows, prefix: fmt.Sprintf("e2e-%d", time.Now().UnixNano()), acked: map[int]bool{}}
}

func (l *batchLoader) body(k int) []byte {
	var b bytes.Buffer
	for i := range l.rows {
		fmt.Fprintf(&b, `{"time":%d,"batch":%d,"i":%d,"v":%d.25}`+"\n", 1_764_000_000+k, k, i, i%97)
	}
	return b.Bytes()
}

// run sends batches on workers goroutines until max batches were started (0: no
// limit) or stop is closed; a started batch is retried until acknowledged or ctx
// ends.
func (l *batchLoader) run(ctx context.Context, stop <-chan struct{}, workers, max int) error {
	var wg sync.WaitGroup
	errc := make(chan error, workers)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				k := int(l.next.Add(1)) - 1
				if max > 0 && k >= max {
					return
				}
				if err := l.send(ctx, k); err != nil {
					errc <- err
					return
				}
				if l.pace > 0 {
					time.Sleep(l.pace)
				}
			}
		}()
	}
	wg.Wait()
	close(errc)
	return <-errc
}

func (l *batchLoader) send(ctx context.Context, k int) error {
	body := l.body(k)
	id := fmt.Sprintf("%s-%d", l.prefix, k)
	for {
		rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		res, err := l.client.Ingest(rctx, l.table, bytes.NewReader(body), api.ContentTypeNDJSON, id)
		cancel()
		if err == nil {
			if res.Rejected != 0 {
				return fmt.Errorf("batch %d: %d rows rejected", k, res.Rejected)
			}
			l.mu.Lock()
			l.acked[k] = true
			l.mu.Unlock()
			return nil
		}
		var ae *api.Error
		if errors.As(err, &ae) && ae.Status >= 400 && ae.Status < 500 && ae.Status != http.StatusTooManyRequests {
			return fmt.Errorf("batch %d: %w", k, err)
		}
		l.mu.Lock()
		l.errors++
		l.mu.Unlock()
		select {
		case <-ctx.Done():
			return fmt.Errorf("batch %d not acknowledged: %w (last error: %v)", k, ctx.Err(), err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (l *batchLoader) ackedBatches() map[int]bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make(map[int]bool, len(l.acked))
	for k := range l.acked {
		out[k] = true
	}
	return out
}

// checkExactlyOnce checks that every acknowledged batch is stored exactly once
// (rows per batch, counted by SQL) and nothing else is there.
func checkExactlyOnce(t *testing.T, ctx context.Context, c *testbench.Cluster, l *batchLoader) {
	t.Helper()
	acked := l.ackedBatches()
	q := fmt.Sprintf("SELECT batch, count(*), count_distinct(i) FROM %s GROUP BY batch ORDER BY batch LIMIT 100000", l.table)
	var res *api.QueryResult
	waitUntil(t, 20*time.Second, func() bool {
		var err error
		res, err = c.Client().SQL(ctx, api.QueryRequest{SQL: q, TimeoutMS: 5000})
		return err == nil && !res.Partial && res.Coverage.LeavesResponded == res.Coverage.LeavesTotal
	}, "full answer")
	seen := map[int]bool{}
	for _, row := range res.Rows {
		k, n := int(toInt(row[0])), toInt(row[1])
		seen[k] = true
		if !acked[k] {
			t.Errorf("batch %d is stored (%d rows) but was never acknowledged", k, n)
			continue
		}
		if n != int64(l.rows) {
			t.Errorf("batch %d has %d rows, want %d (exactly once)", k, n, l.rows)
		}
	}
	for k := range acked {
		if !seen[k] {
			t.Errorf("acknowledged batch %d is missing", k)
		}
	}
	t.Logf("%d acknowledged batches of %d rows, each stored exactly once (%d failed attempts retried)", len(acked), l.rows, l.errors)
}

// TestKillDuringIngest: a leaf killed with SIGKILL while batches stream in comes
// back through crash recovery (shm blocks checked, WAL replayed) with every
// acknowledged row exactly once; retried batches are recognised.
func TestKillDuringIngest(t *testing.T) {
	c := startCluster(t, testbench.ClusterConfig{Leaves: 2, ExtraLeafArgs: []string{"--seal-age", "200ms"}})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	l := newBatchLoader(c.Client(), "kill", 1000)
	l.pace = 10 * time.Millisecond
	stop := make(chan struct{})
	done := make(chan error, 1)
	go func() { done <- l.run(ctx, stop, 4, 0) }()

	// Kill once leaf-0 holds sealed blocks in shm and rows in its open block.
	hasBlocks := func(lf testbench.ProcessInfo) bool {
		ids, err := shmBlocks(lf.ShmDir)
		return err == nil && len(ids) > 0
	}
	waitUntil(t, 30*time.Second, func() bool { return hasBlocks(c.Leaves()[0]) }, "a sealed block on leaf-0")
	n := len(l.ackedBatches())
	waitUntil(t, 30*time.Second, func() bool { return len(l.ackedBatches()) >= n+6 }, "more acknowledged batches")
	if err := c.Kill(0); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond) // batches go to the other leaf, or wait to retry
	if err := c.RestartLeaf(ctx, 0); err != nil {
		t.Fatal(err)
	}
	st := leafStats(t, ctx, c.Leaves()[0])
	if st.Start.Path != "crash" {
		t.Errorf("leaf-0 started through %q after kill -9, want crash", st.Start.Path)
	}
	n = len(l.ackedBatches())
	waitUntil(t, 30*time.Second, func() bool { return len(l.ackedBatches()) >= n+10 }, "more acknowledged batches")
	if err := c.Kill(1); err != nil {
		t.Fatal(err)
	}
	if err := c.RestartLeaf(ctx, 1); err != nil {
		t.Fatal(err)
	}
	n = len(l.ackedBatches())
	waitUntil(t, 30*time.Second, func() bool { return len(l.ackedBatches()) >= n+10 }, "more acknowledged batches")
	close(stop)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if n, started := len(l.ackedBatches()), int(l.next.Load()); n != started {
		t.Fatalf("%d of %d batches acknowledged", n, started)
	}
	checkExactlyOnce(t, ctx, c, l)
}

// TestDamagedHandoff: a block file damaged in its data, and then a damaged
// manifest, are detected; the block is reloaded from its disk copy and no answer
// is ever wrong, the first one after the start included.
func TestDamagedHandoff(t *testing.T) {
	c := startCluster(t, testbench.ClusterConfig{Leaves: 1, ExtraLeafArgs: []string{"--seal-age", "200ms"}})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	gen := testbench.GenConfig{Seed: 5, Rows: 200_000, End: time.Unix(1_764_000_000, 0)}
	if _, err := testbench.Load(ctx, c.Client(), "events", gen, testbench.LoadOptions{BatchRows: 10_000}); err != nil {
		t.Fatal(err)
	}
	lf := c.Leaves()[0]
	waitDiskCopies(t, lf)
	want := answers(t, ctx, c)

	for _, damage := range []struct {
		name   string
		do     func(t *testing.T)
		path   string
		metric string
	}{
		{"block data", func(t *testing.T) { flipBlockData(t, lf.ShmDir) }, "shm", `reef_leaf_block_reloads_total{source="disk"} 1`},
		{"manifest", func(t *testing.T) {
			flipByte(t, filepath.Join(lf.ShmDir, shm.ManifestName), -20)
			flipBlockData(t, lf.ShmDir)
		}, "crash", `reef_leaf_block_verify_failures_total 1`},
	} {
		t.Run(damage.name, func(t *testing.T) {
			handoff(t, ctx, c, 0)
			damage.do(t)
			if err := c.RestartLeaf(ctx, 0); err != nil {
				t.Fatal(err)
			}
			lf = c.Leaves()[0]
			got := answers(t, ctx, c)
			for i, q := range handoffQueries {
				if err := sameRows(want[i], got[i]); err != nil {
					t.Errorf("%s after damage to the %s: %v", q, damage.name, err)
				}
			}
			if st := leafStats(t, ctx, lf); st.Start.Path != damage.path {
				t.Errorf("start path %q, want %q", st.Start.Path, damage.path)
			}
			if m := metrics(t, ctx, lf); !strings.Contains(m, damage.metric) {
				t.Errorf("metrics do not say %q", damage.metric)
			}
			waitDiskCopies(t, lf)
		})
	}
}

// handoff asks leaf i to hand off and waits until its process is gone.
func handoff(t *testing.T, ctx context.Context, c *testbench.Cluster, i int) {
	t.Helper()
	lf := c.Leaves()[i]
	if err := api.NewClient(lf.URL).Handoff(ctx); err != nil {
		t.Fatalf("handoff of %s: %v", lf.ID, err)
	}
	waitUntil(t, 10*time.Second, func() bool { return !c.Running(i) }, lf.ID+" exit after the handoff")
}

// waitDiskCopies waits until every block file of the leaf has its disk copy.
func waitDiskCopies(t *testing.T, lf testbench.ProcessInfo) {
	t.Helper()
	count := func(dir, suffix string) int {
		ents, _ := os.ReadDir(dir)
		n := 0
		for _, e := range ents {
			if strings.HasSuffix(e.Name(), suffix) && !strings.HasPrefix(e.Name(), ".tmp") {
				n++
			}
		}
		return n
	}
	waitUntil(t, 30*time.Second, func() bool {
		n := count(lf.ShmDir, ".blk")
		return n > 0 && count(filepath.Join(lf.DataDir, "blocks"), ".blk.sz") == n
	}, "disk copy of every block of "+lf.ID)
}

// shmBlocks lists the block files of a leaf's shm directory.
func shmBlocks(dir string) ([]uint64, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var ids []uint64
	for _, e := range ents {
		if id, compressed, ok := shm.ParseFileName(e.Name()); ok && !compressed {
			ids = append(ids, id)
		}
	}
	return ids, nil
}

func flipBlockData(t *testing.T, shmDir string) {
	t.Helper()
	d, err := shm.OpenDir(shmDir)
	if err != nil {
		t.Fatal(err)
	}
	ids, err := d.Blocks()
	if err != nil || len(ids) == 0 {
		t.Fatalf("no block files in %s (%v)", shmDir, err)
	}
	st, err := os.Stat(d.BlockPath(ids[0]))
	if err != nil {
		t.Fatal(err)
	}
	flipByte(t, d.BlockPath(ids[0]), int(st.Size()/2)) // the middle: data, not the header
}

// flipByte flips a byte of the file at off (negative: from the end).
func flipByte(t *testing.T, path string, off int) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if off < 0 {
		off += len(data)
	}
	data[off] ^= 0x20
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

func metrics(t *testing.T, ctx context.Context, lf testbench.ProcessInfo) string {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, lf.URL+"/metrics", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// TestRollingDeploy runs scripts/rolling-deploy.sh over a 4-leaf cluster while
// batches stream in and queries run: the script restarts every leaf through the
// handoff and succeeds, no query sees fewer than 3 of 4 leaves, and every
// acknowledged row is there exactly once. The harness then stops the processes the
// script started.
func TestRollingDeploy(t *testing.T) {
	c := startCluster(t, testbench.ClusterConfig{Leaves: 4, ExtraLeafArgs: []string{"--seal-age", "300ms"}})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	oldPIDs := map[string]int{}
	for _, lf := range c.Leaves() {
		oldPIDs[lf.ID] = lf.PID
	}

	l := newBatchLoader(c.Client(), "deploy", 500)
	stopLoad := make(chan struct{})
	loaded := make(chan error, 1)
	go func() { loaded <- l.run(ctx, stopLoad, 2, 0) }()

	var minLeaves atomic.Int64
	minLeaves.Store(4)
	var minPercent atomic.Value
	minPercent.Store(100.0)
	var queries atomic.Int64
	stopQueries := make(chan struct{})
	queried := make(chan struct{})
	go func() {
		defer close(queried)
		for {
			select {
			case <-stopQueries:
				return
			case <-time.After(20 * time.Millisecond):
			}
			res, err := c.Client().SQL(ctx, api.QueryRequest{SQL: "SELECT count(*) FROM deploy", TimeoutMS: 3000})
			if err != nil {
				continue // the table may not exist yet
			}
			queries.Add(1)
			if n := int64(res.Coverage.LeavesResponded); n < minLeaves.Load() {
				minLeaves.Store(n)
			}
			if p := res.Coverage.Percent; p < minPercent.Load().(float64) {
				minPercent.Store(p)
			}
		}
	}()

	waitUntil(t, 30*time.Second, func() bool { return len(l.ackedBatches()) >= 20 }, "20 acknowledged batches")
	_, file, _, _ := runtime.Caller(0)
	script := filepath.Join(filepath.Dir(file), "..", "..", "scripts", "rolling-deploy.sh")
	cmd := exec.CommandContext(ctx, script, "--binary", reefBin, c.Dir())
	out, err := cmd.CombinedOutput()
	t.Logf("rolling-deploy.sh:\n%s", out)
	if err != nil {
		t.Fatalf("rolling deploy failed: %v", err)
	}
	if !strings.Contains(string(out), "total ") || strings.Count(string(out), " shm ") != 4 {
		t.Errorf("the script's output lacks the timeline of 4 shm restarts or the total time")
	}
	time.Sleep(300 * time.Millisecond) // a little load on the new processes
	close(stopLoad)
	if err := <-loaded; err != nil {
		t.Fatal(err)
	}
	close(stopQueries)
	<-queried

	if n, err := c.Adopt(); err != nil || n != 4 {
		t.Fatalf("the harness adopted %d restarted leaves (%v), want 4", n, err)
	}
	var newPIDs []int
	for _, lf := range c.Leaves() {
		if lf.PID == oldPIDs[lf.ID] {
			t.Errorf("%s still has its old pid %d", lf.ID, lf.PID)
		}
		newPIDs = append(newPIDs, lf.PID)
	}
	checkExactlyOnce(t, ctx, c, l)
	if queries.Load() < 10 || minLeaves.Load() < 3 {
		t.Errorf("%d queries during the deploy, the worst saw %d of 4 leaves; want at least 3 (coverage ≥ 75%%)", queries.Load(), minLeaves.Load())
	}
	t.Logf("%d queries during the deploy; lowest coverage %.1f%% of rows, %d of 4 leaves", queries.Load(), minPercent.Load().(float64), minLeaves.Load())
	if err := c.Close(); err != nil {
		t.Fatalf("stopping the cluster with adopted leaves: %v", err)
	}
	if runtime.GOOS == "linux" {
		for _, pid := range newPIDs {
			waitUntil(t, 5*time.Second, func() bool {
				_, err := os.Stat(fmt.Sprintf("/proc/%d", pid))
				return err != nil
			}, fmt.Sprintf("end of leaf process %d, started by the script, after the cluster stopped", pid))
		}
	}
}
