// Package restartbench is `reef bench restart`: how long a leaf holding many
// gigabytes takes from exec to ready when it restarts through the shm handoff,
// through crash recovery (kill -9: every shm block checked, the WAL replayed) and
// from disk only (the shm directory gone, as after a reboot).
//
// To build a big leaf in seconds rather than by ingesting gigabytes over HTTP, it
// writes the leaf's disk block copies (and their cover files) directly, as a leaf's
// disk copier would: blocks of generated events (package testbench's generator),
// built with block.Builder and written with shm.WriteCompressed. Everything after
// that goes through the reef binary the way an operator's restart would: the first
// start loads them from disk, rows arrive over HTTP, and restarts are a handoff
// (POST /v1/admin/handoff), a SIGKILL, or a SIGTERM with the shm directory removed.
//
// It owns only the benchmark; it must not be imported by reef's servers.
package restartbench

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/reef-db/reef/api"
	"github.com/reef-db/reef/block"
	"github.com/reef-db/reef/leaf/wal"
	"github.com/reef-db/reef/shm"
	"github.com/reef-db/reef/testbench"
)

// Defaults.
const (
	DefaultBytes = 4 << 30
	DefaultRuns  = 3
	// templates is how many distinct blocks are generated; the leaf's blocks cycle
	// through them.
	templates = 16
	// liveRows are ingested over HTTP before each restart, so that the WAL and the
	// open block have something to hand over or replay.
	liveRows = 20_000
)

// Config configures a run. Binary is required.
type Config struct {
	Binary string // the reef binary
	// Dir holds the leaf's data directory and log (default: a new temporary
	// directory, removed afterwards). ShmDir is its shm directory (default:
	// /dev/shm/reef-bench-restart-<pid>, removed afterwards).
	Dir    string
	ShmDir string
	// Bytes is how much block data the leaf holds (default DefaultBytes).
	Bytes int64
	// Runs is how many times each path is measured (default DefaultRuns); the
	// report gives every run and the median.
	Runs int
	// DropCaches writes 3 to /proc/sys/vm/drop_caches before each disk start, so
	// that the disk copies are read from the device (needs root).
	DropCaches bool
	// Progress receives progress lines (default: none).
	Progress io.Writer
}

// PathResult is one start path's measurements.
type PathResult struct {
	Path string `json:"path"` // shm, crash, disk
	// ExecToReadyMS is, per run, the time from starting the process to its first
	// 200 on /readyz; LeafMS what the leaf reports its own recovery took.
	ExecToReadyMS []float64 `json:"exec_to_ready_ms"`
	LeafMS        []float64 `json:"leaf_start_ms"`
	// CPUMS is the CPU time (user + system) the process used from exec to
	// ready: unlike wall time, other load on the machine does not inflate it.
	CPUMS    []float64 `json:"cpu_to_ready_ms"`
	MedianMS float64   `json:"median_exec_to_ready_ms"`
	Rows     int64     `json:"rows"`
	Blocks   int       `json:"blocks"`
}

// Result is a whole run.
type Result struct {
	Date       string       `json:"date"`
	Bytes      int64        `json:"bytes"` // of block files in shm
	Blocks     int          `json:"blocks"`
	Rows       int64        `json:"rows"`
	Runs       int          `json:"runs"`
	DropCaches bool         `json:"drop_caches"`
	Paths      []PathResult `json:"paths"`
	// DiskOverShm and CrashOverShm are the ratios of the medians.
	DiskOverShm  float64 `json:"disk_over_shm"`
	CrashOverShm float64 `json:"crash_over_shm"`
	Host         string  `json:"host"`
}

type bench struct {
	cfg     Config
	dataDir string
	logPath string
	url     string
	port    int
	client  *api.Client
	proc    *exec.Cmd
	exited  chan error
	memory  int64
	batch   int
}

func (b *bench) logf(format string, args ...any) {
	if b.cfg.Progress != nil {
		fmt.Fprintf(b.cfg.Progress, format+"\n", args...)
	}
}

