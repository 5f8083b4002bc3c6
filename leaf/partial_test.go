package leaf

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/reef-db/reef/api"
	"github.com/reef-db/reef/query/agg"
	"github.com/reef-db/reef/query/exec"
	"github.com/reef-db/reef/query/plan"
)

// query runs sql on the leaf through POST /v1/partial and finalizes the answer as
// the root aggregator would.
func (l *testLeaf) query(t *testing.T, sql string) (*agg.Result, *agg.Partial) {
	t.Helper()
	p, err := plan.FromSQL(sql, time.Now().Unix())
	if err != nil {
		t.Fatalf("plan %q: %v", sql, err)
	}
	part, err := l.c.Partial(context.Background(), api.PartialRequest{Plan: *p})
	if err != nil {
		t.Fatalf("partial %q: %v", sql, err)
	}
	res, err := agg.Finalize(p, part)
	if err != nil {
		t.Fatalf("finalize %q: %v", sql, err)
	}
	return res, part
}

// cells renders result rows as strings, for comparison.
func cells(res *agg.Result) [][]string {
	var out [][]string
	for _, row := range res.Rows {
		var r []string
		for _, v := range row {
			r = append(r, fmt.Sprint(v.Any()))
		}
		out = append(out, r)
	}
	return out
}

func TestPartial(t *testing.T) {
	l := newTestLeaf(t, testConfig())
	l.ingest(t, "web", strings.Join([]string{
		`{"time":1000,"path":"/a","status":200,"lat":10.5}`,
		`{"time":1001,"path":"/a","status":200,"lat":20}`,
		`{"time":1002,"path":"/b","status":500,"lat":30}`,
		`{"time":1003,"path":"/b","status":200,"lat":40.5}`,
	}, "\n"))
	l.s.store.sealAll()
	// One more row in the open block: queries see it too.
	l.ingest(t, "web", `{"time":1004,"path":"/a","status":200,"lat":1}`)

	res, part := l.query(t, "SELECT path, count(*), sum(lat) FROM web WHERE status = 200 GROUP BY path ORDER BY path")
	want := [][]string{{"/a", "3", "31.5"}, {"/b", "1", "40.5"}}
	if got := cells(res); !reflect.DeepEqual(got, want) {
		t.Errorf("rows %v, want %v", got, want)
	}
	if part.LeavesTotal != 1 || part.LeavesResponded != 1 || part.RowsInRange != 5 || part.RowsEstimated != 5 || part.RowsMatched != 4 {
		t.Errorf("coverage counters %+v", part)
	}

	// An unknown table holds no rows here: an empty answer, not an error.
	res, part = l.query(t, "SELECT count(*) FROM nothing")
	if got := cells(res); !reflect.DeepEqual(got, [][]string{{"0"}}) || part.LeavesResponded != 1 || part.LeavesTotal != 1 {
		t.Errorf("unknown table: rows %v, partial %+v", got, part)
	}

	res, _ = l.query(t, "SELECT time, path FROM web WHERE time >= 1003 ORDER BY time")
	if got := cells(res); !reflect.DeepEqual(got, [][]string{{"1003", "/b"}, {"1004", "/a"}}) {
		t.Errorf("sample rows %v", got)
	}
}

func TestPartialBadRequests(t *testing.T) {
	l := newTestLeaf(t, testConfig())
	l.ingest(t, "t", `{"time":1,"x":1}`)
	cases := []struct {
		name   string
		body   string
		status int
		msg    string
	}{
		{"not JSON", `{plan`, 400, "cannot read partial request"},
		{"trailing data", `{"plan":{"table":"t","aggs":[{"func":"count"}],"limit":-1}} {}`, 400, "unexpected data"},
		{"bad table", `{"plan":{"table":"a b","aggs":[{"func":"count"}]}}`, 400, "invalid table name"},
		{"bad plan", `{"plan":{"table":"t","aggs":[{"func":"nope","column":"x"}]}}`, 400, "cannot run plan"},
		{"too large", `{"plan":{"table":"` + strings.Repeat("a", MaxPartialRequestBytes) + `"}}`, 413, "over"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := l.do(t, http.MethodPost, "/v1/partial", []byte(c.body), "Content-Type", "application/json")
			if msg := r.errorMessage(t); r.status != c.status || !strings.Contains(msg, c.msg) {
				t.Errorf("status %d %q, want %d containing %q", r.status, msg, c.status, c.msg)
			}
		})
	}
}

func TestQueryErrorStatus(t *testing.T) {
	s := &Server{cfg: testConfig(), log: testConfig().Logger}
	p := &plan.Plan{Table: "t"}
	cases := []struct {
		err    error
		status int
		label  string
	}{
		{fmt.Errorf("scan: %w", context.DeadlineExceeded), http.StatusGatewayTimeout, "timeout"},
		{fmt.Errorf("cannot execute: %w: x", exec.ErrBadPlan), http.StatusBadRequest, "error"},
		{errors.New("disk on fire"), http.StatusInternalServerError, "error"},
	}
	for _, c := range cases {
		w := httptest.NewRecorder()
		if label := s.queryError(w, p, time.Second, c.err); label != c.label || w.Code != c.status {
			t.Errorf("%v: status %d label %q, want %d %q", c.err, w.Code, label, c.status, c.label)
		}
		r := response{status: w.Code, header: w.Header(), body: w.Body.Bytes()}
		r.errorMessage(t)
	}
}
