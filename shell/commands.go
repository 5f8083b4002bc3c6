package shell

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/reef-db/reef/api"
)

// errQuit ends the loop (\q).
var errQuit = errors.New("quit")

// maxScriptBytes bounds a file run with \i.
const maxScriptBytes = 64 << 20

// command is one `\`-command.
type command struct {
	name    string
	aliases []string
	args    string
	help    string
	run     func(s *Shell, ctx context.Context, arg string) error
}

// commands lists every `\`-command, in the order \help shows them. It is filled in
// init because the commands refer back to it.
var commands []command

func init() {
	commands = []command{
		{`\tables`, []string{`\dt`}, "", "list tables with their rows, size and time range", (*Shell).cmdTables},
		{`\d`, nil, "TABLE", "describe a table: columns, types, rows, time range", (*Shell).cmdDescribe},
		{`\format`, nil, "[table|csv|json|ndjson]", "show or set the output format", (*Shell).cmdFormat},
		{`\timing`, nil, "[on|off]", "toggle the server's timings under each result", (*Shell).cmdTiming},
		{`\x`, nil, "[on|off]", "toggle expanded rows (one line per column)", (*Shell).cmdExpanded},
		{`\coverage`, nil, "[MIN]", "show or set the minimum coverage in percent (0: any)", (*Shell).cmdCoverage},
		{`\timeout`, nil, "[DURATION]", "show or set the query timeout, e.g. 5s (0: server default)", (*Shell).cmdTimeout},
		{`\i`, nil, "FILE", "run the statements in FILE", (*Shell).cmdInclude},
		{`\o`, nil, "[FILE]", "send results to FILE; alone, back to the console", (*Shell).cmdOutput},
		{`\help`, []string{`\?`, `\h`}, "", "show this help", (*Shell).cmdHelp},
		{`\q`, []string{`\quit`}, "", "quit (also Ctrl-D)", func(*Shell, context.Context, string) error { return errQuit }},
	}
}

// command runs one `\`-command line. It returns errQuit for \q; other failures are
// reported and counted here.
func (s *Shell) command(ctx context.Context, line string) error {
	name, arg, _ := strings.Cut(line, " ")
	arg = strings.TrimSpace(arg)
	for _, c := range commands {
		if name == c.name || contains(c.aliases, name) {
			err := c.run(s, ctx, arg)
			if err != nil && err != errQuit {
				s.fail(err)
			}
			return err
		}
	}
	s.fail(fmt.Errorf("unknown command %s; \\help lists the commands", sanitize(name)))
	return nil
}

func contains(list []string, s string) bool {
	for _, l := range list {
		if l == s {
			return true
		}
	}
	return false
}

func (s *Shell) cmdHelp(context.Context, string) error {
	var b strings.Builder
	b.WriteString("SQL statements end with ';' and may span lines. Commands:\n")
	for _, c := range commands {
		name := c.name
		if c.args != "" {
			name += " " + c.args
		}
		fmt.Fprintf(&b, "  %-32s %s\n", name, c.help)
	}
	b.WriteString("Ctrl-C cancels the running query, Ctrl-R searches the history, Tab completes.\n")
	return s.page([]byte(b.String()))
}

// onOff parses the argument of a toggle: empty flips cur.
func onOff(arg string, cur bool) (bool, error) {
	switch strings.ToLower(arg) {
	case "":
		return !cur, nil
	case "on", "true", "1":
		return true, nil
	case "off", "false", "0":
		return false, nil
	}
	return cur, fmt.Errorf("cannot parse %q: want on or off", arg)
}

func onOffString(b bool) string {
	if b {
		return "on"
	}
	return "off"
}

func (s *Shell) cmdTiming(_ context.Context, arg string) error {
	v, err := onOff(arg, s.timing)
	if err != nil {
		return fmt.Errorf("\\timing: %w", err)
	}
	s.timing = v
	fmt.Fprintf(s.stdout, "Timing is %s.\n", onOffString(v))
	return nil
}

func (s *Shell) cmdExpanded(_ context.Context, arg string) error {
	v, err := onOff(arg, s.expanded)
	if err != nil {
		return fmt.Errorf("\\x: %w", err)
	}
	s.expanded = v
	fmt.Fprintf(s.stdout, "Expanded display is %s.\n", onOffString(v))
	return nil
}

func (s *Shell) cmdFormat(_ context.Context, arg string) error {
	if arg == "" {
		fmt.Fprintf(s.stdout, "Output format is %s.\n", s.format)
		return nil
	}
	if !validFormat(arg) {
		return fmt.Errorf("\\format: unknown format %q; want one of %s", arg, strings.Join(Formats, ", "))
	}
	s.format = arg
	fmt.Fprintf(s.stdout, "Output format is %s.\n", s.format)
	return nil
}

func (s *Shell) cmdCoverage(_ context.Context, arg string) error {
	if arg != "" {
		v, err := parseCoverage(strings.TrimSuffix(arg, "%"))
		if err != nil {
			return fmt.Errorf("\\coverage: %w", err)
		}
		s.minCoverage = v
	}
	if s.minCoverage == 0 {
		fmt.Fprintln(s.stdout, "Minimum coverage is off: partial answers of any coverage are shown.")
	} else {
		fmt.Fprintf(s.stdout, "Minimum coverage is %s%%: queries covering less fail.\n",
			strconv.FormatFloat(s.minCoverage, 'f', -1, 64))
	}
	return nil
}

// parseCoverage parses a percentage in [0, 100].
func parseCoverage(arg string) (float64, error) {
	v, err := strconv.ParseFloat(arg, 64)
	if err != nil || v < 0 || v > 100 {
		return 0, fmt.Errorf("cannot parse coverage %q: want a percentage from 0 to 100", arg)
	}
	return v, nil
}

