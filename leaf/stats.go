package leaf

import (
	"net/http"

	"github.com/reef-db/reef/api"
)

// totals sums the tables' stats.
type totals struct {
	Rows   int64
	Blocks int
}

func (s *Server) totals() totals {
	var t totals
	for _, ts := range s.store.stats() {
		t.Rows += ts.Rows
		t.Blocks += ts.Blocks
	}
	return t
}

// Stats describes the leaf: what GET /v1/stats answers.
func (s *Server) Stats() api.Stats {
	used := s.store.used()
	st := api.Stats{
		LeafID:      s.cfg.ID,
		Ready:       s.state.Load() == stateReady,
		Bytes:       used,
		MemoryLimit: s.cfg.MemoryLimit,
		FreeBytes:   max(0, s.cfg.MemoryLimit-used),
		Tables:      make(map[string]api.TableStats),
		Start:       s.start,
		Leaves:      1,
	}
	for _, ts := range s.store.stats() {
		st.Rows += ts.Rows
		st.Tables[ts.Name] = ts
	}
	return st
}

func (s *Server) handleStats(w http.ResponseWriter, r *http.Request) {
	st := s.Stats()
	writeJSON(w, http.StatusOK, &st)
}

func (s *Server) handleTables(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, struct {
		Tables []api.TableStats `json:"tables"`
	}{s.store.stats()})
}

func (s *Server) handleTable(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("table")
	if err := api.ValidTableName(name); err != nil {
		writeError(w, http.StatusBadRequest, "cannot describe table: %v", err)
		return
	}
	t, _ := s.store.table(name, false)
	if t != nil {
		t.mu.Lock()
		dropped := t.dropped
		ts := t.stats()
		t.mu.Unlock()
		if !dropped {
			writeJSON(w, http.StatusOK, &ts)
			return
		}
	}
	writeError(w, http.StatusNotFound, "table %q not found on leaf %s", name, s.cfg.ID)
}
