// Command duckbench is the DuckDB side of `reef bench queries`: it loads the standard
// dataset (testbench/benchq/spec) into an in-memory DuckDB, reports the memory DuckDB
// holds it in, runs the benchmark queries warm several times, and prints a
// spec.Engine report as JSON on stdout. Progress goes to stderr.
//
// With --serve it loads the dataset, prints the spec.Engine header (load and memory,
// no queries) as one JSON line, and then answers commands on stdin, one per line, each
// with one JSON line (a spec.QueryRun) on stdout:
//
//	run Q2       run Q2 once: runs_ms holds its time, columns and rows its answer
//	bounds Q3    the answer of Q3's exact-bounds query, in bounds (untimed)
//
// An unknown command or a failed query answers with error set. EOF ends the program.
// `reef bench queries` uses this mode to run reef's and DuckDB's queries in turns, so
// that whatever else the machine does at the time slows both alike.
//
// It is its own Go module so that reef's main module never depends on DuckDB (a cgo
// library). It owns nothing but this measurement: the dataset, the queries and the
// comparison rules live in package spec, shared with reef's side.
//
//	cd testbench/duckbench && go run . --rows 10000000 --runs 5 > duckdb.json
package main

import (
	"bufio"
	"context"
	"database/sql"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math/big"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	_ "github.com/duckdb/duckdb-go/v2"

	"github.com/reef-db/reef/testbench"
	"github.com/reef-db/reef/testbench/benchq/spec"
)

// columns are the NDJSON fields with the types DuckDB's auto-detection gives them,
// spelled out so that a sample of unusual rows cannot change them.
const columns = `{'time': 'BIGINT', 'service': 'VARCHAR', 'host': 'VARCHAR', 'endpoint': 'VARCHAR', 'status': 'BIGINT', 'latency_ms': 'DOUBLE', 'bytes': 'BIGINT'}`

type options struct {
	rows     int
	runs     int
	threads  int
	ndjson   string
	tmpDir   string
	keep     bool
	loadOnly bool
	serve    bool
}

