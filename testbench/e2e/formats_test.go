package e2e

import (
	"bufio"
	"context"
	"encoding/csv"
	"encoding/json"
	"io"
	"testing"
	"time"

	"github.com/apache/arrow/go/v15/arrow/array"
	"github.com/apache/arrow/go/v15/arrow/ipc"

	"github.com/reef-db/reef/api"
	"github.com/reef-db/reef/testbench"
)

// TestOutputFormats: the same answer as JSON, CSV, NDJSON and an Arrow IPC stream.
func TestOutputFormats(t *testing.T) {
	c := startCluster(t, testbench.ClusterConfig{Leaves: 2})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	gen := testbench.GenConfig{Seed: 5, Rows: 5000, End: time.Unix(1_764_000_000, 0)}
	if _, err := testbench.Load(ctx, c.Client(), "events", gen, testbench.LoadOptions{}); err != nil {
		t.Fatal(err)
	}
	const q = "SELECT service, count(*) AS n, avg(latency_ms) AS lat FROM events GROUP BY service ORDER BY service LIMIT 4"
	ref, err := c.Client().SQL(ctx, api.QueryRequest{SQL: q})
	if err != nil {
		t.Fatal(err)
	}
	raw := func(format string) (io.ReadCloser, string) {
		t.Helper()
		body, ct, err := c.Client().SQLRaw(ctx, api.QueryRequest{SQL: q, Format: format})
		if err != nil {
			t.Fatalf("%s: %v", format, err)
		}
		return body, ct
	}

	body, _ := raw("csv")
	recs, err := csv.NewReader(body).ReadAll()
	body.Close()
	if err != nil || len(recs) != 5 || recs[0][0] != "service" || recs[0][1] != "n" || recs[1][0] != ref.Rows[0][0] {
		t.Fatalf("csv: %v %v", recs, err)
	}

	body, _ = raw("ndjson")
	sc := bufio.NewScanner(body)
	var lines []map[string]any
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("ndjson line %q: %v", sc.Text(), err)
		}
		lines = append(lines, m)
	}
	body.Close()
	if len(lines) != 4 || lines[0]["service"] != ref.Rows[0][0] || int64(lines[0]["n"].(float64)) != ref.Rows[0][1] {
		t.Fatalf("ndjson: %v, want first row %v", lines, ref.Rows[0])
	}

	body, ct := raw("arrow")
	defer body.Close()
	if ct != api.ContentTypeArrow {
		t.Errorf("arrow content type %q", ct)
	}
	rd, err := ipc.NewReader(body)
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Release()
	if !rd.Next() {
		t.Fatalf("arrow stream has no record: %v", rd.Err())
	}
	rec := rd.Record()
	if rec.NumRows() != 4 || rec.Schema().Field(1).Name != "n" {
		t.Fatalf("arrow record: %d rows, schema %v", rec.NumRows(), rec.Schema())
	}
	if got := rec.Column(0).(*array.String).Value(0); got != ref.Rows[0][0] {
		t.Errorf("arrow row 0 service %q, want %v", got, ref.Rows[0][0])
	}
	if got := rec.Column(1).(*array.Int64).Value(0); got != ref.Rows[0][1] {
		t.Errorf("arrow row 0 n %d, want %v", got, ref.Rows[0][1])
	}
}
