package testbench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/reef-db/reef/api"
)

// Cluster defaults.
const (
	DefaultLeaves       = 4
	DefaultBasePort     = 7070
	DefaultReadyTimeout = 30 * time.Second
	DefaultStopTimeout  = 10 * time.Second

	// killWait bounds the wait for a SIGKILLed process to be reaped.
	killWait = 5 * time.Second
	// readyPoll is the interval between /readyz probes.
	readyPoll = 50 * time.Millisecond
	// startAttempts bounds the starts of one process whose port was taken between the
	// harness choosing it and the process binding it.
	startAttempts = 3
	// logTailBytes is how much of a process log an error message quotes.
	logTailBytes = 2048
)

// Process roles, as recorded in cluster.json.
const (
	RoleLeaf       = "leaf"
	RoleAggregator = "aggregator"
)

// ClusterConfig describes a local cluster. Only Binary is required.
type ClusterConfig struct {
	// Binary is the path of the reef binary (or a name looked up in $PATH).
	Binary string
	// Dir holds everything the cluster writes: leaf-N/ data dirs, logs/<id>.log,
	// cluster.json, and shm/leaf-N/ unless ShmDir is set. It is created if missing.
	Dir string
	// ShmDir, when set, replaces Dir/shm as the parent of the leaves' shm dirs (e.g.
	// /dev/shm/reef-test).
	ShmDir string
	// Leaves is the number of leaf processes (default DefaultLeaves).
	Leaves int
	// Aggregators is the number of aggregators: 0 or 1 means one root aggregator. M ≥ 2
	// makes a two-level tree: a root over M-1 intermediate aggregators, each over a
	// round-robin share of the leaves.
	Aggregators int
	// BasePort is the root aggregator's port (default DefaultBasePort); leaf i gets
	// BasePort+1+i. A port that is taken is replaced by a free one, so two clusters
	// run side by side.
	BasePort int
	// ExtraLeafArgs and ExtraAggArgs are appended to every leaf's and aggregator's
	// command line.
	ExtraLeafArgs []string
	// LeafArgs, when set, gives more arguments for leaf i alone (after
	// ExtraLeafArgs), e.g. a smaller memory limit for one leaf.
	LeafArgs     func(i int) []string
	ExtraAggArgs []string
	// Env is added to the harness's environment for every process.
	Env []string
	// ReadyTimeout bounds the wait for one process's /readyz (default
	// DefaultReadyTimeout).
	ReadyTimeout time.Duration
	// StopTimeout bounds the wait for a process to exit after SIGTERM before it is
	// killed (default DefaultStopTimeout).
	StopTimeout time.Duration
}

// Cluster is a running local cluster: real reef processes on 127.0.0.1. Its methods
// are safe for concurrent use; operations that change processes run one at a time.
type Cluster struct {
	cfg    ClusterConfig
	http   *http.Client // shared by every probe and by Client
	opMu   sync.Mutex   // serializes Kill, Stop, Cont, RestartLeaf, Close
	mu     sync.Mutex   // guards the fields below
	leaves []*process
	aggs   []*process
	ports  []int // reserved by this cluster, released by Close
	closed bool
}

// process is one child process and its state.
type process struct {
	info ProcessInfo
	cmd  *exec.Cmd
	done chan struct{} // closed once the process has exited and been reaped
	err  error         // cmd.Wait's result; read only after done is closed
	// logOffset is the size of the log when this process started: what it logged is
	// the part of the log after it.
	logOffset int64
	stopped   bool // SIGSTOPped by the harness
	expected  bool // the harness ended it (Kill, RestartLeaf, Close)
}

func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// StartCluster starts cfg.Leaves leaves, waits until every one answers /readyz, then
// starts the root aggregator with the leaves' URLs and waits for it too, and finally
// writes Dir/cluster.json. The processes' output goes to Dir/logs/<id>.log. On error
// every process already started is stopped; the logs stay.
//
// Leaf i runs
//
//	BINARY leaf --id leaf-i --listen 127.0.0.1:PORT --data DIR/leaf-i --shm-dir SHM/leaf-i [ExtraLeafArgs]
//
// and the aggregator (id agg-0)
//
//	BINARY aggregator --listen 127.0.0.1:PORT --leaves http://127.0.0.1:P0,http://127.0.0.1:P1,… [ExtraAggArgs]
//
// The processes do not depend on ctx: they run until Close (or until the harness dies,
// on Linux). ctx bounds the start only.
func StartCluster(ctx context.Context, cfg ClusterConfig) (*Cluster, error) {
	cfg, err := cfg.resolve()
	if err != nil {
		return nil, err
	}
	for _, d := range []string{cfg.Dir, filepath.Join(cfg.Dir, "logs"), cfg.ShmDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, fmt.Errorf("cannot start cluster: %w", err)
		}
	}
	c := &Cluster{cfg: cfg, http: api.NewClient("").HTTP}
	if err := c.start(ctx); err != nil {
		if cerr := c.Close(); cerr != nil {
			err = fmt.Errorf("%w (and while stopping: %v)", err, cerr)
		}
		return nil, fmt.Errorf("cannot start cluster in %s: %w", cfg.Dir, err)
	}
	return c, nil
}

