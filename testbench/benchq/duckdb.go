package benchq

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/reef-db/reef/testbench/benchq/spec"
)

// duckBenchDir is where the DuckDB side's module lives, relative to the repository
// root.
const duckBenchDir = "testbench/duckbench"

const (
	// loadTimeout bounds the DuckDB side's generation and load of the dataset.
	loadTimeout = 30 * time.Minute
	// stopTimeout bounds the wait for the DuckDB side to exit once its input ends.
	stopTimeout = 30 * time.Second
)

// duckSide is a running duckbench program in its serve mode, with the dataset
// loaded, answering one command at a time.
type duckSide struct {
	cmd    *exec.Cmd
	in     io.WriteCloser
	lines  *bufio.Scanner
	stderr *prefixWriter
	e      *spec.Engine

	stopped bool
	stopErr error
}

// startDuckDB builds duckbench (unless given prebuilt), starts it in its serve mode
// and waits until it has loaded the dataset. It returns nil and why when the DuckDB
// side cannot be measured.
func startDuckDB(ctx context.Context, opts Options, work string) (*duckSide, string) {
	bin := opts.DuckBench
	if bin == "" {
		var why string
		if bin, why = buildDuckBench(ctx, opts, work); bin == "" {
			return nil, why
		}
	}
	args := []string{"--serve", "--rows", strconv.Itoa(opts.Rows), "--tmp", work}
	fmt.Fprintf(opts.Progress, "duckdb: running %s %s\n", bin, strings.Join(args, " "))
	d := &duckSide{
		cmd:    exec.CommandContext(ctx, bin, args...),
		stderr: &prefixWriter{w: opts.Progress, prefix: "duckdb: "},
	}
	d.cmd.Stderr = d.stderr
	d.cmd.WaitDelay = stopTimeout
	ownGroup(d.cmd)
	in, err := d.cmd.StdinPipe()
	if err != nil {
		return nil, fmt.Sprintf("cannot start the DuckDB side: %v", err)
	}
	out, err := d.cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Sprintf("cannot start the DuckDB side: %v", err)
	}
	d.in = in
	d.lines = bufio.NewScanner(out)
	d.lines.Buffer(make([]byte, 64<<10), spec.MaxEngineJSON)
	if err := d.cmd.Start(); err != nil {
		return nil, fmt.Sprintf("cannot start the DuckDB side (%s): %v", bin, err)
	}
	line, err := d.next(loadTimeout)
	if err != nil {
		return nil, fmt.Sprintf("the DuckDB side (%s) did not load the dataset: %v", bin, d.stop(err))
	}
	if d.e, err = spec.ReadEngine(bytes.NewReader(line)); err != nil {
		return nil, fmt.Sprintf("the DuckDB side (%s) printed no report: %v", bin, d.stop(err))
	}
	return d, ""
}

// next reads one answer line, waiting at most timeout; a program that does not
// answer in time is killed.
func (d *duckSide) next(timeout time.Duration) ([]byte, error) {
	type line struct {
		b   []byte
		err error
	}
	ch := make(chan line, 1)
	go func() {
		if d.lines.Scan() {
			ch <- line{b: bytes.Clone(d.lines.Bytes())}
			return
		}
		err := d.lines.Err()
		if err == nil {
			err = io.ErrUnexpectedEOF
		}
		ch <- line{err: err}
	}()
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case l := <-ch:
		return l.b, l.err
	case <-t.C:
		_ = killGroup(d.cmd)
		<-ch
		return nil, fmt.Errorf("no answer within %v", timeout)
	}
}

// ask sends one command and decodes its answer.
func (d *duckSide) ask(command string) (*spec.QueryRun, error) {
	if _, err := io.WriteString(d.in, command+"\n"); err != nil {
		return nil, fmt.Errorf("cannot send %q: %w", command, err)
	}
	line, err := d.next(queryTimeout)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", command, err)
	}
	return spec.ReadQueryRun(line)
}

// stop ends the program (EOF on its input, then a kill if it lingers) and returns
// cause with the program's exit status added.
// Only the first call stops it; later calls return the first one's result.
func (d *duckSide) stop(cause error) error {
	if d.stopped {
		return d.stopErr
	}
	d.stopped = true
	d.stopErr = d.doStop(cause)
	return d.stopErr
}

func (d *duckSide) doStop(cause error) error {
	_ = d.in.Close()
	exited := make(chan error, 1)
	go func() { exited <- d.cmd.Wait() }()
	var werr error
	select {
	case werr = <-exited:
	case <-time.After(stopTimeout):
		_ = killGroup(d.cmd)
		werr = <-exited
	}
	d.stderr.flush()
	if werr != nil && cause != nil {
		return fmt.Errorf("%w (%v)", cause, werr)
	}
	if cause != nil {
		return cause
	}
	return werr
}

// buildDuckBench compiles the duckbench module into work and returns the binary, or
// "" and why it could not.
func buildDuckBench(ctx context.Context, opts Options, work string) (bin, why string) {
	src := opts.DuckBenchSource
	if src == "" {
		var err error
		if src, err = findDuckBench(); err != nil {
			return "", err.Error()
		}
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		return "", "cannot build the DuckDB side: no go command in $PATH (give a prebuilt one with --duckdb-bench)"
	}
	bin = filepath.Join(work, "duckbench")
	fmt.Fprintf(opts.Progress, "duckdb: building %s (the first build compiles DuckDB's cgo bindings: a minute or two) …\n", src)
	cmd := exec.CommandContext(ctx, goTool, "build", "-o", bin, ".")
	cmd.Dir = src
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Sprintf("cannot build the DuckDB side in %s: %v: %s", src, err, lastLines(out, 5))
	}
	return bin, ""
}

// findDuckBench walks up from the working directory to the repository that holds
// the duckbench module.
func findDuckBench() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("cannot find the DuckDB side: %w", err)
	}
	for {
		cand := filepath.Join(dir, filepath.FromSlash(duckBenchDir))
		if _, err := os.Stat(filepath.Join(cand, "go.mod")); err == nil {
			return cand, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("cannot find the DuckDB side: no " + duckBenchDir + "/go.mod above the working directory (run from the reef repository, or give --duckdb-bench)")
		}
		dir = parent
	}
}

func lastLines(out []byte, n int) string {
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// prefixWriter copies whole lines to w, each starting with prefix. A line longer
// than maxLine is cut.
type prefixWriter struct {
	w      io.Writer
	prefix string
	line   []byte
}

const maxLine = 4096

func (p *prefixWriter) Write(b []byte) (int, error) {
	for _, c := range b {
		if c == '\n' {
			p.flush()
			continue
		}
		if len(p.line) < maxLine {
			p.line = append(p.line, c)
		}
	}
	return len(b), nil
}

func (p *prefixWriter) flush() {
	if len(p.line) == 0 {
		return
	}
	bw := bufio.NewWriter(p.w)
	bw.WriteString(p.prefix)
	bw.Write(p.line)
	bw.WriteByte('\n')
	_ = bw.Flush()
	p.line = p.line[:0]
}
