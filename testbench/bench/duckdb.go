package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/reef-db/reef/testbench/benchq/spec"
)

// duckBenchDir is the DuckDB side's module (the program `reef bench queries` uses
// too), relative to the repository root.
const duckBenchDir = "testbench/duckbench"

// duckDBIngest times DuckDB's read_json of file with the duckbench program in its
// --load-only mode, and returns the result, or nil and why it could not.
func duckDBIngest(ctx context.Context, cfg IngestConfig, work, file string, progress io.Writer) (*DuckDBIngest, string) {
	bin := cfg.DuckBench
	if bin == "" {
		var why string
		if bin, why = buildDuckBench(ctx, cfg.DuckBenchSource, work, progress); bin == "" {
			return nil, why
		}
	}
	args := []string{"--ndjson", file, "--load-only"}
	fmt.Fprintf(progress, "duckdb: running %s %s\n", bin, strings.Join(args, " "))
	cmd := exec.CommandContext(ctx, bin, args...)
	var stdout bytes.Buffer
	cmd.Stdout = &capped{buf: &stdout, max: spec.MaxEngineJSON}
	cmd.Stderr = &linePrefixer{w: progress, prefix: "duckdb: "}
	err := cmd.Run()
	if err != nil {
		return nil, fmt.Sprintf("the DuckDB side (%s) failed: %v", bin, err)
	}
	e, err := spec.ReadEngine(&stdout)
	if err != nil {
		return nil, fmt.Sprintf("the DuckDB side (%s) printed no report: %v", bin, err)
	}
	if e.LoadMS <= 0 {
		return nil, fmt.Sprintf("the DuckDB side (%s) reported no load time", bin)
	}
	s := e.LoadMS / 1000
	cpu := cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	return &DuckDBIngest{Version: e.Version, Setup: e.Setup, Rows: e.Rows, Seconds: round3(s), RowsPerSec: round3(float64(e.Rows) / s),
		ProcessCPUSeconds: round3(cpu.Seconds())}, ""
}

// buildDuckBench compiles the duckbench module into work and returns the binary, or
// "" and why it could not.
func buildDuckBench(ctx context.Context, src, work string, progress io.Writer) (bin, why string) {
	if src == "" {
		var err error
		if src, err = findUp(duckBenchDir, "go.mod"); err != nil {
			return "", "cannot find the DuckDB side: " + err.Error() + " (run from the reef repository, or give --duckdb-bench)"
		}
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		return "", "cannot build the DuckDB side: no go command in $PATH (give a prebuilt one with --duckdb-bench)"
	}
	bin = filepath.Join(work, "duckbench")
	fmt.Fprintf(progress, "duckdb: building %s (the first build compiles DuckDB's cgo bindings: a minute or two) …\n", src)
	cmd := exec.CommandContext(ctx, goTool, "build", "-o", bin, ".")
	cmd.Dir = src
	out, err := cmd.CombinedOutput()
	if err != nil {
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		return "", fmt.Sprintf("cannot build the DuckDB side in %s: %v: %s", src, err, strings.Join(lines[max(0, len(lines)-5):], "\n"))
	}
	return bin, ""
}

// findUp walks up from the working directory to a directory dir (relative) that
// holds file, and returns dir's path.
func findUp(dir, file string) (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		cand := filepath.Join(wd, filepath.FromSlash(dir))
		if _, err := os.Stat(filepath.Join(cand, file)); err == nil {
			return cand, nil
		}
		parent := filepath.Dir(wd)
		if parent == wd {
			return "", errors.New("no " + dir + "/" + file + " above the working directory")
		}
		wd = parent
	}
}

// capped is a writer that keeps at most max bytes and fails past them.
type capped struct {
	buf *bytes.Buffer
	max int
}

func (c *capped) Write(p []byte) (int, error) {
	if c.buf.Len()+len(p) > c.max {
		return 0, fmt.Errorf("output over %d bytes", c.max)
	}
	return c.buf.Write(p)
}

// linePrefixer copies whole lines to w, each starting with prefix; a line longer
// than 4 KiB is cut.
type linePrefixer struct {
	w      io.Writer
	prefix string
	line   []byte
}

func (p *linePrefixer) Write(b []byte) (int, error) {
	for _, c := range b {
		if c == '\n' {
			fmt.Fprintf(p.w, "%s%s\n", p.prefix, p.line)
			p.line = p.line[:0]
			continue
		}
		if len(p.line) < 4096 {
			p.line = append(p.line, c)
		}
	}
	return len(b), nil
}