func (cfg ClusterConfig) resolve() (ClusterConfig, error) {
	if cfg.Binary == "" {
		return cfg, errors.New("cannot start cluster: no reef binary given")
	}
	bin, err := exec.LookPath(cfg.Binary)
	if err != nil {
		return cfg, fmt.Errorf("cannot start cluster: reef binary: %w", err)
	}
	if cfg.Binary, err = filepath.Abs(bin); err != nil {
		return cfg, fmt.Errorf("cannot start cluster: %w", err)
	}
	if cfg.Dir == "" {
		return cfg, errors.New("cannot start cluster: no data dir given")
	}
	if cfg.Dir, err = filepath.Abs(cfg.Dir); err != nil {
		return cfg, fmt.Errorf("cannot start cluster: %w", err)
	}
	if cfg.ShmDir == "" {
		cfg.ShmDir = filepath.Join(cfg.Dir, "shm")
	}
	if cfg.ShmDir, err = filepath.Abs(cfg.ShmDir); err != nil {
		return cfg, fmt.Errorf("cannot start cluster: %w", err)
	}
	switch {
	case cfg.Leaves < 0:
		return cfg, fmt.Errorf("cannot start cluster: %d leaves", cfg.Leaves)
	case cfg.Leaves == 0:
		cfg.Leaves = DefaultLeaves
	}
	switch {
	case cfg.Aggregators < 0:
		return cfg, fmt.Errorf("cannot start cluster: %d aggregators", cfg.Aggregators)
	case cfg.Aggregators == 0:
		cfg.Aggregators = 1
	case cfg.Aggregators > 1 && cfg.Aggregators-1 > cfg.Leaves:
		return cfg, fmt.Errorf("cannot start cluster: %d intermediate aggregators for %d leaves; each needs a leaf", cfg.Aggregators-1, cfg.Leaves)
	}
	switch {
	case cfg.BasePort < 0 || cfg.BasePort+cfg.Leaves > 65535:
		return cfg, fmt.Errorf("cannot start cluster: base port %d out of range for %d leaves", cfg.BasePort, cfg.Leaves)
	case cfg.BasePort == 0:
		cfg.BasePort = DefaultBasePort
	}
	if cfg.ReadyTimeout <= 0 {
		cfg.ReadyTimeout = DefaultReadyTimeout
	}
	if cfg.StopTimeout <= 0 {
		cfg.StopTimeout = DefaultStopTimeout
	}
	return cfg, nil
}

// start starts the leaves (all at once), waits for them, then starts the aggregator.
func (c *Cluster) start(ctx context.Context) error {
	cfg := c.cfg
	aggPort, err := c.reservePort(cfg.BasePort)
	if err != nil {
		return err
	}
	leafPorts := make([]int, cfg.Leaves)
	for i := range leafPorts {
		if leafPorts[i], err = c.reservePort(cfg.BasePort + 1 + i); err != nil {
			return err
		}
	}

	c.mu.Lock()
	c.leaves = make([]*process, cfg.Leaves)
	c.mu.Unlock()

	// Each leaf starts and becomes ready on its own; every failure is reported.
	errs := make([]error, cfg.Leaves)
	var wg sync.WaitGroup
	for i := range cfg.Leaves {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = c.startLeaf(ctx, i, leafPorts[i])
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}

	urls := make([]string, 0, cfg.Leaves)
	for _, l := range c.Leaves() {
		urls = append(urls, l.URL)
	}
	c.mu.Lock()
	c.aggs = make([]*process, cfg.Aggregators)
	c.mu.Unlock()
	if cfg.Aggregators > 1 {
		// A two-level tree: leaves are dealt round-robin to the intermediate
		// aggregators agg-1…agg-M, and the root agg-0 has those as its children.
		mid := cfg.Aggregators - 1
		groups := make([][]string, mid)
		for i, u := range urls {
			groups[i%mid] = append(groups[i%mid], u)
		}
		urls = urls[:0:0]
		for j := range mid {
			port, err := c.reservePort(0)
			if err != nil {
				return err
			}
			if err := c.startAggregator(ctx, 1+j, port, groups[j]); err != nil {
				return err
			}
			c.mu.Lock()
			urls = append(urls, c.aggs[1+j].info.URL)
			c.mu.Unlock()
		}
	}
	if err := c.startAggregator(ctx, 0, aggPort, urls); err != nil {
		return err
	}
	return c.writeClusterFile()
}

