package shell

import (
	"bytes"
	"context"
	"encoding/csv"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/reef-db/reef/api"
)

func decodeResultForTest(s string) (*api.QueryResult, error) {
	return api.DecodeQueryResult(strings.NewReader(s))
}

func TestMain(m *testing.M) {
	if ptyChild() {
		return
	}
	goleak.VerifyTestMain(m)
}

func TestCompleteColumnsOfFromTable(t *testing.T) {
	f := newFakeAggregator(t)
	ts := newTestShell(t, f, true)
	type want struct {
		head  string
		cands []string
		tail  string
	}
	check := func(pending, line string, pos int, w want) {
		t.Helper()
		ts.split.reset()
		ts.split.feed(pending)
		head, cands, tail := ts.Complete(line, pos)
		if head != w.head || !reflect.DeepEqual(cands, w.cands) || tail != w.tail {
			t.Errorf("Complete(%q after %q, %d) = %q %q %q, want %q %q %q",
				line, pending, pos, head, cands, tail, w.head, w.cands, w.tail)
		}
	}
	// Columns of the FROM table, which comes after the cursor.
	check("", "SELECT ho FROM events", 9, want{"SELECT ", []string{"host"}, " FROM events"})
	// Dotted names; the table named in a FROM on an earlier line.
	check("SELECT count(*)\nFROM events\n", "WHERE http.s", 12, want{"WHERE ", []string{"http.status"}, ""})
	check("", "SELECT * FROM events WHERE sta", 30, want{"SELECT * FROM events WHERE ", []string{"status"}, ""})
	// Another table, another set of columns.
	check("", "SELECT le FROM logs", 9, want{"SELECT ", []string{"level"}, " FROM logs"})
	// After FROM: table names.
	check("", "SELECT * FROM ", 14, want{"SELECT * FROM ", []string{"events", "logs"}, ""})
	check("", "select * from e", 15, want{"select * from ", []string{"events"}, ""})
	// Functions and keywords, keywords in the case they are typed in.
	check("", "SELECT p9", 9, want{"SELECT ", []string{"p90(", "p95(", "p99(", "p999("}, ""})
	check("", "sel", 3, want{"", []string{"select"}, ""})
	check("", "SEL", 3, want{"", []string{"SELECT"}, ""})
	check("", "SELECT count(*) FROM events GRO", 31, want{"SELECT count(*) FROM events ", []string{"GROUP"}, ""})
	// Columns come before functions and keywords with the same prefix.
	check("", "SELECT t FROM events", 8, want{"SELECT ", []string{"time", "tags", "time(", "true"}, " FROM events"})
	// An unknown table has no columns, and does not break completion.
	check("", "SELECT ho FROM nope", 9, want{"SELECT ", nil, " FROM nope"})
	// Commands and their arguments.
	check("", `\fo`, 3, want{`\`, []string{"format"}, ""})
	check("", `\d ev`, 5, want{`\d `, []string{"events"}, ""})
	check("", `\format c`, 9, want{`\format `, []string{"csv"}, ""})
	check("", `\timing o`, 9, want{`\timing `, []string{"on", "off"}, ""})
}

func TestSchemaCache(t *testing.T) {
	f := newFakeAggregator(t)
	ts := newTestShell(t, f, true)
	now := time.Unix(1000, 0)
	ts.schema.now = func() time.Time { return now }
	get := func() int {
		f.mu.Lock()
		defer f.mu.Unlock()
		return f.tableGet
	}
	ctx := context.Background()
	ts.schema.columns(ctx, "logs")
	ts.schema.columns(ctx, "logs")
	if n := get(); n != 1 {
		t.Errorf("two lookups within the TTL made %d requests, want 1", n)
	}
	now = now.Add(schemaTTL + time.Second)
	ts.schema.columns(ctx, "logs")
	if n := get(); n != 2 {
		t.Errorf("lookup after the TTL made %d requests in all, want 2", n)
	}
	// Bounded: filling past the limit evicts.
	for i := range maxCachedSchemas + 10 {
		ts.schema.put(strings.Repeat("t", 1+i%50)+string(rune('a'+i%26))+string(rune('a'+i/26)), nil)
	}
	if n := len(ts.schema.cols); n > maxCachedSchemas {
		t.Errorf("cache holds %d schemas, limit %d", n, maxCachedSchemas)
	}
}

func TestDescribe(t *testing.T) {
	f := newFakeAggregator(t)
	ts := newTestShell(t, f, true)
	ts.run(t, `\d events`)
	want := `Table events · 1,234,567 rows · 19 blocks · 48 MiB
Time range 2023-11-14 22:13:20 … 2023-11-15 22:13:19 UTC
 column      | type
-------------+--------
 time        | int
 host        | string
 http.status | int
 latency_ms  | float
 tags        | set
 status      | string
`
	want += "\n" // at the end of the session
	if got := ts.stdout.String(); got != want {
		t.Errorf("\\d events printed\n%s\nwant\n%s", got, want)
	}
	if ts.stderr.Len() != 0 || ts.Failed() != 0 {
		t.Errorf("unexpected errors: %s", ts.stderr)
	}

	ts.stdout.Reset()
	ts.run(t, `\d nope`)
	if !strings.Contains(ts.stderr.String(), `cannot describe table "nope": no table nope`) || ts.Failed() != 1 {
		t.Errorf("\\d nope: stderr %q, %d failed", ts.stderr, ts.Failed())
	}
}

func TestTablesCommand(t *testing.T) {
	f := newFakeAggregator(t)
	ts := newTestShell(t, f, true)
	ts.run(t, `\tables`)
	want := ` table  |      rows | size   | columns | oldest              | newest
--------+-----------+--------+---------+---------------------+---------------------
 events | 1,234,567 | 48 MiB |       6 | 2023-11-14 22:13:20 | 2023-11-15 22:13:19
 logs   |        12 | 4 KiB  |       3 | 2023-11-14 22:13:20 | 2023-11-14 22:15:00
2 tables
`
	want += "\n" // at the end of the session
	if got := ts.stdout.String(); got != want {
		t.Errorf("\\tables printed\n%s\nwant\n%s", got, want)
	}
}

func TestGroupByTable(t *testing.T) {
	f := newFakeAggregator(t)
	ts := newTestShell(t, f, true)
	ts.run(t, "SELECT host, count(*), avg(latency_ms)", "FROM events GROUP BY host;")
	out := ts.stdout.String()
	wantTable := ` host          |     count |      avg
---------------+-----------+----------
 web-1         | 1,234,567 |    12.50
 web-2         |        98 |     0.25
 db, "primary" |         3 | 1,000.00
`
	if !strings.HasPrefix(out, wantTable) {
		t.Errorf("table:\n%s\nwant prefix\n%s", out, wantTable)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	last := lines[len(lines)-1]
	if !strings.HasPrefix(last, "3 rows · coverage 100% (8/8 leaves, 41.2M rows) · ") || !strings.HasSuffix(last, " ms") {
		t.Errorf("summary line = %q", last)
	}
	if got := f.lastRequest().SQL; got != "SELECT host, count(*), avg(latency_ms)\nFROM events GROUP BY host" {
		t.Errorf("sent SQL %q", got)
	}
}

func TestPartialCoverageLine(t *testing.T) {
	f := newFakeAggregator(t)
	ts := newTestShell(t, f, true)
	ts.color = true // as on a terminal
	ts.run(t, "SELECT host, count(*) FROM partial GROUP BY host;")
	out := ts.stdout.String()
	want := "\x1b[1;33mPARTIAL: 3 rows · coverage 87.5% (7/8 leaves, 41.2M rows) · "
	if !strings.Contains(out, want) {
		t.Errorf("output lacks the highlighted coverage line %q:\n%q", want, out)
	}
	if !strings.Contains(out, "\n  leaf-7: context deadline exceeded\n") {
		t.Errorf("output lacks the leaf error:\n%s", out)
	}
	if ts.Failed() != 0 {
		t.Errorf("a partial answer counted as a failure")
	}

	// Not on a terminal: no escape sequences, still marked.
	ts2 := newTestShell(t, f, false)
	ts2.run(t, "SELECT host, count(*) FROM partial GROUP BY host;")
	if out := ts2.stdout.String(); strings.Contains(out, "\x1b") || !strings.Contains(out, "PARTIAL: 3 rows · coverage 87.5%") {
		t.Errorf("plain output:\n%q", out)
	}
}

func TestSyntaxErrorCaret(t *testing.T) {
	f := newFakeAggregator(t)
	cases := []struct {
		name  string
		lines []string
		want  string
	}{
		{"one line", []string{"SELECT count( FROM events;"},
			"ERROR: syntax error: unexpected token\n" +
				"  SELECT count( FROM events\n" +
				"                ^\n"},
		{"second line", []string{"SELECT count(*)", "FROM events", "  WHER host = 'a';"},
			"ERROR: syntax error: unexpected token\n" +
				"LINE 3:   WHER host = 'a'\n" +
				"               ^\n"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ts := newTestShell(t, f, true)
			ts.run(t, tc.lines...)
			if got := ts.stderr.String(); got != tc.want {
				t.Errorf("stderr:\n%s\nwant:\n%s", got, tc.want)
			}
			if ts.Failed() != 1 {
				t.Errorf("Failed() = %d, want 1", ts.Failed())
			}
		})
	}
}

func TestCommandCSV(t *testing.T) {
	f := newFakeAggregator(t)
	var stdout, stderr bytes.Buffer
	code := Run(context.Background(), Options{
		Command: "SELECT host, count(*), avg(latency_ms) FROM events GROUP BY host",
		Format:  FormatCSV, Client: f.client(t), Stdout: &stdout, Stderr: &stderr,
		Timeout: 1500 * time.Millisecond, MinCoverage: 90,
	})
	if code != 0 {
		t.Fatalf("exit status %d, stderr %s", code, &stderr)
	}
	recs, err := csv.NewReader(&stdout).ReadAll()
	if err != nil {
		t.Fatalf("output is not CSV: %v\n%s", err, &stdout)
	}
	want := [][]string{
		{"host", "count", "avg"},
		{"web-1", "1234567", "12.5"},
		{"web-2", "98", "0.25"},
		{`db, "primary"`, "3", "1000"},
	}
	if !reflect.DeepEqual(recs, want) {
		t.Errorf("CSV = %q, want %q", recs, want)
	}
	if stderr.Len() != 0 {
		t.Errorf("stderr = %q, want nothing for a complete answer", &stderr)
	}
	if req := f.lastRequest(); req.TimeoutMS != 1500 || req.MinCoverage != 90 {
		t.Errorf("request %+v lacks the timeout and min coverage", req)
	}
}

func TestExitStatus(t *testing.T) {
	f := newFakeAggregator(t)
	cases := []struct {
		name    string
		opts    Options
		code    int
		queries int
		stderr  string
	}{
		{"error in -c", Options{Command: "SELECT * FROM nope"}, 1, 1, `ERROR: no table "nope"`},
		{"several statements in -c", Options{Command: "SELECT 1 FROM events; SELECT 2 FROM events;"}, 0, 2, ""},
		{"command in -c", Options{Command: `\tables`}, 0, 0, ""},
		{"unknown command", Options{Command: `\frobnicate`}, 1, 0, `unknown command \frobnicate`},
		{"stdin script, last statement without ;", Options{Stdin: strings.NewReader(
			"-- report\nSELECT 1 FROM events;\n\nSELECT 2\n  FROM events")}, 0, 2, ""},
		{"stdin script with an error continues", Options{Stdin: strings.NewReader(
			"SELECT * FROM nope;\nSELECT 1 FROM events;\n")}, 1, 2, `no table "nope"`},
		{"bad format", Options{Format: "xml", Command: "SELECT 1"}, 2, 0, `unknown format "xml"`},
		{"bad coverage", Options{MinCoverage: 101, Command: "SELECT 1"}, 2, 0, "out of range"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := f.sqlCount()
			var stdout, stderr bytes.Buffer
			o := tc.opts
			o.Client, o.Stdout, o.Stderr = f.client(t), &stdout, &stderr
			if code := Run(context.Background(), o); code != tc.code {
				t.Errorf("exit status %d, want %d (stderr %s)", code, tc.code, &stderr)
			}
			if n := f.sqlCount() - before; n != tc.queries {
				t.Errorf("%d queries sent, want %d", n, tc.queries)
			}
			if tc.stderr == "" && stderr.Len() > 0 || !strings.Contains(stderr.String(), tc.stderr) {
				t.Errorf("stderr = %q, want %q", &stderr, tc.stderr)
			}
		})
	}
}

func TestInterruptAbortsSlowQuery(t *testing.T) {
	f := newFakeAggregator(t)
	ts := newTestShell(t, f, true)
	go func() {
		<-f.slowStarted
		ts.Interrupt() // what Ctrl-C does while a query runs
	}()
	ts.run(t, "SELECT count(*) FROM slow;", "SELECT host, count(*) FROM events GROUP BY host;")
	select {
	case <-f.slowAborted:
	case <-time.After(10 * time.Second):
		t.Fatal("the server never saw the slow query cancelled")
	}
	if got := ts.stderr.String(); got != "ERROR: query canceled\n" {
		t.Errorf("stderr = %q", got)
	}
	// The shell went on with the next statement.
	if !strings.Contains(ts.stdout.String(), "3 rows · coverage 100%") {
		t.Errorf("the statement after the cancelled one did not run:\n%s", ts.stdout)
	}
}

func TestContextCancelAbortsRun(t *testing.T) {
	f := newFakeAggregator(t)
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		<-f.slowStarted
		cancel()
	}()
	var stdout, stderr bytes.Buffer
	code := Run(ctx, Options{Command: "SELECT 1 FROM slow; SELECT 2 FROM events", Client: f.client(t), Stdout: &stdout, Stderr: &stderr})
	if code == 0 {
		t.Errorf("exit status 0 after cancel")
	}
	select {
	case <-f.slowAborted:
	case <-time.After(10 * time.Second):
		t.Fatal("the server never saw the query cancelled")
	}
	if n := f.sqlCount(); n != 1 {
		t.Errorf("%d queries sent, want 1: nothing runs after the cancel", n)
	}
}

func TestCtrlCAtPromptClearsInput(t *testing.T) {
	f := newFakeAggregator(t)
	ts := newTestShell(t, f, true)
	lr := ts.run(t, "SELECT host", ctrlC, "SELECT 1 FROM events;")
	if got := f.lastRequest().SQL; got != "SELECT 1 FROM events" {
		t.Errorf("sent %q: the interrupted input was not dropped", got)
	}
	wantPrompts := []string{promptFirst, promptMore, promptFirst, promptFirst}
	if !reflect.DeepEqual(lr.prompts, wantPrompts) {
		t.Errorf("prompts %q, want %q", lr.prompts, wantPrompts)
	}
	if !reflect.DeepEqual(lr.history, []string{"SELECT 1 FROM events;"}) {
		t.Errorf("history %q", lr.history)
	}
}

func TestSettingsCommands(t *testing.T) {
	f := newFakeAggregator(t)
	ts := newTestShell(t, f, true)
	ts.run(t, `\timeout 2.5s`, `\coverage 75`, "SELECT 1 FROM events;")
	if req := f.lastRequest(); req.TimeoutMS != 2500 || req.MinCoverage != 75 {
		t.Errorf("request %+v, want timeout 2500 ms and min coverage 75", req)
	}
	ts.run(t, `\timeout 0`, `\coverage 0`, "SELECT 1 FROM events;")
	if req := f.lastRequest(); req.TimeoutMS != 0 || req.MinCoverage != 0 {
		t.Errorf("request %+v, want server defaults", req)
	}
	if ts.Failed() != 0 {
		t.Fatalf("unexpected failures: %s", ts.stderr)
	}

	bad := []string{`\timeout soon`, `\coverage 120`, `\format xml`, `\timing maybe`, `\i`, `\nope`}
	for _, cmd := range bad {
		ts.stderr.Reset()
		before := ts.Failed()
		ts.run(t, cmd)
		if ts.Failed() != before+1 || !strings.HasPrefix(ts.stderr.String(), "ERROR: ") {
			t.Errorf("%s: stderr %q, failures %d→%d", cmd, ts.stderr, before, ts.Failed())
		}
	}
}

func TestTimingAndExpanded(t *testing.T) {
	f := newFakeAggregator(t)
	ts := newTestShell(t, f, true)
	ts.run(t, `\timing`, `\x on`, "SELECT host, count(*), avg(x) FROM events GROUP BY host;")
	out := ts.stdout.String()
	for _, want := range []string{
		"Timing is on.\n",
		"Expanded display is on.\n",
		"-[ RECORD 1 ]",
		"host  | web-1\ncount | 1,234,567\navg   | 12.50\n",
		"-[ RECORD 3 ]",
		"timing: parse 0.1 ms · scan 20 ms · merge 0.4 ms · server 21 ms · round trip ",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

func TestFormatsInShell(t *testing.T) {
	f := newFakeAggregator(t)
	cases := []struct {
		format string
		want   string
	}{
		{FormatNDJSON, `{"host":"web-1","count":1234567,"avg":12.5}` + "\n" +
			`{"host":"web-2","count":98,"avg":0.25}` + "\n" +
			`{"host":"db, \"primary\"","count":3,"avg":1000}` + "\n"},
		{FormatCSV, "host,count,avg\nweb-1,1234567,12.5\nweb-2,98,0.25\n\"db, \"\"primary\"\"\",3,1000\n"},
	}
	for _, tc := range cases {
		ts := newTestShell(t, f, true)
		ts.run(t, `\format `+tc.format, "SELECT 1 FROM events;")
		got := strings.TrimPrefix(ts.stdout.String(), "Output format is "+tc.format+".\n")
		got = strings.TrimSuffix(got, "\n") // the newline at the end of the session
		if got != tc.want {
			t.Errorf("%s output:\n%s\nwant:\n%s", tc.format, got, tc.want)
		}
		// The summary went to the message stream, not into the data.
		if !strings.HasPrefix(ts.stderr.String(), "3 rows · coverage 100%") {
			t.Errorf("%s: stderr %q", tc.format, ts.stderr)
		}
	}

	ts := newTestShell(t, f, false)
	ts.run(t, `\format json`, "SELECT 1 FROM events;")
	res, err := decodeResultForTest(strings.TrimPrefix(ts.stdout.String(), "Output format is json.\n"))
	if err != nil {
		t.Fatalf("json output does not decode: %v\n%s", err, ts.stdout)
	}
	if len(res.Rows) != 3 || res.Coverage.LeavesTotal != 8 || res.Rows[0][1] != int64(1234567) {
		t.Errorf("json output decoded to %+v", res)
	}
}

func TestOutputAndIncludeFiles(t *testing.T) {
	f := newFakeAggregator(t)
	dir := t.TempDir()
	script := filepath.Join(dir, "q.sql")
	if err := os.WriteFile(script, []byte("SELECT 1\nFROM events;\nSELECT count(*) FROM events WHERE time > now() - 1h GROUP BY time(1m)"), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out.txt")
	ts := newTestShell(t, f, true)
	// A statement typed before \i is neither run nor ended by the file.
	ts.run(t, `\o `+out, "SELECT partial", `\i `+script, "FROM events;", `\o`, "SELECT 4 FROM events;")
	if n := f.sqlCount(); n != 4 {
		t.Fatalf("%d queries sent, want 4", n)
	}
	if got := f.requests[2].SQL; got != "SELECT partial\nFROM events" {
		t.Errorf("statement around \\i sent as %q", got)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	file := string(b)
	if strings.Count(file, "1,234,567") != 1 || !strings.Contains(file, " 2023-11-14 22:13:20 |     1\n") ||
		!strings.Contains(file, "▁▂▄█") || !strings.Contains(file, "web-3") {
		t.Errorf("output file:\n%s", file)
	}
	// Summaries of results sent to a file show on the console.
	if strings.Contains(file, "coverage") || strings.Count(ts.stderr.String(), "coverage") != 3 {
		t.Errorf("summaries misplaced: file\n%s\nstderr\n%s", file, ts.stderr)
	}
	if !strings.Contains(ts.stdout.String(), "3 rows · coverage 100%") {
		t.Errorf("results after \\o did not come back to the console:\n%s", ts.stdout)
	}
}

func TestIncludeNestingBounded(t *testing.T) {
	f := newFakeAggregator(t)
	dir := t.TempDir()
	self := filepath.Join(dir, "self.sql")
	if err := os.WriteFile(self, []byte(`\i `+self+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ts := newTestShell(t, f, false)
	ts.run(t, `\i `+self)
	if !strings.Contains(ts.stderr.String(), "nested more than 16 deep") {
		t.Errorf("stderr = %q", ts.stderr)
	}
}

func TestTimeSeriesSparkline(t *testing.T) {
	f := newFakeAggregator(t)
	ts := newTestShell(t, f, true)
	ts.run(t, "SELECT time(1m), count(*) FROM events GROUP BY time(1m);")
	want := ` time                | count
---------------------+-------
 2023-11-14 22:13:20 |     1
 2023-11-14 22:14:20 |     2
 2023-11-14 22:15:20 |     4
 2023-11-14 22:16:20 |     8
▁▂▄█  count min 1 · max 8
4 rows · coverage 100% (1/1 leaves, 15 rows) · `
	if got := ts.stdout.String(); !strings.HasPrefix(got, want) {
		t.Errorf("output:\n%s\nwant prefix:\n%s", got, want)
	}
}

func TestEmptyResult(t *testing.T) {
	f := newFakeAggregator(t)
	ts := newTestShell(t, f, true)
	ts.run(t, "SELECT n FROM empty;")
	if got := ts.stdout.String(); !strings.HasPrefix(got, "(no rows)\n0 rows · coverage 100% (1/1 leaves, 0 rows) · ") {
		t.Errorf("output %q", got)
	}
}

func TestStatementTooLong(t *testing.T) {
	f := newFakeAggregator(t)
	ts := newTestShell(t, f, false)
	long := "SELECT '" + strings.Repeat("x", MaxStatementBytes)
	ts.run(t, "SELECT 1,", long, "SELECT 2 FROM events;")
	if !strings.Contains(ts.stderr.String(), "statement longer than") {
		t.Errorf("stderr = %q", ts.stderr)
	}
	// The statement the long line was part of was dropped; the next one runs.
	if f.sqlCount() != 1 || f.lastRequest().SQL != "SELECT 2 FROM events" {
		t.Errorf("sent %d queries, the last %q", f.sqlCount(), f.lastRequest().SQL)
	}
}