func main() {
	var o options
	flag.IntVar(&o.rows, "rows", spec.DefaultRows, "rows of the standard dataset")
	flag.IntVar(&o.runs, "runs", 5, "timed runs per query (after one warm-up run)")
	flag.IntVar(&o.threads, "threads", 0, "DuckDB threads (0: DuckDB's default, one per core)")
	flag.StringVar(&o.ndjson, "ndjson", "", "read the dataset from this NDJSON file (as `reef gen` writes it) instead of generating it")
	flag.StringVar(&o.tmpDir, "tmp", "", "directory for the generated NDJSON file (default: the system's)")
	flag.BoolVar(&o.keep, "keep-ndjson", false, "keep the generated NDJSON file and print its path")
	flag.BoolVar(&o.serve, "serve", false, "after loading, answer run/bounds commands on stdin (see the package comment)")
	flag.BoolVar(&o.loadOnly, "load-only", false, "time the read_json load and report memory, without running the queries (for reef bench ingest)")
	flag.Parse()
	if o.rows < 0 || o.runs < 1 || o.threads < 0 {
		fmt.Fprintln(os.Stderr, "duckbench: --rows must be >= 0, --runs >= 1, --threads >= 0")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	db, e, err := load(ctx, o)
	if err == nil {
		defer db.Close()
		if o.serve {
			err = serve(ctx, db, e, os.Stdin, os.Stdout)
		} else {
			runs := o.runs
			if o.loadOnly {
				runs = 0
			}
			err = report(ctx, db, e, runs, os.Stdout)
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "duckbench:", err)
		os.Exit(1)
	}
}

// report measures every query (none when runs is 0) and prints the whole report.
func report(ctx context.Context, db *sql.DB, e *spec.Engine, runs int, out *os.File) error {
	for _, q := range spec.Queries(spec.EndUnix) {
		if runs > 0 {
			e.Queries = append(e.Queries, measure(ctx, db, q, runs))
		}
	}
	w := bufio.NewWriter(out)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(e); err != nil {
		return fmt.Errorf("cannot write the report: %w", err)
	}
	if err := w.Flush(); err != nil {
		return fmt.Errorf("cannot write the report: %w", err)
	}
	return nil
}

// serve prints e (without queries) and answers commands until in ends.
func serve(ctx context.Context, db *sql.DB, e *spec.Engine, in io.Reader, out io.Writer) error {
	enc := json.NewEncoder(out) // one value per line
	if err := enc.Encode(e); err != nil {
		return fmt.Errorf("cannot write the header: %w", err)
	}
	queries := map[string]spec.Query{}
	for _, q := range spec.Queries(spec.EndUnix) {
		queries[q.ID] = q
	}
	sc := bufio.NewScanner(in)
	for sc.Scan() {
		verb, id, _ := strings.Cut(strings.TrimSpace(sc.Text()), " ")
		r := spec.QueryRun{ID: id}
		q, ok := queries[id]
		switch {
		case !ok:
			r.Error = fmt.Sprintf("no query %q", id)
		case verb == "run":
			r.SQL = q.DuckDB
			t0 := time.Now()
			cols, rows, err := query(ctx, db, q.DuckDB)
			if err != nil {
				r.Error = err.Error()
				break
			}
			r.RunsMS = []float64{spec.Millis(time.Since(t0))}
			r.Columns, r.Rows = cols, rows
		case verb == "bounds" && q.DuckDBBounds != "":
			r.SQL = q.DuckDBBounds
			_, rows, err := query(ctx, db, q.DuckDBBounds)
			if err != nil {
				r.Error = err.Error()
				break
			}
			r.Bounds = rows
		default:
			r.Error = fmt.Sprintf("unknown command %q", sc.Text())
		}
		if err := enc.Encode(&r); err != nil {
			return fmt.Errorf("cannot answer %q: %w", sc.Text(), err)
		}
	}
	return sc.Err()
}

// load opens an in-memory DuckDB and loads the dataset into it.
func load(ctx context.Context, o options) (*sql.DB, *spec.Engine, error) {
	path := o.ndjson
	if path == "" {
		var err error
		if path, err = generate(o); err != nil {
			return nil, nil, err
		}
		if o.keep {
			fmt.Fprintf(os.Stderr, "kept %s\n", path)
		} else {
			defer os.Remove(path) // the table holds the data once loaded
		}
	}

	db, err := sql.Open("duckdb", "")
	if err != nil {
		return nil, nil, fmt.Errorf("cannot open an in-memory DuckDB: %w", err)
	}
	ok := false
	defer func() {
		if !ok {
			db.Close()
		}
	}()
	db.SetMaxOpenConns(1) // one connection: one in-memory database, one session
	if o.threads > 0 {
		if _, err := db.ExecContext(ctx, fmt.Sprintf("SET threads = %d", o.threads)); err != nil {
			return nil, nil, fmt.Errorf("cannot set DuckDB threads: %w", err)
		}
	}
	e := &spec.Engine{Engine: "duckdb"}
	var threads string
	if err := db.QueryRowContext(ctx, "SELECT version(), current_setting('threads')").Scan(&e.Version, &threads); err != nil {
		return nil, nil, fmt.Errorf("cannot ask DuckDB its version: %w", err)
	}
	e.Setup = fmt.Sprintf("in-memory, %s threads", threads)

	fmt.Fprintf(os.Stderr, "loading %s into DuckDB with read_json …\n", path)
	t0 := time.Now()
	load := fmt.Sprintf("CREATE TABLE %s AS SELECT * FROM read_json(%s, format = 'newline_delimited', columns = %s)",
		spec.Table, quote(path), columns)
	if _, err := db.ExecContext(ctx, load); err != nil {
		return nil, nil, fmt.Errorf("cannot load %s: %w", path, err)
	}
	e.LoadMS = spec.Millis(time.Since(t0))
	if err := db.QueryRowContext(ctx, "SELECT count(*) FROM "+spec.Table).Scan(&e.Rows); err != nil {
		return nil, nil, fmt.Errorf("cannot count the loaded rows: %w", err)
	}
	if st, err := os.Stat(path); err == nil {
		e.Load = fmt.Sprintf("CREATE TABLE AS SELECT * FROM read_json of a %.0f MB NDJSON file", float64(st.Size())/1e6)
	}
	fmt.Fprintf(os.Stderr, "loaded %d rows in %.1fs (%.0f rows/s)\n", e.Rows, e.LoadMS/1000, float64(e.Rows)/(e.LoadMS/1000))
	if err := memory(ctx, db, e); err != nil {
		return nil, nil, err
	}
	e.RSSBytes = spec.RSS(0)
	ok = true
	return db, e, nil
}

// generate writes the standard dataset to a temporary NDJSON file.
func generate(o options) (string, error) {
	f, err := os.CreateTemp(o.tmpDir, "duckbench-*.ndjson")
	if err != nil {
		return "", fmt.Errorf("cannot create the NDJSON file: %w", err)
	}
	fmt.Fprintf(os.Stderr, "generating %d rows into %s …\n", o.rows, f.Name())
	t0 := time.Now()
	n, err := testbench.WriteNDJSON(f, spec.Dataset(o.rows))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(f.Name())
		return "", fmt.Errorf("cannot generate the dataset: %w", err)
	}
	fmt.Fprintf(os.Stderr, "generated %.0f MB in %.1fs\n", float64(n)/1e6, time.Since(t0).Seconds())
	return f.Name(), nil
}