// Run prepares the leaf, measures every path cfg.Runs times and returns the result.
func Run(ctx context.Context, cfg Config) (res *Result, err error) {
	if cfg.Binary == "" {
		return nil, errors.New("cannot run the restart benchmark: no reef binary given")
	}
	if cfg.Bytes <= 0 {
		cfg.Bytes = DefaultBytes
	}
	if cfg.Runs <= 0 {
		cfg.Runs = DefaultRuns
	}
	if cfg.Dir == "" {
		if cfg.Dir, err = os.MkdirTemp("", "reef-bench-restart-"); err != nil {
			return nil, fmt.Errorf("cannot make a work directory: %w", err)
		}
		defer os.RemoveAll(cfg.Dir)
	}
	if cfg.ShmDir == "" {
		cfg.ShmDir = fmt.Sprintf("/dev/shm/reef-bench-restart-%d", os.Getpid())
		defer os.RemoveAll(cfg.ShmDir)
	}
	b := &bench{cfg: cfg, dataDir: filepath.Join(cfg.Dir, "leaf"), logPath: filepath.Join(cfg.Dir, "leaf.log")}
	defer b.stop()

	blocks, rows, err := b.prepare()
	if err != nil {
		return nil, err
	}
	b.memory = cfg.Bytes + cfg.Bytes/4 + 1<<30
	if b.port, err = freePort(); err != nil {
		return nil, err
	}
	b.url = "http://127.0.0.1:" + strconv.Itoa(b.port)
	b.client = api.NewClient(b.url)

	res = &Result{Date: time.Now().UTC().Format(time.RFC3339), Runs: cfg.Runs, DropCaches: cfg.DropCaches,
		Blocks: blocks, Rows: rows, Bytes: b.cfg.Bytes}
	res.Host, _ = os.Hostname()
	paths := map[string]*PathResult{}
	for _, p := range []string{"shm", "crash", "disk"} {
		paths[p] = &PathResult{Path: p}
		res.Paths = append(res.Paths, *paths[p])
	}

	// The first start reads the disk copies; it is not counted.
	b.logf("first start: loading %d blocks from disk copies", blocks)
	if _, err := b.start(ctx, "disk"); err != nil {
		return nil, err
	}
	for run := 1; run <= cfg.Runs; run++ {
		for _, p := range []string{"shm", "crash", "disk"} {
			if err := b.live(ctx); err != nil {
				return nil, err
			}
			if err := b.end(ctx, p); err != nil {
				return nil, err
			}
			st, err := b.start(ctx, p)
			if err != nil {
				return nil, err
			}
			pr := paths[p]
			pr.ExecToReadyMS = append(pr.ExecToReadyMS, st.execToReady)
			pr.LeafMS = append(pr.LeafMS, st.leafMS)
			pr.CPUMS = append(pr.CPUMS, st.cpuMS)
			pr.Rows, pr.Blocks = st.rows, st.blocks
			b.logf("run %d/%d %-5s exec→ready %8.1f ms (leaf: %.1f ms, CPU %.0f ms), %d blocks, %d rows",
				run, cfg.Runs, p, st.execToReady, st.leafMS, st.cpuMS, st.blocks, st.rows)
		}
	}
	for i, p := range res.Paths {
		pr := paths[p.Path]
		pr.MedianMS = median(pr.ExecToReadyMS)
		res.Paths[i] = *pr
	}
	if s := paths["shm"].MedianMS; s > 0 {
		res.DiskOverShm = round2(paths["disk"].MedianMS / s)
		res.CrashOverShm = round2(paths["crash"].MedianMS / s)
	}
	return res, nil
}

// prepare writes the leaf's disk copies: blocks cycling through generated
// templates, until the block files reach cfg.Bytes. It returns blocks and rows.
func (b *bench) prepare() (int, int64, error) {
	disk := filepath.Join(b.dataDir, "blocks")
	for _, d := range []string{disk, b.cfg.ShmDir} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return 0, 0, fmt.Errorf("cannot prepare the leaf: %w", err)
		}
	}
	began := time.Now()
	gen := testbench.NewGenerator(testbench.GenConfig{Seed: 1, Rows: templates * block.MaxRows, End: time.Unix(1_764_000_000, 0)})
	var tmpl []*block.Block
	defer func() {
		for _, t := range tmpl {
			t.Release()
		}
	}()
	var e testbench.Event
	for range templates {
		bl := block.NewBuilder("events")
		idx := func(name string, t block.Type) int {
			i, err := bl.AddColumn(name, t)
			if err != nil {
				panic("BUG: " + err.Error())
			}
			return i
		}
		ti, si, hi, ei := idx("time", block.TypeInt), idx("service", block.TypeString), idx("host", block.TypeString), idx("endpoint", block.TypeString)
		sti, li, bi := idx("status", block.TypeInt), idx("latency_ms", block.TypeFloat), idx("bytes", block.TypeInt)
		for bl.Len() < block.MaxRows && gen.Next(&e) {
			bl.BeginRow()
			bl.SetInt(ti, e.Time)
			bl.SetString(si, []byte(e.Service))
			bl.SetString(hi, []byte(e.Host))
			bl.SetString(ei, []byte(e.Endpoint))
			bl.SetInt(sti, e.Status)
			bl.SetFloat(li, e.LatencyMS)
			bl.SetInt(bi, e.Bytes)
			bl.EndRow()
		}
		blk, err := bl.Build(0)
		if err != nil {
			return 0, 0, fmt.Errorf("cannot build a block: %w", err)
		}
		tmpl = append(tmpl, blk)
	}
	var total, rows int64
	n := 0
	var empty wal.Coverage
	w := shm.Writer{} // the page cache is enough for a benchmark; fsync would only slow the setup
	for total < b.cfg.Bytes {
		t := tmpl[n%len(tmpl)]
		n++
		t.ID = uint64(n)
		if err := wal.WriteCoverFile(filepath.Join(disk, fmt.Sprintf("%016x.cov", t.ID)), t.ID, &empty, false); err != nil {
			return 0, 0, err
		}
		if _, err := w.WriteCompressed(disk, t); err != nil {
			return 0, 0, err
		}
		total += t.Bytes
		rows += int64(t.Rows)
		if n%500 == 0 {
			b.logf("wrote %d disk copies, %.1f GiB of blocks", n, float64(total)/(1<<30))
		}
	}
	b.logf("prepared %d blocks (%.2f GiB in shm, %d rows) in %.1fs", n, float64(total)/(1<<30), rows, time.Since(began).Seconds())
	b.cfg.Bytes = total
	return n, rows, nil
}

