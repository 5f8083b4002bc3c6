package shell

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"

	"github.com/reef-db/reef/api"
)

// ErrInterrupted is what a LineReader returns when the user pressed Ctrl-C at the
// prompt: the shell drops the input typed so far and prompts again.
var ErrInterrupted = errors.New("interrupted")

// LineReader reads input one line at a time. liner's State implements it through
// an adapter; tests and scripts use plain readers.
type LineReader interface {
	// Prompt shows prompt (if it is interactive) and returns the next line without
	// its newline. It returns io.EOF at the end of input and ErrInterrupted on Ctrl-C.
	Prompt(prompt string) (string, error)
	// AppendHistory records a complete statement or command.
	AppendHistory(entry string)
}

// Prompts.
const (
	promptFirst = "reef> "
	promptMore  = "  ->  "
)

// Bounds.
const (
	maxErrorsShown = 20               // per-leaf errors listed under a partial answer
	maxIncludeBy   = 16               // nesting of \i
	maxInputLine   = 1 << 20          // one line of a script
	maxHistoryItem = 4000             // longer statements are not kept in the history
	noTimeoutWait  = 10 * time.Minute // client wait when the server's default timeout applies
	timeoutGrace   = 5 * time.Second  // client wait beyond the query's own timeout
)

// Shell is one session: its settings (format, timing, timeout, …), its output
// destination, and the query in flight. Its methods are not safe for concurrent use,
// except Interrupt.
type Shell struct {
	client *api.Client
	stdout io.Writer // the console
	stderr io.Writer // messages and errors
	out    io.Writer // results: stdout, or the file of \o
	file   *os.File  // open \o file, if any

	interactive bool   // prompts and summary lines for people
	color       bool   // stdout is a terminal that takes ANSI colors
	pager       string // command to page long output through; "" for none
	termFd      uintptr
	termOK      bool // termFd is a terminal

	format      string
	timing      bool
	expanded    bool
	timeout     time.Duration
	minCoverage float64

	split  splitter
	schema *schemaCache
	depth  int // \i nesting
	failed int // statements and commands that failed

	mu     sync.Mutex
	cancel context.CancelFunc // of the query in flight
}

// Config makes a Shell. Zero values are defaults.
type Config struct {
	Client      *api.Client
	Stdout      io.Writer
	Stderr      io.Writer
	Interactive bool
	Format      string        // default table
	Timeout     time.Duration // per query; 0 leaves it to the server
	MinCoverage float64       // percent
	// Pager pages table output longer than the terminal when Stdout is a terminal;
	// empty means no paging.
	Pager string
	// Color enables ANSI highlighting. It is only honoured when Stdout is a
	// terminal.
	Color bool
}

// New returns a Shell. Output goes to Stdout, messages to Stderr.
func New(cfg Config) *Shell {
	s := &Shell{
		client:      cfg.Client,
		stdout:      cfg.Stdout,
		stderr:      cfg.Stderr,
		out:         cfg.Stdout,
		interactive: cfg.Interactive,
		format:      cfg.Format,
		timeout:     cfg.Timeout,
		minCoverage: cfg.MinCoverage,
		schema:      newSchemaCache(cfg.Client),
	}
	if s.format == "" {
		s.format = FormatTable
	}
	if f, ok := cfg.Stdout.(interface{ Fd() uintptr }); ok && isTerminal(f.Fd()) {
		s.termFd, s.termOK = f.Fd(), true
		s.color = cfg.Color
		s.pager = cfg.Pager
	}
	return s
}

// Failed returns how many statements and commands failed so far.
func (s *Shell) Failed() int { return s.failed }

// Close closes the \o file, if one is open.
func (s *Shell) Close() error {
	return s.setOutput("")
}

// Interrupt cancels the query in flight, if any. It is safe to call from another
// goroutine (a signal handler).
func (s *Shell) Interrupt() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cancel != nil {
		s.cancel()
	}
}

