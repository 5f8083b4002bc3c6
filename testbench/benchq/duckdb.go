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

	"github.com/reef-db/reef/testbench/benchq/spec"
)

// duckBenchDir is where the DuckDB side's module lives, relative to the repository
// root.
const duckBenchDir = "testbench/duckbench"

// runDuckDB builds (unless given prebuilt) and runs the duckbench program and returns
// its report, or nil and why the DuckDB side could not be measured.
func runDuckDB(ctx context.Context, opts Options, work string) (*spec.Engine, string) {
	bin := opts.DuckBench
	if bin == "" {
		var why string
		if bin, why = buildDuckBench(ctx, opts, work); bin == "" {
			return nil, why
		}
	}
	args := []string{"--rows", strconv.Itoa(opts.Rows), "--runs", strconv.Itoa(opts.Runs), "--tmp", work}
	fmt.Fprintf(opts.Progress, "duckdb: running %s %s\n", bin, strings.Join(args, " "))
	cmd := exec.CommandContext(ctx, bin, args...)
	var stdout bytes.Buffer
	cmd.Stdout = &limitedBuffer{buf: &stdout, max: spec.MaxEngineJSON}
	pw := &prefixWriter{w: opts.Progress, prefix: "duckdb: "}
	cmd.Stderr = pw
	err := cmd.Run()
	pw.flush()
	if err != nil {
		return nil, fmt.Sprintf("the DuckDB side (%s) failed: %v", bin, err)
	}
	e, err := spec.ReadEngine(&stdout)
	if err != nil {
		return nil, fmt.Sprintf("the DuckDB side (%s) printed no report: %v", bin, err)
	}
	return e, ""
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

// limitedBuffer is a writer that keeps at most max bytes and fails past them.
type limitedBuffer struct {
	buf *bytes.Buffer
	max int
}

func (l *limitedBuffer) Write(p []byte) (int, error) {
	if l.buf.Len()+len(p) > l.max {
		return 0, fmt.Errorf("output over %d bytes", l.max)
	}
	return l.buf.Write(p)
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