// started is what one start measured.
type started struct {
	execToReady, leafMS, cpuMS float64
	rows                       int64
	blocks                     int
}

// start execs the leaf and waits for /readyz, checking the start path.
func (b *bench) start(ctx context.Context, want string) (started, error) {
	if want == "disk" && b.cfg.DropCaches {
		if err := os.WriteFile("/proc/sys/vm/drop_caches", []byte("3\n"), 0o200); err != nil {
			b.logf("cannot drop the page cache (%v); the disk copies are read from it", err)
		}
	}
	log, err := os.OpenFile(b.logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return started{}, err
	}
	defer log.Close()
	cmd := exec.Command(b.cfg.Binary, "leaf", "--id", "bench", "--listen", "127.0.0.1:"+strconv.Itoa(b.port),
		"--data", b.dataDir, "--shm-dir", b.cfg.ShmDir, "--memory-limit", strconv.FormatInt(b.memory, 10),
		"--seal-age", "200ms")
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	// A client of its own: a fresh connection for every probe until one answers.
	probe := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: time.Second}
	t0 := time.Now()
	if err := cmd.Start(); err != nil {
		return started{}, fmt.Errorf("cannot start the leaf: %w", err)
	}
	b.proc = cmd
	b.exited = make(chan error, 1)
	go func() { b.exited <- cmd.Wait() }()
	for {
		resp, err := probe.Get(b.url + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		select {
		case err := <-b.exited:
			b.proc = nil
			return started{}, fmt.Errorf("the leaf exited before it was ready (%v); see %s", err, b.logPath)
		case <-ctx.Done():
			return started{}, ctx.Err()
		case <-time.After(time.Millisecond):
		}
	}
	took := time.Since(t0)
	cpu := processCPU(cmd.Process.Pid)
	st, err := b.client.Stats(ctx)
	if err != nil {
		return started{}, err
	}
	if st.Start.Path != want {
		return started{}, fmt.Errorf("the leaf started through %q, the benchmark wanted %q; see %s", st.Start.Path, want, b.logPath)
	}
	return started{execToReady: float64(took.Microseconds()) / 1000, leafMS: st.Start.DurationMS, cpuMS: cpu,
		rows: st.Start.Rows, blocks: st.Start.Blocks}, nil
}

