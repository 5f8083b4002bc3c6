package leaf

import (
	"context"
	"net/http"
	"time"
)

// handoffResult answers POST /v1/admin/handoff.
type handoffResult struct {
	Leaf       string  `json:"leaf"`
	Tables     int     `json:"tables"`
	Blocks     int     `json:"blocks"`
	Rows       int64   `json:"rows"`
	DurationMS float64 `json:"duration_ms"`
}

// handleHandoff serves POST /v1/admin/handoff, the first half of a planned restart:
//
//  1. /readyz turns 503 and new ingest gets 503 with Retry-After (queries are still
//     answered until the process exits);
//  2. ingest requests in flight finish;
//  3. every open block is sealed;
//  4. writeHandoff hands the blocks over;
//
// then the leaf answers 200 and closes HandoffDone, and its owner exits. A handoff
// that times out waiting for ingest answers 503 and leaves the leaf draining; it may
// be asked again.
func (s *Server) handleHandoff(w http.ResponseWriter, r *http.Request) {
	s.handoffMu.Lock()
	defer s.handoffMu.Unlock()
	began := time.Now()
	s.log.Info("handoff requested; draining")
	select {
	case <-s.drain():
	case <-r.Context().Done():
		writeRetry(w, http.StatusServiceUnavailable, 1, "handoff of leaf %s: gave up waiting for ingest requests in flight: %v; the leaf stays draining",
			s.cfg.ID, r.Context().Err())
		return
	}
	s.store.sealAll()
	if err := s.writeHandoff(r.Context()); err != nil {
		s.log.Error("handoff failed", "err", err)
		writeError(w, http.StatusInternalServerError, "handoff of leaf %s failed: %v; the leaf stays draining", s.cfg.ID, err)
		return
	}
	res := handoffResult{Leaf: s.cfg.ID, DurationMS: msSince(began)}
	for _, ts := range s.store.stats() {
		res.Tables++
		res.Blocks += ts.Blocks
		res.Rows += ts.Rows
	}
	s.log.Info("handoff done", "tables", res.Tables, "blocks", res.Blocks, "rows", res.Rows, "duration_ms", res.DurationMS)
	select {
	case <-s.handoffDone:
	default:
		close(s.handoffDone)
	}
	writeJSON(w, http.StatusOK, &res)
}

// writeHandoff is where the sealed blocks and the manifest are written to the
// leaf's shm directory, so that the next process attaches them: every block file
// synced, the WAL synced, then the manifest written last, by rename. With the heap
// block store there is nothing to hand over yet, and the data goes with the process.
func (s *Server) writeHandoff(ctx context.Context) error {
	return ctx.Err()
}