// Loop reads statements and commands from lr until the end of input or \q and runs
// them. In a script (a non-interactive shell) a statement left without `;` at the end
// still runs. It returns only when the input ends or ctx is done; failed statements
// are counted (see Failed), not returned.
func (s *Shell) Loop(ctx context.Context, lr LineReader) error {
	defer s.split.reset()
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		prompt := promptFirst
		if !s.split.empty() || s.split.inQuote() {
			prompt = promptMore
		}
		line, err := lr.Prompt(prompt)
		switch {
		case errors.Is(err, ErrInterrupted):
			s.split.reset()
			continue
		case errors.Is(err, io.EOF):
			if !s.interactive || s.depth > 0 {
				if stmt := s.split.rest(); stmt != "" {
					s.execute(ctx, stmt)
				}
			} else {
				fmt.Fprintln(s.stdout)
			}
			return nil
		case err != nil:
			return fmt.Errorf("cannot read input: %w", err)
		}

		if trimmed := strings.TrimSpace(line); strings.HasPrefix(trimmed, `\`) && !s.split.inQuote() {
			if len(trimmed) <= maxHistoryItem {
				lr.AppendHistory(trimmed)
			}
			if s.command(ctx, trimmed) == errQuit {
				return nil
			}
			continue
		}
		if s.split.size()+len(line) > MaxStatementBytes {
			s.fail(fmt.Errorf("statement longer than %d bytes; input dropped", MaxStatementBytes))
			s.split.reset()
			continue
		}
		for _, stmt := range s.split.feed(line + "\n") {
			if len(stmt) <= maxHistoryItem {
				// One line per entry; spaces inside strings stay as typed.
				lr.AppendHistory(oneLine.Replace(stmt) + ";")
			}
			s.execute(ctx, stmt)
			if ctx.Err() != nil {
				return ctx.Err()
			}
		}
	}
}

// oneLine joins the lines of a statement for the history.
var oneLine = strings.NewReplacer("\r\n", " ", "\n", " ", "\r", " ")

// RunScript runs the statements and commands read from r, as from a file.
func (s *Shell) RunScript(ctx context.Context, r io.Reader) error {
	return s.Loop(ctx, newReaderLines(r))
}

// execute runs one statement and shows its answer or its error.
func (s *Shell) execute(ctx context.Context, sql string) {
	qctx, done := s.queryContext(ctx)
	defer done()
	req := api.QueryRequest{SQL: sql, TimeoutMS: s.timeout.Milliseconds(), MinCoverage: s.minCoverage}
	start := time.Now()
	res, err := s.client.SQL(qctx, req)
	elapsed := time.Since(start)
	if err != nil {
		switch {
		case ctx.Err() != nil:
			s.fail(fmt.Errorf("query canceled: %w", ctx.Err()))
		case errors.Is(qctx.Err(), context.Canceled):
			s.fail(errors.New("query canceled"))
		case errors.Is(qctx.Err(), context.DeadlineExceeded):
			s.fail(fmt.Errorf("no answer within %s", formatDuration(elapsed)))
		default:
			s.showError(sql, err)
		}
		return
	}
	if err := s.showResult(res, elapsed); err != nil {
		s.fail(fmt.Errorf("cannot write result: %w", err))
	}
}

// queryContext derives the context of one query: cancelled by Interrupt, and ended
// a little after the query's own timeout, so that the server can still send the
// partial answer it has at its deadline.
func (s *Shell) queryContext(ctx context.Context) (context.Context, func()) {
	wait := noTimeoutWait
	if s.timeout > 0 {
		wait = s.timeout + timeoutGrace
	}
	qctx, cancel := context.WithTimeout(ctx, wait)
	s.mu.Lock()
	s.cancel = cancel
	s.mu.Unlock()
	return qctx, func() {
		s.mu.Lock()
		s.cancel = nil
		s.mu.Unlock()
		cancel()
	}
}

// fail counts a failure and reports it.
func (s *Shell) fail(err error) {
	s.failed++
	fmt.Fprintf(s.stderr, "%s %s\n", s.paint("ERROR:", ansiRed), err)
}

// showError reports a failed query, with a caret under the error's position.
func (s *Shell) showError(sql string, err error) {
	s.failed++
	var e *api.Error
	if !errors.As(err, &e) {
		fmt.Fprintf(s.stderr, "%s %s\n", s.paint("ERROR:", ansiRed), err)
		return
	}
	fmt.Fprintf(s.stderr, "%s %s\n", s.paint("ERROR:", ansiRed), e.Message)
	q := sql
	if e.Query != "" {
		q = e.Query
	}
	for _, l := range caretLines(q, e.Position) {
		fmt.Fprintln(s.stderr, l)
	}
}

// showResult writes a result in the current format, and the summary line under it.
func (s *Shell) showResult(res *api.QueryResult, elapsed time.Duration) error {
	var buf bytes.Buffer
	toConsole := s.out == s.stdout
	switch s.format {
	case FormatCSV:
		if err := writeCSV(&buf, res); err != nil {
			return err
		}
	case FormatJSON:
		if err := writeJSON(&buf, res); err != nil {
			return err
		}
	case FormatNDJSON:
		if err := writeNDJSON(&buf, res); err != nil {
			return err
		}
	default:
		if len(res.Rows) == 0 {
			buf.WriteString("(no rows)\n")
		} else if s.expanded {
			renderExpanded(&buf, res)
		} else {
			renderTable(&buf, res)
		}
		if line := sparkline(res, s.sparkWidth()); line != "" {
			buf.WriteString(line)
			buf.WriteByte('\n')
		}
	}
	if s.format == FormatTable && toConsole {
		buf.WriteString(s.summary(res, elapsed, true))
		return s.page(buf.Bytes())
	}
	summary := s.summary(res, elapsed, false)
	if _, err := s.out.Write(buf.Bytes()); err != nil {
		return err
	}
	if s.interactive || res.Partial || res.Truncated {
		_, err := io.WriteString(s.stderr, summary)
		return err
	}
	return nil
}

// summary is the line (or lines) under a result:
//
//	12 rows · coverage 87.5% (7/8 leaves, 41.2M rows) · 23 ms
//
// highlighted (when color is set and the console takes it) when the answer is
// partial, followed by the children that failed and,
// with \timing, the server's timings.
func (s *Shell) summary(res *api.QueryResult, elapsed time.Duration, color bool) string {
	cov := res.Coverage
	rows := "rows"
	if len(res.Rows) == 1 {
		rows = "row"
	}
	line := fmt.Sprintf("%s %s · coverage %s (%d/%d leaves, %s rows) · %s",
		formatInt(int64(len(res.Rows))), rows, formatPercent(cov.Percent, !res.Partial),
		cov.LeavesResponded, cov.LeavesTotal, humanCount(cov.RowsScanned), formatDuration(elapsed))
	if res.Partial {
		line = "PARTIAL: " + line
	}
	if res.Truncated {
		line += " · truncated at a limit"
	}
	var b strings.Builder
	if res.Partial && color {
		b.WriteString(s.paint(line, ansiYellowBold))
	} else {
		b.WriteString(line)
	}
	b.WriteByte('\n')
	for i, e := range res.Errors {
		if i == maxErrorsShown {
			fmt.Fprintf(&b, "  … and %d more\n", len(res.Errors)-i)
			break
		}
		fmt.Fprintf(&b, "  %s: %s\n", sanitize(e.Node), sanitize(e.Error))
	}
	if s.timing {
		t := res.Timings
		fmt.Fprintf(&b, "timing: parse %s · scan %s · merge %s · server %s · round trip %s\n",
			formatMS(t.ParseMS), formatMS(t.ScanMS), formatMS(t.MergeMS), formatMS(t.TotalMS), formatDuration(elapsed))
	}
	return b.String()
}

// ANSI sequences.
const (
	ansiRed        = "\x1b[1;31m"
	ansiYellowBold = "\x1b[1;33m"
	ansiReset      = "\x1b[0m"
)

// paint wraps s in an ANSI color when the console takes colors.
func (s *Shell) paint(text, color string) string {
	if !s.color {
		return text
	}
	return color + text + ansiReset
}

// sparkWidth is the widest sparkline that fits the console.
func (s *Shell) sparkWidth() int {
	if s.termOK {
		if _, cols, ok := terminalSize(s.termFd); ok {
			return max(10, cols-40)
		}
	}
	return 80
}

// page writes text to the console, through the pager when the console is a
// terminal that text does not fit on.
func (s *Shell) page(text []byte) error {
	if s.pager != "" && s.termOK {
		if rows, _, ok := terminalSize(s.termFd); ok && bytes.Count(text, []byte{'\n'}) >= rows {
			cmd := exec.Command("/bin/sh", "-c", s.pager)
			cmd.Stdin = bytes.NewReader(text)
			cmd.Stdout = s.stdout
			cmd.Stderr = s.stderr
			if err := cmd.Run(); err == nil {
				return nil
			}
			// The pager failed (not installed, bad $PAGER): print plainly.
		}
	}
	_, err := s.stdout.Write(text)
	return err
}

// setOutput sends results to the file path, or back to the console for "".
func (s *Shell) setOutput(path string) error {
	if s.file != nil {
		err := s.file.Close()
		s.file, s.out = nil, s.stdout
		if err != nil {
			return fmt.Errorf("cannot close output file: %w", err)
		}
	}
	if path == "" {
		return nil
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("cannot open output file: %w", err)
	}
	s.file, s.out = f, f
	return nil
}

// readerLines is a LineReader over a script: no prompts, no history.
type readerLines struct {
	r    *bufio.Reader
	line int
}

func newReaderLines(r io.Reader) *readerLines { return &readerLines{r: bufio.NewReader(r)} }

func (l *readerLines) Prompt(string) (string, error) {
	var line []byte
	for {
		frag, err := l.r.ReadSlice('\n')
		if len(line)+len(frag) > maxInputLine {
			return "", fmt.Errorf("line %d is longer than %d bytes", l.line+1, maxInputLine)
		}
		line = append(line, frag...)
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if err != nil && (len(line) == 0 || !errors.Is(err, io.EOF)) {
			return "", err
		}
		l.line++
		return strings.TrimRight(string(line), "\r\n"), nil
	}
}

func (l *readerLines) AppendHistory(string) {}
