package aggregator

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/reef-db/reef/api"
	"github.com/reef-db/reef/block"
	"github.com/reef-db/reef/query/agg"
	"github.com/reef-db/reef/query/plan"
	"github.com/reef-db/reef/query/sql"
)

// maxPartialRequestBytes bounds the JSON body of POST /v1/partial (as on a leaf).
const maxPartialRequestBytes = 8 << 20

// childMargin is kept from a child's budget so that its answer (and a child
// aggregator's merge) arrives before this aggregator's own deadline.
const childMargin = 0.1

// handleSQL answers POST /v1/sql (JSON body api.QueryRequest) and GET /v1/sql?q=….
func (s *Server) handleSQL(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	req, err := parseQueryRequest(r)
	if err != nil {
		writeQueryError(w, "", err) // 400, or 413 for a body over the limit
		return
	}
	if !s.acquireQuery(r.Context()) {
		w.Header().Set("Retry-After", "1")
		writeError(w, http.StatusTooManyRequests, fmt.Errorf("too many concurrent queries (limit %d); retry shortly", s.cfg.MaxConcurrentQueries))
		return
	}
	defer s.releaseQuery()

	res, p, err := s.runQuery(r.Context(), req, start)
	if err != nil {
		writeQueryError(w, req.SQL, err)
		return
	}
	s.metrics.queries.Inc()
	if res.Partial {
		s.metrics.partialAnswers.Inc()
	}
	s.metrics.coverage.Observe(res.Coverage.Percent)
	if err := writeResult(w, req.Format, p, res); err != nil {
		s.log.Warn("cannot write query result", "err", err)
	}
}

// queryError carries an HTTP status with an error.
type queryError struct {
	status int
	err    error
}

func (e *queryError) Error() string { return e.err.Error() }
func (e *queryError) Unwrap() error { return e.err }

func writeQueryError(w http.ResponseWriter, q string, err error) {
	status := http.StatusBadRequest
	var qe *queryError
	if errors.As(err, &qe) {
		status = qe.status
	}
	ae := &api.Error{Message: err.Error()}
	var se *sql.Error
	if errors.As(err, &se) {
		ae.Position = se.Pos
		ae.Query = q
	}
	writeJSON(w, status, ae)
}

func parseQueryRequest(r *http.Request) (*api.QueryRequest, error) {
	req := &api.QueryRequest{}
	if r.Method == http.MethodPost && r.Header.Get("Content-Type") != "application/x-www-form-urlencoded" {
		data, err := io.ReadAll(io.LimitReader(r.Body, 1<<20+1))
		if err != nil {
			return nil, fmt.Errorf("cannot read query request: %w", err)
		}
		if len(data) > 1<<20 {
			return nil, &queryError{http.StatusRequestEntityTooLarge, errors.New("query request is over 1 MiB")}
		}
		if len(data) > 0 && data[0] == '{' {
			if err := json.Unmarshal(data, req); err != nil {
				return nil, fmt.Errorf("cannot decode query request JSON: %w", err)
			}
		} else {
			req.SQL = string(data) // plain SQL body
		}
	}
	q := r.URL.Query()
	r.Body = http.MaxBytesReader(nil, r.Body, 1<<20) // bounds a form body
	if err := r.ParseForm(); err == nil {
		q = r.Form
	}
	if v := q.Get("q"); v != "" {
		req.SQL = v
	}
	if v := q.Get("format"); v != "" {
		req.Format = v
	}
	if v := q.Get("timeout_ms"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("timeout_ms %q is not a positive integer", v)
		}
		req.TimeoutMS = n
	}
	if v := q.Get("min_coverage"); v != "" {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return nil, fmt.Errorf("min_coverage %q is not a number", v)
		}
		req.MinCoverage = f
	}
	if req.SQL == "" {
		return nil, errors.New("no query: send {\"sql\": …} as JSON, or ?q=SQL")
	}
	if req.MinCoverage < 0 || req.MinCoverage > 100 {
		return nil, fmt.Errorf("min_coverage %v is outside 0–100 (it is a percentage)", req.MinCoverage)
	}
	switch req.Format {
	case "", "json", "csv", "ndjson", "arrow":
	default:
		return nil, fmt.Errorf("unknown format %q (json, csv, ndjson or arrow)", req.Format)
	}
	return req, nil
}