// startLeaf starts leaf i on port, or on another free port if that one turns out to
// be taken, and waits until it is ready.
func (c *Cluster) startLeaf(ctx context.Context, i, port int) error {
	id := fmt.Sprintf("leaf-%d", i)
	info := ProcessInfo{
		Role:    RoleLeaf,
		ID:      id,
		DataDir: filepath.Join(c.cfg.Dir, id),
		ShmDir:  filepath.Join(c.cfg.ShmDir, id),
		Log:     filepath.Join(c.cfg.Dir, "logs", id+".log"),
	}
	for _, d := range []string{info.DataDir, info.ShmDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return fmt.Errorf("cannot start %s: %w", id, err)
		}
	}
	return c.startWithRetry(ctx, info, port, func(p *process) {
		c.mu.Lock()
		c.leaves[i] = p
		c.mu.Unlock()
	}, func(port int) []string {
		argv := []string{c.cfg.Binary, "leaf",
			"--id", id,
			"--listen", hostPort(port),
			"--data", info.DataDir,
			"--shm-dir", info.ShmDir,
		}
		argv = append(argv, c.cfg.ExtraLeafArgs...)
		if c.cfg.LeafArgs != nil {
			argv = append(argv, c.cfg.LeafArgs(i)...)
		}
		return argv
	})
}

// startAggregator starts aggregator i (0 is the root) over the children's URLs.
func (c *Cluster) startAggregator(ctx context.Context, i, port int, childURLs []string) error {
	id := fmt.Sprintf("agg-%d", i)
	info := ProcessInfo{
		Role: RoleAggregator,
		ID:   id,
		Log:  filepath.Join(c.cfg.Dir, "logs", id+".log"),
	}
	return c.startWithRetry(ctx, info, port, func(p *process) {
		c.mu.Lock()
		c.aggs[i] = p
		c.mu.Unlock()
	}, func(port int) []string {
		argv := []string{c.cfg.Binary, "aggregator",
			"--listen", hostPort(port),
			"--leaves", strings.Join(childURLs, ","),
		}
		return append(argv, c.cfg.ExtraAggArgs...)
	})
}

// startWithRetry launches a process with argv(port), records it with set, and waits
// until it is ready. A process that exits complaining that its address is in use is
// started again on a fresh port.
func (c *Cluster) startWithRetry(ctx context.Context, info ProcessInfo, port int, set func(*process), argv func(port int) []string) error {
	for attempt := 1; ; attempt++ {
		info.Port = port
		info.URL = "http://" + hostPort(port)
		info.Argv = argv(port)
		p, err := c.launch(info)
		if err != nil {
			return err
		}
		set(p)
		err = c.waitReady(ctx, p)
		if err == nil {
			return nil
		}
		if attempt >= startAttempts || !p.exited() || !strings.Contains(p.logTail(), "address already in use") {
			return err
		}
		if port, err = c.reservePort(0); err != nil {
			return err
		}
	}
}

// launch starts one process with its output appended to its log.
func (c *Cluster) launch(info ProcessInfo) (*process, error) {
	f, err := os.OpenFile(info.Log, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("cannot start %s: %w", info.ID, err)
	}
	defer f.Close() // the child holds its own copy
	fmt.Fprintf(f, "--- testbench: starting %s at %s: %s\n", info.ID, time.Now().Format(time.RFC3339Nano), strings.Join(info.Argv, " "))
	off, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		return nil, fmt.Errorf("cannot start %s: %w", info.ID, err)
	}
	cmd := exec.Command(info.Argv[0], info.Argv[1:]...)
	cmd.Stdout = f
	cmd.Stderr = f
	cmd.Env = append(os.Environ(), c.cfg.Env...)
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("cannot start %s: %w", info.ID, err)
	}
	info.PID = cmd.Process.Pid
	p := &process{info: info, cmd: cmd, done: make(chan struct{}), logOffset: off}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// waitReady polls p's /readyz until it answers 200, p exits, ReadyTimeout passes or