func (s *Shell) cmdTimeout(_ context.Context, arg string) error {
	if arg != "" {
		d, err := parseTimeout(arg)
		if err != nil {
			return fmt.Errorf("\\timeout: %w", err)
		}
		s.timeout = d
	}
	if s.timeout == 0 {
		fmt.Fprintln(s.stdout, "Query timeout is the server's default.")
	} else {
		fmt.Fprintf(s.stdout, "Query timeout is %s.\n", s.timeout)
	}
	return nil
}

// parseTimeout parses a duration ("1.5s", "200ms") or a number of seconds.
func parseTimeout(arg string) (time.Duration, error) {
	d, err := time.ParseDuration(arg)
	if err != nil {
		sec, ferr := strconv.ParseFloat(arg, 64)
		if ferr != nil {
			return 0, fmt.Errorf("cannot parse timeout %q: want a duration such as 5s or 200ms", arg)
		}
		d = time.Duration(sec * float64(time.Second))
	}
	if d < 0 || d > 24*time.Hour {
		return 0, fmt.Errorf("timeout %s out of range: want 0 to 24h", arg)
	}
	return d, nil
}

func (s *Shell) cmdOutput(_ context.Context, arg string) error {
	path := unquote(arg)
	if err := s.setOutput(path); err != nil {
		return fmt.Errorf("\\o: %w", err)
	}
	if path != "" {
		fmt.Fprintf(s.stdout, "Results go to %s.\n", path)
	}
	return nil
}

func (s *Shell) cmdInclude(ctx context.Context, arg string) error {
	path := unquote(arg)
	if path == "" {
		return errors.New(`\i: missing file name`)
	}
	if s.depth >= maxIncludeBy {
		return fmt.Errorf(`\i %s: files nested more than %d deep`, path, maxIncludeBy)
	}
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf(`\i: cannot open script: %w`, err)
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.Size() > maxScriptBytes {
		return fmt.Errorf(`\i %s: file is %s, more than the %s a script may have`, path,
			humanBytes(fi.Size()), humanBytes(maxScriptBytes))
	}
	// The included file is a script of its own: it must not continue or end the
	// statement being typed around it.
	saved := s.split
	s.split = splitter{}
	s.depth++
	defer func() {
		s.depth--
		s.split = saved
	}()
	if err := s.Loop(ctx, newReaderLines(f)); err != nil {
		return fmt.Errorf(`\i %s: %w`, path, err)
	}
	return nil
}

// unquote strips one pair of surrounding quotes from a file argument.
func unquote(arg string) string {
	if len(arg) >= 2 && (arg[0] == '"' || arg[0] == '\'') && arg[len(arg)-1] == arg[0] {
		return arg[1 : len(arg)-1]
	}
	return arg
}

func (s *Shell) cmdTables(ctx context.Context, arg string) error {
	if arg != "" {
		return s.cmdDescribe(ctx, arg)
	}
	ctx, cancel := s.queryContext(ctx)
	defer cancel()
	ts, err := s.client.Tables(ctx)
	if err != nil {
		return fmt.Errorf("cannot list tables: %w", err)
	}
	s.schema.store(ts)
	if len(ts) == 0 {
		fmt.Fprintln(s.stdout, "No tables yet: a table appears with its first write.")
		return nil
	}
	sort.Slice(ts, func(i, j int) bool { return ts[i].Name < ts[j].Name })
	res := &api.QueryResult{Columns: []api.ResultColumn{
		{Name: "table", Type: "string"}, {Name: "rows", Type: "int"}, {Name: "size", Type: "string"},
		{Name: "columns", Type: "int"}, {Name: "oldest", Type: "string"}, {Name: "newest", Type: "string"},
	}}
	for _, t := range ts {
		oldest, newest := timeRange(t)
		res.Rows = append(res.Rows, []any{t.Name, t.Rows, humanBytes(t.Bytes), int64(len(t.Columns)), oldest, newest})
	}
	var b bytes.Buffer
	renderTable(&b, res)
	fmt.Fprintf(&b, "%d tables\n", len(ts))
	return s.page(b.Bytes())
}

// timeRange formats a table's oldest and newest row time, or blanks when it has no
// rows.
func timeRange(t api.TableStats) (string, string) {
	if t.Rows == 0 {
		return "", ""
	}
	return formatTime(t.MinTime), formatTime(t.MaxTime)
}

func (s *Shell) cmdDescribe(ctx context.Context, arg string) error {
	name := unquote(arg)
	if name == "" {
		return s.cmdTables(ctx, "")
	}
	ctx, cancel := s.queryContext(ctx)
	defer cancel()
	t, err := s.client.Table(ctx, name)
	if err != nil {
		return fmt.Errorf("cannot describe table %q: %w", name, err)
	}
	s.schema.put(t.Name, t.Columns)
	var b bytes.Buffer
	fmt.Fprintf(&b, "Table %s · %s rows · %d blocks · %s\n", sanitize(t.Name), formatInt(t.Rows), t.Blocks, humanBytes(t.Bytes))
	if oldest, newest := timeRange(*t); oldest != "" {
		fmt.Fprintf(&b, "Time range %s … %s UTC\n", oldest, newest)
	}
	res := &api.QueryResult{Columns: []api.ResultColumn{{Name: "column", Type: "string"}, {Name: "type", Type: "string"}}}
	for _, c := range t.Columns {
		res.Rows = append(res.Rows, []any{c.Name, c.Type})
	}
	renderTable(&b, res)
	return s.page(b.Bytes())
}