// runQuery plans, fans out, merges and finalizes one query.
func (s *Server) runQuery(ctx context.Context, req *api.QueryRequest, start time.Time) (*api.QueryResult, *plan.Plan, error) {
	timeout := s.queryTimeout(req.TimeoutMS)
	deadline := start.Add(timeout)

	p, err := plan.FromSQL(req.SQL, time.Now().Unix())
	if err != nil {
		return nil, nil, err
	}
	if err := s.validate(ctx, p); err != nil {
		return nil, nil, err
	}
	parsed := time.Now()

	part, nodeErrs := s.fanOut(ctx, p, deadline)
	scanned := time.Now()

	res, err := agg.Finalize(p, part)
	if err != nil {
		return nil, nil, &queryError{http.StatusInternalServerError, fmt.Errorf("cannot finalize result: %w", err)}
	}
	if len(res.Rows) > s.cfg.MaxResultRows {
		clear(res.Rows[s.cfg.MaxResultRows:])
		res.Rows = res.Rows[:s.cfg.MaxResultRows]
		res.Truncated = true
	}
	out := &api.QueryResult{
		Columns:   make([]api.ResultColumn, len(res.Columns)),
		Rows:      make([][]any, len(res.Rows)),
		Coverage:  coverageOf(part),
		Truncated: res.Truncated || part.Truncated,
		Errors:    nodeErrs,
	}
	out.Partial = out.Coverage.LeavesResponded < out.Coverage.LeavesTotal
	for i, c := range res.Columns {
		out.Columns[i] = api.ResultColumn{Name: c.Name, Type: c.Type}
	}
	for i, row := range res.Rows {
		vals := make([]any, len(row))
		for j, v := range row {
			vals[j] = v.Any()
		}
		out.Rows[i] = vals
	}
	minCov := s.cfg.MinCoverage
	if req.MinCoverage > 0 {
		minCov = req.MinCoverage
	}
	if out.Coverage.Percent < minCov {
		s.metrics.coverageRefusals.Inc()
		return nil, nil, &queryError{http.StatusServiceUnavailable, fmt.Errorf(
			"coverage %.1f%% (%d of %d leaves answered) is below min_coverage %.1f%%",
			out.Coverage.Percent, out.Coverage.LeavesResponded, out.Coverage.LeavesTotal, minCov)}
	}
	end := time.Now()
	out.Timings = api.Timings{
		ParseMS: ms(parsed.Sub(start)),
		ScanMS:  ms(scanned.Sub(parsed)),
		MergeMS: ms(end.Sub(scanned)),
		TotalMS: ms(end.Sub(start)),
	}
	return out, p, nil
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// queryTimeout is the deadline of a query that asked for timeoutMS (0: none): the
// default, or what it asked for capped at MaxQueryTimeout.
func (s *Server) queryTimeout(timeoutMS int64) time.Duration {
	if timeoutMS <= 0 {
		return s.cfg.QueryTimeout
	}
	if timeoutMS >= s.cfg.MaxQueryTimeout.Milliseconds() {
		return s.cfg.MaxQueryTimeout
	}
	return time.Duration(timeoutMS) * time.Millisecond
}

// coverageOf computes api.Coverage from merged partial counters (formula in
// api.Coverage).
func coverageOf(part *agg.Partial) api.Coverage {
	c := api.Coverage{
		LeavesTotal:        part.LeavesTotal,
		LeavesResponded:    part.LeavesResponded,
		RowsScanned:        part.RowsInRange,
		RowsEstimatedTotal: part.RowsEstimated,
	}
	switch {
	case c.RowsEstimatedTotal > 0:
		c.Percent = 100 * float64(c.RowsScanned) / float64(c.RowsEstimatedTotal)
	case c.LeavesTotal > 0:
		c.Percent = 100 * float64(c.LeavesResponded) / float64(c.LeavesTotal)
	default:
		c.Percent = 100
	}
	c.Percent = math.Round(c.Percent*100) / 100
	return c
}

// validate checks the plan against the table's schema as the children last
// reported it; an unknown table refreshes the children's stats once first.
func (s *Server) validate(ctx context.Context, p *plan.Plan) error {
	refresh := func() {
		cctx, cancel := context.WithTimeout(ctx, s.cfg.HealthTimeout)
		s.members.checkAll(cctx, s.cfg.HealthTimeout, true)
		cancel()
	}
	schema, ok := s.schema(p.Table)
	if !ok {
		refresh()
		if schema, ok = s.schema(p.Table); !ok {
			return &queryError{http.StatusNotFound, fmt.Errorf("unknown table %q", p.Table)}
		}
	} else if err := p.Validate(schema); err != nil {
		// The schema may have grown since the last health check: look again once.
		refresh()
		schema, _ = s.schema(p.Table)
	}
	return p.Validate(schema)
}

// schema merges the table's columns over every child's last stats. A column that
// is int on one leaf and float on another is float.
func (s *Server) schema(table string) (map[string]block.Type, bool) {
	var schema map[string]block.Type
	for _, c := range s.members.list() {
		_, st := c.snapshot()
		ts, ok := st.Tables[table]
		if !ok || len(ts.Columns) == 0 {
			continue // unknown here, or known only from acknowledged ingest
		}
		if schema == nil {
			schema = make(map[string]block.Type)
		}
		for _, col := range ts.Columns {
			t, err := block.ParseType(col.Type)
			if err != nil {
				continue
			}
			if old, ok := schema[col.Name]; ok && old != t {
				if (old == block.TypeInt && t == block.TypeFloat) || (old == block.TypeFloat && t == block.TypeInt) {
					t = block.TypeFloat
				}
			}
			schema[col.Name] = t
		}
	}
	return schema, schema != nil
}

type childResult struct {
	c    *child
	part *agg.Partial
	err  error
	took time.Duration
}

// fanOut sends the plan to every child and merges what arrives before the
// deadline. Children known to be down are not asked; children that fail or are late
// are counted as missing, with their rows estimated from their last stats.
func (s *Server) fanOut(ctx context.Context, p *plan.Plan, deadline time.Time) (*agg.Partial, []api.NodeError) {
	ctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	children := s.members.list()
	merged := &agg.Partial{}
	var nodeErrs []api.NodeError
	var missing []*child

	budget := time.Until(deadline)
	childTimeout := max(budget-time.Duration(float64(budget)*childMargin), time.Millisecond)
	req := api.PartialRequest{Plan: *p, TimeoutMS: max(childTimeout.Milliseconds(), 1)}
	results := make(chan childResult, len(children))
	pending := make(map[*child]bool, len(children))
	for _, c := range children {
		if !c.healthy() {
			missing = append(missing, c)
			nodeErrs = append(nodeErrs, api.NodeError{Node: c.url, Error: "down: " + c.lastError()})
			continue
		}
		pending[c] = true
		go func() {
			t0 := time.Now()
			part, err := c.client.Partial(ctx, req)
			results <- childResult{c, part, err, time.Since(t0)}
		}()
	}
	for len(pending) > 0 {
		select {
		case r := <-results:
			delete(pending, r.c)
			s.metrics.childLatency.WithLabelValues(r.c.url).Observe(r.took.Seconds())
			if r.err == nil {
				r.err = agg.MergeWith(p, merged, r.part, agg.Options{MaxGroups: s.cfg.MaxGroups})
			}
			if r.err != nil {
				if ctx.Err() != nil {
					r.err = fmt.Errorf("no answer before the deadline (%v)", budget.Round(time.Millisecond))
				}
				// A child that answered with an HTTP error (busy, timed out,
				// bad plan) is alive: it misses this query only. One that could not
				// be reached or did not answer in time is down until a health
				// check sees it again.
				var ae *api.Error
				if !errors.As(r.err, &ae) {
					r.c.markDown(r.err)
				}
				missing = append(missing, r.c)
				nodeErrs = append(nodeErrs, api.NodeError{Node: r.c.url, Error: r.err.Error()})
			}
		case <-ctx.Done():
			for c := range pending {
				c.markDown(errors.New("no answer before a query deadline"))
				missing = append(missing, c)
				nodeErrs = append(nodeErrs, api.NodeError{Node: c.url, Error: fmt.Sprintf("no answer before the deadline (%v)", budget.Round(time.Millisecond))})
			}
			clear(pending)
		}
	}
	for _, c := range missing {
		_, st := c.snapshot()
		merged.LeavesTotal += max(st.Leaves, 1)
		merged.RowsEstimated += estimateRows(st, p)
	}
	return merged, nodeErrs
}

// estimateRows estimates how many of a missing child's rows fall in the plan's time
// range, from its last stats, assuming rows spread evenly over the table's time span.
func estimateRows(st api.Stats, p *plan.Plan) int64 {
	ts, ok := st.Tables[p.Table]
	if !ok || ts.Rows == 0 {
		return 0
	}
	if ts.MinTime > ts.MaxTime {
		return ts.Rows // time range not reported yet
	}
	lo, hi := max(p.TimeMin, ts.MinTime), min(p.TimeMax, ts.MaxTime)
	if lo > hi {
		return 0
	}
	span := float64(ts.MaxTime) - float64(ts.MinTime) + 1
	return int64(math.Round(float64(ts.Rows) * (float64(hi) - float64(lo) + 1) / span))
}

// handlePartial answers POST /v1/partial when this aggregator is a child of another:
// the same fan-out, merged but not finalized.
func (s *Server) handlePartial(w http.ResponseWriter, r *http.Request) {
	var req api.PartialRequest
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxPartialRequestBytes)).Decode(&req); err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			writeError(w, http.StatusRequestEntityTooLarge, fmt.Errorf("cannot read partial request: over %d bytes", maxPartialRequestBytes))
			return
		}
		writeError(w, http.StatusBadRequest, fmt.Errorf("cannot decode partial request: %w", err))
		return
	}
	if err := agg.CheckPlan(&req.Plan); err != nil {
		writeError(w, http.StatusBadRequest, fmt.Errorf("cannot run plan: %w", err))
		return
	}
	if !s.acquireQuery(r.Context()) {
		w.Header().Set("Retry-After", "1")
		writeError(w, http.StatusServiceUnavailable, fmt.Errorf("too many concurrent queries (limit %d); retry shortly", s.cfg.MaxConcurrentQueries))
		return
	}
	defer s.releaseQuery()
	part, _ := s.fanOut(r.Context(), &req.Plan, time.Now().Add(s.queryTimeout(req.TimeoutMS)))
	w.Header().Set("Content-Type", api.ContentTypePartial)
	_, _ = w.Write(agg.AppendEncode(nil, part))
}