// ctx ends.
func (c *Cluster) waitReady(ctx context.Context, p *process) error {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.ReadyTimeout)
	defer cancel()
	client := c.clientFor(p.info.URL)
	var last error
	for {
		pctx, pcancel := context.WithTimeout(ctx, time.Second)
		last = client.Ready(pctx)
		pcancel()
		if last == nil && !p.saysListening() {
			// Something answers on the port, but this process has not said it
			// bound it: another program took the port between the harness
			// choosing it and this process binding it, and this process is about
			// to exit with "address already in use" (startWithRetry then tries
			// another port).
			last = fmt.Errorf("%s answers, but %s has not logged that it listens there", p.info.URL, p.info.ID)
		}
		if last == nil {
			return nil
		}
		t := time.NewTimer(readyPoll)
		select {
		case <-p.done:
			t.Stop()
			return fmt.Errorf("%s exited before it was ready (%v); its log %s ends with:\n%s", p.info.ID, p.err, p.info.Log, p.logTail())
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("%s not ready after %v (last probe: %v); its log %s ends with:\n%s", p.info.ID, c.cfg.ReadyTimeout, last, p.info.Log, p.logTail())
		case <-t.C:
		}
	}
}

// saysListening reports whether this process logged, since it started, that it
// listens on its port: a line with "listening" and its address (the reef
// processes' `msg=listening addr=127.0.0.1:PORT`).
func (p *process) saysListening() bool {
	f, err := os.Open(p.info.Log)
	if err != nil {
		return false
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil || st.Size() <= p.logOffset {
		return false
	}
	// The line comes early; a process that logged much before it is still read
	// in full, up to a bound.
	buf := make([]byte, min(st.Size()-p.logOffset, 1<<20))
	n, _ := f.ReadAt(buf, p.logOffset)
	addr := []byte(hostPort(p.info.Port))
	for line := range bytes.Lines(buf[:n]) {
		if !bytes.Contains(line, []byte("listening")) {
			continue
		}
		for rest := line; ; {
			i := bytes.Index(rest, addr)
			if i < 0 {
				break
			}
			rest = rest[i+len(addr):]
			if len(rest) == 0 || rest[0] < '0' || rest[0] > '9' {
				return true // the whole port, not the start of a longer one
			}
		}
	}
	return false
}

// logTail returns the end of what this process wrote to its log.
func (p *process) logTail() string {
	f, err := os.Open(p.info.Log)
	if err != nil {
		return "(cannot read log: " + err.Error() + ")"
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return "(cannot read log: " + err.Error() + ")"
	}
	from := max(p.logOffset, st.Size()-logTailBytes)
	buf := make([]byte, st.Size()-from)
	n, _ := f.ReadAt(buf, from)
	s := strings.TrimSpace(string(bytes.ToValidUTF8(buf[:n], []byte("?"))))
	if s == "" {
		return "(nothing)"
	}
	return s
}

// clientFor returns an api.Client for url that shares the cluster's connections.
func (c *Cluster) clientFor(url string) *api.Client {
	return &api.Client{BaseURL: url, HTTP: c.http}
}

// AggregatorURL returns the root aggregator's URL, e.g. http://127.0.0.1:7070.
func (c *Cluster) AggregatorURL() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.aggs) == 0 || c.aggs[0] == nil {
		return ""
	}
	return c.aggs[0].info.URL
}

// Client returns a client of the root aggregator.
func (c *Cluster) Client() *api.Client { return c.clientFor(c.AggregatorURL()) }

// Dir returns the cluster's (absolute) data dir.
func (c *Cluster) Dir() string { return c.cfg.Dir }

// Leaves returns the leaves in order: their ids, URLs, current pids and command lines.
func (c *Cluster) Leaves() []ProcessInfo {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]ProcessInfo, 0, len(c.leaves))
	for _, p := range c.leaves {
		if p != nil {
			out = append(out, p.info.clone())
		}
	}
	return out
}

// Processes returns every process: the leaves in order, then the aggregators.
func (c *Cluster) Processes() []ProcessInfo {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.processesLocked()
}

func (c *Cluster) processesLocked() []ProcessInfo {
	out := make([]ProcessInfo, 0, len(c.leaves)+len(c.aggs))
	for _, p := range append(append([]*process(nil), c.leaves...), c.aggs...) {
		if p != nil {
			out = append(out, p.info.clone())
		}
	}
	return out
}