// memory fills in the memory DuckDB's buffer manager holds for the table
// (duckdb_memory(), tag IN_MEMORY_TABLE), falling back to its total.
func memory(ctx context.Context, db *sql.DB, e *spec.Engine) error {
	rows, err := db.QueryContext(ctx, "SELECT tag, memory_usage_bytes FROM duckdb_memory()")
	if err != nil {
		return fmt.Errorf("cannot read duckdb_memory(): %w", err)
	}
	defer rows.Close()
	var table, total int64
	var tags []string
	for rows.Next() {
		var tag string
		var n int64
		if err := rows.Scan(&tag, &n); err != nil {
			return fmt.Errorf("cannot read duckdb_memory(): %w", err)
		}
		total += n
		if n > 0 {
			tags = append(tags, fmt.Sprintf("%s %d", tag, n))
		}
		if tag == "IN_MEMORY_TABLE" {
			table = n
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("cannot read duckdb_memory(): %w", err)
	}
	fmt.Fprintf(os.Stderr, "duckdb_memory(): %s\n", strings.Join(tags, ", "))
	e.MemoryBytes, e.Memory = table, "duckdb_memory() tag IN_MEMORY_TABLE"
	if table == 0 {
		e.MemoryBytes, e.Memory = total, "duckdb_memory(), all tags"
	}
	if e.Rows > 0 {
		e.BytesPerRow = float64(e.MemoryBytes) / float64(e.Rows)
	}
	return nil
}

// measure runs q once to warm up, then runs times timed; a failure is recorded in
// the result rather than stopping the benchmark.
func measure(ctx context.Context, db *sql.DB, q spec.Query, runs int) spec.QueryRun {
	r := spec.QueryRun{ID: q.ID, SQL: q.DuckDB}
	for i := 0; i <= runs; i++ {
		t0 := time.Now()
		cols, rows, err := query(ctx, db, q.DuckDB)
		d := time.Since(t0)
		if err != nil {
			r.Error = err.Error()
			fmt.Fprintf(os.Stderr, "%s: %v\n", q.ID, err)
			return r
		}
		if i > 0 { // run 0 is the warm-up
			r.RunsMS = append(r.RunsMS, spec.Millis(d))
		}
		r.Columns, r.Rows = cols, rows
	}
	r.MedianMS = spec.Median(r.RunsMS)
	if q.DuckDBBounds != "" {
		_, bounds, err := query(ctx, db, q.DuckDBBounds)
		if err != nil {
			r.Error = fmt.Sprintf("cannot compute exact bounds: %v", err)
		}
		r.Bounds = bounds
	}
	fmt.Fprintf(os.Stderr, "%s: median %.2f ms over %d runs, %d rows\n", q.ID, r.MedianMS, runs, len(r.Rows))
	return r
}

// query runs one statement and reads its whole answer.
func query(ctx context.Context, db *sql.DB, stmt string) ([]string, [][]any, error) {
	rows, err := db.QueryContext(ctx, stmt)
	if err != nil {
		return nil, nil, err
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return nil, nil, err
	}
	var out [][]any
	for rows.Next() {
		row := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range row {
			ptrs[i] = &row[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return nil, nil, err
		}
		for i, c := range row {
			row[i] = cell(c)
		}
		out = append(out, row)
	}
	return cols, out, rows.Err()
}

// cell turns a scanned DuckDB value into a JSON-friendly one: HUGEINT (a sum of
// BIGINTs) becomes int64 when it fits.
func cell(v any) any {
	switch v := v.(type) {
	case *big.Int:
		if v.IsInt64() {
			return v.Int64()
		}
		return v.String()
	case int32:
		return int64(v)
	case float32:
		return float64(v)
	case []byte:
		return string(v)
	}
	return v
}

func quote(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }
