package leaf

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/reef-db/reef/api"
	"github.com/reef-db/reef/query/agg"
	"github.com/reef-db/reef/query/exec"
	"github.com/reef-db/reef/query/plan"
)

// handlePartial serves POST /v1/partial: it runs the scan part of a plan over the
// table's blocks (sealed and open) and answers the partial aggregate states, encoded
// with agg.AppendEncode, as api.ContentTypePartial. An unknown table is not an
// error: it holds no rows here, and the answer is an empty partial.
func (s *Server) handlePartial(w http.ResponseWriter, r *http.Request) {
	began := time.Now()
	result := s.partial(w, r)
	s.metrics.queries.WithLabelValues(result).Inc()
	s.metrics.queryDuration.Observe(time.Since(began).Seconds())
}

// partial does the work of handlePartial and returns the result label for metrics.
func (s *Server) partial(w http.ResponseWriter, r *http.Request) string {
	select {
	case s.querySlots <- struct{}{}:
		defer func() { <-s.querySlots }()
	default:
		writeRetry(w, http.StatusServiceUnavailable, 1, "leaf %s already runs %d queries; retry later", s.cfg.ID, s.cfg.MaxConcurrentQueries)
		return "busy"
	}
	var req api.PartialRequest
	if err := decodePartialRequest(w, r, &req); err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			writeError(w, http.StatusRequestEntityTooLarge, "cannot read partial request: over %d bytes", MaxPartialRequestBytes)
			return "error"
		}
		writeError(w, http.StatusBadRequest, "cannot read partial request: %v", err)
		return "error"
	}
	if err := api.ValidTableName(req.Plan.Table); err != nil {
		writeError(w, http.StatusBadRequest, "cannot run plan: %v", err)
		return "error"
	}
	timeout := s.cfg.QueryTimeout
	if req.TimeoutMS > 0 {
		timeout = min(time.Duration(req.TimeoutMS)*time.Millisecond, s.cfg.MaxQueryTimeout)
	}
	ctx, cancel := context.WithTimeout(r.Context(), timeout)
	defer cancel()

	snap := s.store.snapshot(req.Plan.Table)
	defer snap.release()
	p, err := exec.Execute(ctx, &req.Plan, snap.blocks, exec.Options{
		MaxGroups:   s.cfg.MaxGroups,
		Parallelism: s.cfg.QueryParallelism,
	})
	if err != nil {
		return s.queryError(w, &req.Plan, timeout, err)
	}
	// This leaf answered for itself: it is the one leaf its answer covers.
	p.LeavesTotal, p.LeavesResponded = 1, 1
	p.RowsEstimated = p.RowsInRange

	bufp := partialBufs.Get().(*[]byte)
	defer putPartialBuf(bufp)
	*bufp = agg.AppendEncode((*bufp)[:0], p)
	w.Header().Set("Content-Type", api.ContentTypePartial)
	w.Header().Set("Content-Length", fmt.Sprint(len(*bufp)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(*bufp)
	return "ok"
}

// queryError answers a failed execution: 504 when the deadline passed, 400 when the
// client went away (nobody reads it), 400 for a plan the leaf cannot run, and 500
// otherwise.
func (s *Server) queryError(w http.ResponseWriter, p *plan.Plan, timeout time.Duration, err error) string {
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		writeError(w, http.StatusGatewayTimeout, "query on table %q timed out after %v on leaf %s", p.Table, timeout, s.cfg.ID)
		return "timeout"
	case errors.Is(err, context.Canceled):
		writeError(w, http.StatusBadRequest, "query on table %q canceled by the client", p.Table)
		return "error"
	case errors.Is(err, exec.ErrBadPlan):
		writeError(w, http.StatusBadRequest, "cannot run plan on table %q: %v", p.Table, err)
		return "error"
	}
	s.log.Error("query failed", "table", p.Table, "err", err)
	writeError(w, http.StatusInternalServerError, "query on table %q failed on leaf %s: %v", p.Table, s.cfg.ID, err)
	return "error"
}

func decodePartialRequest(w http.ResponseWriter, r *http.Request, req *api.PartialRequest) error {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, MaxPartialRequestBytes))
	if err := dec.Decode(req); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("unexpected data after the JSON request")
	}
	return nil
}

// Encoded answers are built in reused buffers; one grown past maxPooledPartial is
// left to the collector.
const maxPooledPartial = 4 << 20

var partialBufs = sync.Pool{New: func() any { b := make([]byte, 0, 16<<10); return &b }}

func putPartialBuf(b *[]byte) {
	if cap(*b) <= maxPooledPartial {
		partialBufs.Put(b)
	}
}