// Running reports whether leaf i's process is alive (a stopped process is alive).
func (c *Cluster) Running(i int) bool {
	p, err := c.leaf(i)
	return err == nil && !p.exited()
}

func (c *Cluster) leaf(i int) (*process, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, errors.New("cluster is closed")
	}
	if i < 0 || i >= len(c.leaves) || c.leaves[i] == nil {
		return nil, fmt.Errorf("no leaf %d (the cluster has %d)", i, len(c.leaves))
	}
	return c.leaves[i], nil
}

// Kill sends SIGKILL to leaf i (a crash) and waits until it is gone.
func (c *Cluster) Kill(i int) error {
	c.opMu.Lock()
	defer c.opMu.Unlock()
	p, err := c.leaf(i)
	if err != nil {
		return fmt.Errorf("cannot kill leaf: %w", err)
	}
	if p.exited() {
		return fmt.Errorf("cannot kill %s: not running", p.info.ID)
	}
	c.mu.Lock()
	p.expected = true
	c.mu.Unlock()
	if err := c.kill(p); err != nil {
		return fmt.Errorf("cannot kill %s: %w", p.info.ID, err)
	}
	return nil
}

// Stop sends SIGSTOP to leaf i: it stays alive but answers nothing (a hung leaf).
func (c *Cluster) Stop(i int) error { return c.jobControl(i, sigStop, true, "stop") }

// Cont sends SIGCONT to leaf i, resuming a Stop.
func (c *Cluster) Cont(i int) error { return c.jobControl(i, sigCont, false, "continue") }

func (c *Cluster) jobControl(i int, sig syscall.Signal, stopped bool, what string) error {
	c.opMu.Lock()
	defer c.opMu.Unlock()
	p, err := c.leaf(i)
	if err != nil {
		return fmt.Errorf("cannot %s leaf: %w", what, err)
	}
	if p.exited() {
		return fmt.Errorf("cannot %s %s: not running", what, p.info.ID)
	}
	if err := signalGroup(p.info.PID, sig); err != nil {
		return fmt.Errorf("cannot %s %s: %w", what, p.info.ID, err)
	}
	if stopped {
		// A signal is delivered asynchronously: wait until the process is really
		// stopped, so that whatever the caller does next meets a hung leaf.
		waitStopped(p.info.PID, 2*time.Second)
	}
	c.mu.Lock()
	p.stopped = stopped
	c.mu.Unlock()
	return nil
}

// RestartLeaf restarts leaf i with the same command line and waits until it is ready,
// then updates cluster.json with its new pid. A running leaf is first ended as a
// planned restart would end it: SIGCONT if it was stopped, SIGTERM, and SIGKILL only
// if it has not exited within StopTimeout. A leaf that is not running (see Kill) is
// simply started again. The leaf is started again even when it did not exit cleanly;
// that, too, is reported as an error.
func (c *Cluster) RestartLeaf(ctx context.Context, i int) error {
	c.opMu.Lock()
	defer c.opMu.Unlock()
	old, err := c.leaf(i)
	if err != nil {
		return fmt.Errorf("cannot restart leaf: %w", err)
	}
	var stopErr error
	if !old.exited() {
		stopErr = c.stop(old)
	}
	p, err := c.launch(old.info.clone())
	if err != nil {
		return errors.Join(stopErr, err)
	}
	c.mu.Lock()
	c.leaves[i] = p
	c.mu.Unlock()
	err = c.waitReady(ctx, p)
	if ferr := c.writeClusterFile(); err == nil {
		err = ferr
	}
	if err := errors.Join(stopErr, err); err != nil {
		return fmt.Errorf("cannot restart %s cleanly: %w", old.info.ID, err)
	}
	return nil
}

// Close stops the cluster: SIGTERM to the aggregator, then to every leaf, each
// killed if it has not exited within StopTimeout. It waits until every process is
// gone and reports processes that had to be killed, exited with an error, or had died
// unexpectedly before. Logs and data stay in Dir. Close is idempotent.
func (c *Cluster) Close() error {
	c.opMu.Lock()
	defer c.opMu.Unlock()
	var adoptErr error
	if !c.isClosed() {
		// Leaves another program restarted (a rolling deploy) are stopped too.
		_, adoptErr = c.adopt()
	}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	aggs := append([]*process(nil), c.aggs...)
	leaves := append([]*process(nil), c.leaves...)
	c.mu.Unlock()

	var errs []error
	for _, p := range aggs {
		if p != nil {
			errs = append(errs, c.stop(p))
		}
	}
	leafErrs := make([]error, len(leaves))
	var wg sync.WaitGroup
	for i, p := range leaves {
		if p == nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			leafErrs[i] = c.stop(p)
		}()
	}
	wg.Wait()
	errs = append(errs, leafErrs...)
	errs = append(errs, adoptErr)

	c.http.CloseIdleConnections()
	c.mu.Lock()
	releasePorts(c.ports)
	c.ports = nil
	c.mu.Unlock()
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("cannot stop cluster in %s cleanly: %w", c.cfg.Dir, err)
	}
	return nil
}

