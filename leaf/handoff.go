package leaf

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/reef-db/reef/shm"
)

// HandoffResult answers POST /v1/admin/handoff.
type HandoffResult struct {
	Leaf       string  `json:"leaf"`
	Tables     int     `json:"tables"`
	Blocks     int     `json:"blocks"`
	Rows       int64   `json:"rows"`
	Generation uint64  `json:"generation"` // of the manifest written; 0 without shm
	DurationMS float64 `json:"duration_ms"`
	// TableRows holds the rows of each table handed over: the next process reports
	// the same in its stats' start info (api.StartInfo.Tables).
	TableRows map[string]int64 `json:"table_rows"`
}

// errHandoffDrain is a handoff that gave up waiting for ingest in flight.
var errHandoffDrain = errors.New("gave up waiting for ingest requests in flight")

// Handoff is the first half of a planned restart (POST /v1/admin/handoff, or
// SIGTERM in `reef leaf`):
//
//  1. /readyz turns 503 and new ingest gets 503 with Retry-After (queries are still
//     answered until the process exits);
//  2. ingest requests in flight finish (or ctx ends: the leaf stays draining and
//     Handoff may be called again);
//  3. every open block is sealed into the shm directory;
//  4. the WAL is synced, and the manifest is written last, by rename
//     (writeHandoff).
//
// Then HandoffDone is closed and the owner exits; the next process attaches the
// blocks. Without a shm directory nothing is handed over (the WAL, if any, is
// synced). On failure the leaf stays draining.
func (s *Server) Handoff(ctx context.Context) (HandoffResult, error) {
	s.handoffMu.Lock()
	defer s.handoffMu.Unlock()
	began := time.Now()
	s.log.Info("handoff requested; draining")
	select {
	case <-s.drain():
	case <-ctx.Done():
		return HandoffResult{}, fmt.Errorf("%w: %w", errHandoffDrain, ctx.Err())
	}
	s.store.sealAll()
	res, err := s.writeHandoff()
	if err != nil {
		s.log.Error("handoff failed", "err", err)
		return HandoffResult{}, err
	}
	res.Leaf = s.cfg.ID
	res.DurationMS = msSince(began)
	s.log.Info("handoff done", "tables", res.Tables, "blocks", res.Blocks, "rows", res.Rows,
		"generation", res.Generation, "duration_ms", res.DurationMS)
	select {
	case <-s.handoffDone:
	default:
		close(s.handoffDone)
	}
	return res, nil
}

// handleHandoff serves POST /v1/admin/handoff; see Handoff. A handoff that times out
// waiting for ingest answers 503 and leaves the leaf draining; it may be asked
// again.
func (s *Server) handleHandoff(w http.ResponseWriter, r *http.Request) {
	res, err := s.Handoff(r.Context())
	switch {
	case errors.Is(err, errHandoffDrain):
		writeRetry(w, http.StatusServiceUnavailable, 1, "handoff of leaf %s: %v; the leaf stays draining", s.cfg.ID, err)
	case err != nil:
		writeError(w, http.StatusInternalServerError, "handoff of leaf %s failed: %v; the leaf stays draining", s.cfg.ID, err)
	default:
		writeJSON(w, http.StatusOK, &res)
	}
}

// writeHandoff hands the sealed blocks over: from now on no block file is removed
// (retention only unmaps), the WAL is synced, and the manifest listing every block
// is written last, by rename. The blocks are in the shm directory already (they
// were written when sealed), so this costs one fsync and one small file.
func (s *Server) writeHandoff() (HandoffResult, error) {
	if s.shm != nil {
		// From now on retention only unmaps: every block listed below keeps its file.
		s.shm.keepFiles.Store(true)
	}
	res := HandoffResult{TableRows: map[string]int64{}}
	var ids []uint64
	for _, t := range s.store.list() {
		t.mu.Lock()
		if !t.dropped && len(t.sealed) > 0 {
			res.Tables++
			for _, r := range t.sealed {
				ids = append(ids, r.blk.ID)
				res.Rows += int64(r.blk.Rows)
				res.TableRows[t.name] += int64(r.blk.Rows)
			}
		}
		t.mu.Unlock()
	}
	res.Blocks = len(ids)
	if s.wal != nil {
		if err := s.wal.Sync(); err != nil {
			return res, err
		}
	}
	if s.shm == nil {
		return res, nil
	}
	slices.Sort(ids)
	mbs, err := s.shm.manifest(ids)
	if err != nil {
		// The next start replays the WAL instead (a crash start).
		return res, fmt.Errorf("cannot hand off: %w; stop the leaf instead, and its next start recovers from the WAL", err)
	}
	s.generation++
	m := &shm.Manifest{Generation: s.generation, LeafID: s.cfg.ID, CreatedUnix: time.Now().Unix(), Blocks: mbs}
	if err := shm.WriteManifest(s.shmDir, m); err != nil {
		return res, err
	}
	res.Generation = s.generation
	return res, nil
}