// live ingests liveRows over HTTP and waits until every block has its disk copy
// and the WAL is trimmed, as on a leaf that has been running a while.
func (b *bench) live(ctx context.Context) error {
	b.batch++
	gen := testbench.GenConfig{Seed: uint64(100 + b.batch), Rows: liveRows, End: time.Unix(1_764_000_000, 0)}
	if _, err := testbench.Load(ctx, b.client, "events", gen, testbench.LoadOptions{BatchRows: 5000, Concurrency: 2}); err != nil {
		return err
	}
	deadline := time.Now().Add(10 * time.Minute)
	for time.Now().Before(deadline) {
		m, err := b.metric(ctx, "reef_leaf_disk_copy_backlog")
		if err == nil && m == 0 {
			if seg, err := b.metric(ctx, "reef_leaf_wal_segments"); err == nil && seg <= 2 {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	return errors.New("the leaf's disk copies did not catch up within 10 minutes")
}

// end stops the leaf the way path p starts from: a handoff (shm), SIGKILL after
// more rows arrived (crash), or a handoff and the shm directory removed (disk).
func (b *bench) end(ctx context.Context, p string) error {
	switch p {
	case "shm", "disk":
		if err := b.client.Handoff(ctx); err != nil {
			return fmt.Errorf("handoff: %w", err)
		}
	case "crash":
		// Rows in the open block, to be replayed from the WAL.
		gen := testbench.GenConfig{Seed: uint64(900 + b.batch), Rows: 5000, End: time.Unix(1_764_000_000, 0)}
		if _, err := testbench.Load(ctx, b.client, "events", gen, testbench.LoadOptions{BatchRows: 5000}); err != nil {
			return err
		}
		if err := b.proc.Process.Kill(); err != nil {
			return err
		}
	}
	select {
	case <-b.exited:
	case <-time.After(time.Minute):
		return errors.New("the leaf did not exit within a minute")
	}
	b.proc = nil
	if p == "disk" {
		if err := os.RemoveAll(b.cfg.ShmDir); err != nil {
			return err
		}
	}
	return nil
}

// stop ends a leaf still running.
func (b *bench) stop() {
	if b.proc == nil {
		return
	}
	_ = b.proc.Process.Signal(syscall.SIGTERM)
	select {
	case <-b.exited:
	case <-time.After(time.Minute):
		_ = b.proc.Process.Kill()
		<-b.exited
	}
	b.proc = nil
}

// metric reads one unlabelled metric from the leaf's /metrics.
func (b *bench) metric(ctx context.Context, name string) (float64, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, b.url+"/metrics", nil)
	resp, err := b.client.HTTP.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			return strconv.ParseFloat(strings.TrimSpace(v), 64)
		}
	}
	return 0, fmt.Errorf("no metric %s", name)
}

// processCPU returns the CPU time (user + system) process pid used so far, in
// milliseconds, from /proc (0 where there is none).
func processCPU(pid int) float64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// Fields after the command name, which is in parentheses: utime and stime are
	// the 12th and 13th of them, in clock ticks (100 per second on Linux).
	i := strings.LastIndexByte(string(data), ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(data[i+1:]))
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (ut + st) * 10
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("cannot find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.SortFunc(s, cmp.Compare[float64])
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func round2(f float64) float64 { return float64(int64(f*100+0.5)) / 100 }

// Markdown renders the result as a small report.
func (r *Result) Markdown() string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "# reef bench restart\n\n")
	fmt.Fprintf(&sb, "%s on %s: one leaf holding %.2f GiB of blocks (%d blocks, %d rows), %d runs per path",
		r.Date, r.Host, float64(r.Bytes)/(1<<30), r.Blocks, r.Rows, r.Runs)
	if r.DropCaches {
		fmt.Fprintf(&sb, ", page cache dropped before each disk start")
	}
	fmt.Fprintf(&sb, ".\n\n| path | median exec→ready | runs (exec→ready) | leaf's own start | CPU exec→ready | blocks | rows |\n|---|---|---|---|---|---|---|\n")
	for _, p := range r.Paths {
		fmt.Fprintf(&sb, "| %s | %.1f ms | %s | %s | %s | %d | %d |\n", p.Path, p.MedianMS, msList(p.ExecToReadyMS), msList(p.LeafMS), msList(p.CPUMS), p.Blocks, p.Rows)
	}
	fmt.Fprintf(&sb, "\ndisk / shm = %.1f×, crash / shm = %.1f×\n", r.DiskOverShm, r.CrashOverShm)
	fmt.Fprintf(&sb, "\n* shm: `POST /v1/admin/handoff`, then exec: the manifest's blocks are mapped; their full checks run after ready.\n"+
		"* crash: rows in the open block, SIGKILL, then exec: every shm block is checked by checksum, the WAL replayed.\n"+
		"* disk: handoff, the shm directory removed (a reboot), then exec: every disk copy is read, checked and written back to shm.\n")
	return sb.String()
}

func msList(v []float64) string {
	parts := make([]string, len(v))
	for i, x := range v {
		parts[i] = strconv.FormatFloat(x, 'f', 1, 64)
	}
	return strings.Join(parts, ", ") + " ms"
}

// Write writes report.md and report.json into dir.
func (r *Result) Write(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("cannot write the report: %w", err)
	}
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("cannot write the report: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "report.json"), append(data, '\n'), 0o644); err != nil {
		return fmt.Errorf("cannot write the report: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "report.md"), []byte(r.Markdown()), 0o644); err != nil {
		return fmt.Errorf("cannot write the report: %w", err)
	}
	return nil
}