// stop ends p with SIGTERM, or SIGKILL after StopTimeout, and reports anything but a
// clean exit. A process that had already died is reported unless the harness ended it.
func (c *Cluster) stop(p *process) error {
	c.mu.Lock()
	expected, stopped := p.expected, p.stopped
	p.expected = true
	c.mu.Unlock()
	if p.exited() {
		if expected {
			return nil
		}
		return fmt.Errorf("%s had died before it was stopped (%v); see %s", p.info.ID, p.err, p.info.Log)
	}
	if stopped {
		_ = signalGroup(p.info.PID, sigCont)
	}
	if err := signalGroup(p.info.PID, sigTerm); err != nil {
		return fmt.Errorf("cannot stop %s: %w", p.info.ID, err)
	}
	t := time.NewTimer(c.cfg.StopTimeout)
	defer t.Stop()
	select {
	case <-p.done:
		if p.err != nil {
			return fmt.Errorf("%s exited with %v after SIGTERM; see %s", p.info.ID, p.err, p.info.Log)
		}
		return nil
	case <-t.C:
	}
	if err := c.kill(p); err != nil {
		return fmt.Errorf("%s did not exit within %v of SIGTERM and %w", p.info.ID, c.cfg.StopTimeout, err)
	}
	return fmt.Errorf("%s did not exit within %v of SIGTERM; killed it; see %s", p.info.ID, c.cfg.StopTimeout, p.info.Log)
}

// kill sends SIGKILL to p's process group and waits, bounded, until p is reaped.
func (c *Cluster) kill(p *process) error {
	if err := signalGroup(p.info.PID, sigKill); err != nil {
		return err
	}
	t := time.NewTimer(killWait)
	defer t.Stop()
	select {
	case <-p.done:
		return nil
	case <-t.C:
		return fmt.Errorf("still not gone %v after SIGKILL", killWait)
	}
}

// reservePort returns preferred if it is free, else a free port the kernel picks. The
// port stays reserved in this process until Close, so clusters started side by side
// by one program never share one. (Another program may still take a port before the
// reef process binds it; startWithRetry handles that.)
func (c *Cluster) reservePort(preferred int) (int, error) {
	portsMu.Lock()
	defer portsMu.Unlock()
	take := func(p int) int {
		portsReserved[p] = true
		c.mu.Lock()
		c.ports = append(c.ports, p)
		c.mu.Unlock()
		return p
	}
	if preferred > 0 && !portsReserved[preferred] && portFree(preferred) {
		return take(preferred), nil
	}
	for range 100 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, fmt.Errorf("cannot find a free port: %w", err)
		}
		p := l.Addr().(*net.TCPAddr).Port
		_ = l.Close()
		if !portsReserved[p] {
			return take(p), nil
		}
	}
	return 0, errors.New("cannot find a free port: every port the kernel offered is reserved")
}

var (
	portsMu       sync.Mutex
	portsReserved = map[int]bool{} // ports of live clusters in this process
)

func releasePorts(ports []int) {
	portsMu.Lock()
	defer portsMu.Unlock()
	for _, p := range ports {
		delete(portsReserved, p)
	}
}

// portFree reports whether 127.0.0.1:port can be bound right now.
func portFree(port int) bool {
	l, err := net.Listen("tcp", hostPort(port))
	if err != nil {
		return false
	}
	_ = l.Close()
	return true
}

func hostPort(port int) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(port)) }

// waitStopped waits (at most timeout) until /proc says process pid is stopped. Where
// there is no /proc it returns at once.
func waitStopped(pid int, timeout time.Duration) {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			return
		}
		// The state follows the parenthesized command name: "pid (comm) S …".
		if i := bytes.LastIndexByte(data, ')'); i >= 0 && i+2 < len(data) {
			if st := data[i+2]; st == 'T' || st == 't' {
				return
			}
		}
		time.Sleep(time.Millisecond)
	}
}
