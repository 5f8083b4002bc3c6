package leaf

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/reef-db/reef/api"
	"github.com/reef-db/reef/internal/auth"
	"github.com/reef-db/reef/query/plan"
)

// TestMemoryLimitUnderLoad fills a leaf past its memory limit with several writers
// at once while readers query it: memory never goes over the limit, every write is
// either stored whole or refused with 429 + Retry-After, queries keep answering,
// and the rows the leaf holds are exactly the rows it acknowledged.
func TestMemoryLimitUnderLoad(t *testing.T) {
	cfg := testConfig()
	cfg.MemoryLimit = 1 << 20
	cfg.MaxConcurrentIngest = 8
	cfg.SealAge = 20 * time.Millisecond
	l := newTestLeaf(t, cfg)

	const writers, readers, maxBatches = 6, 2, 400
	var (
		accepted, refused atomic.Int64
		maxUsed           atomic.Int64
		stop              = make(chan struct{})
		wg                sync.WaitGroup
	)
	sample := func() {
		if u := l.s.store.used(); u > maxUsed.Load() {
			maxUsed.Store(u) // racy max, but every sample is checked below as well
			if u > cfg.MemoryLimit {
				t.Errorf("memory used %d over the limit %d", u, cfg.MemoryLimit)
			}
		}
	}
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			full := 0
			for b := 0; b < maxBatches && full < 20; b++ {
				body := webBatch(200, int64(1_700_000_000+w*1_000_000+b*200))
				req, _ := http.NewRequest(http.MethodPost, l.srv.URL+"/v1/ingest/t", strings.NewReader(body))
				req.Header.Set("Content-Type", api.ContentTypeNDJSON)
				resp, err := l.c.HTTP.Do(req)
				if err != nil {
					t.Errorf("ingest: %v", err)
					return
				}
				var res api.IngestResult
				switch resp.StatusCode {
				case http.StatusOK:
					if err := decodeJSON(resp, &res); err != nil || res.Accepted != 200 {
						t.Errorf("ingest answer %+v, %v", res, err)
					}
					accepted.Add(int64(res.Accepted))
				case http.StatusTooManyRequests:
					if resp.Header.Get("Retry-After") == "" {
						t.Errorf("429 without Retry-After")
					}
					refused.Add(1)
					full++
					resp.Body.Close()
				default:
					t.Errorf("ingest: status %d", resp.StatusCode)
					resp.Body.Close()
				}
				sample()
			}
		}()
	}
	var queries atomic.Int64
	var rg sync.WaitGroup
	p, err := plan.FromSQL("SELECT count(*), max(lat) FROM t", time.Now().Unix())
	if err != nil {
		t.Fatal(err)
	}
	for range readers {
		rg.Add(1)
		go func() {
			defer rg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := l.c.Partial(context.Background(), api.PartialRequest{Plan: *p}); err != nil {
					t.Errorf("query during load: %v", err)
					return
				}
				queries.Add(1)
				sample()
			}
		}()
	}
	wg.Wait()
	close(stop)
	rg.Wait()

	t.Logf("accepted %d rows, refused %d batches, %d queries, max memory %d of %d",
		accepted.Load(), refused.Load(), queries.Load(), maxUsed.Load(), cfg.MemoryLimit)
	if refused.Load() == 0 {
		t.Fatal("the leaf never refused a write: the test did not reach the limit")
	}
	if queries.Load() == 0 {
		t.Error("no query answered during the load")
	}
	if used := l.s.store.used(); used > cfg.MemoryLimit {
		t.Errorf("memory used %d over the limit %d after the load", used, cfg.MemoryLimit)
	}
	st, err := l.c.Stats(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if st.Rows != accepted.Load() {
		t.Errorf("leaf holds %d rows, acknowledged %d", st.Rows, accepted.Load())
	}
	// Full, but still answering queries exactly.
	if res, _ := l.query(t, "SELECT count(*) FROM t"); len(res.Rows) != 1 || res.Rows[0][0].I != accepted.Load() {
		t.Errorf("count(*) on the full leaf: %v, want %d", cells(res), accepted.Load())
	}
	// Open blocks sealed since the writers stopped may have made a little room;
	// writing on fills it, and then the leaf refuses.
	for i := 0; ; i++ {
		r := l.do(t, http.MethodPost, "/v1/ingest/t", []byte(webBatch(200, 1_700_000_000)))
		if r.status == http.StatusOK {
			if i == 100 {
				t.Fatal("the full leaf took 100 more batches")
			}
			continue
		}
		if msg := r.errorMessage(t); r.status != http.StatusTooManyRequests || !strings.Contains(msg, "is full") {
			t.Errorf("write to the full leaf: %d %q", r.status, msg)
		}
		break
	}
	if used := l.s.store.used(); used > cfg.MemoryLimit {
		t.Errorf("memory used %d over the limit %d", used, cfg.MemoryLimit)
	}
}

// TestAccess checks the leaf's token rules: with a peer token, ingest and partial
// queries take only it; the admin token guards the handoff; /livez and /readyz
// stay open.
func TestAccess(t *testing.T) {
	const (
		ingestTok = "ingest-token-0123456789"
		queryTok  = "query-token-0123456789"
		adminTok  = "admin-token-0123456789"
		peerTok   = "peer-token-0123456789"
	)
	cfg := testConfig()
	cfg.Tokens = auth.Tokens{Ingest: ingestTok, Query: queryTok, Admin: adminTok, Peer: peerTok}
	l := newTestLeaf(t, cfg)
	p, err := plan.FromSQL("SELECT count(*) FROM t", time.Now().Unix())
	if err != nil {
		t.Fatal(err)
	}
	pj, err := json.Marshal(api.PartialRequest{Plan: *p})
	if err != nil {
		t.Fatal(err)
	}
	partial := string(pj)
	cases := []struct {
		method, path, body, token string
		status                    int
	}{
		{"GET", "/livez", "", "", 200},
		{"GET", "/readyz", "", "", 200},
		{"POST", "/v1/ingest/t", `{"a":1}`, "", 401},
		{"POST", "/v1/ingest/t", `{"a":1}`, "not-a-token-of-this-leaf", 401},
		{"POST", "/v1/ingest/t", `{"a":1}`, ingestTok, 403}, // writers go through an aggregator
		{"POST", "/v1/ingest/t", `{"a":1}`, queryTok, 403},
		{"POST", "/v1/ingest/t", `{"a":1}`, peerTok, 200},
		{"POST", "/v1/partial", partial, "", 401},
		{"POST", "/v1/partial", partial, queryTok, 403},
		{"POST", "/v1/partial", partial, peerTok, 200},
		{"GET", "/v1/stats", "", "", 401},
		{"GET", "/v1/stats", "", ingestTok, 403},
		{"GET", "/v1/stats", "", queryTok, 200},
		{"GET", "/v1/stats", "", adminTok, 200},
		{"GET", "/v1/tables/t", "", peerTok, 200},
		{"GET", "/metrics", "", "", 401},
		{"GET", "/metrics", "", queryTok, 200},
		{"POST", "/v1/admin/handoff", "", "", 401},
		{"POST", "/v1/admin/handoff", "", queryTok, 403},
		{"POST", "/v1/admin/handoff", "", ingestTok, 403},
		{"POST", "/v1/admin/handoff", "", peerTok, 403},
	}
	for _, c := range cases {
		hdr := []string{}
		if c.token != "" {
			hdr = append(hdr, "Authorization", "Bearer "+c.token)
		}
		r := l.do(t, c.method, c.path, []byte(c.body), hdr...)
		if r.status != c.status {
			t.Errorf("%s %s with %q: status %d %s, want %d", c.method, c.path, c.token, r.status, r.body, c.status)
			continue
		}
		if r.status == 401 || r.status == 403 {
			r.errorMessage(t)
			if !strings.HasPrefix(r.header.Get("WWW-Authenticate"), "Bearer") {
				t.Errorf("%s %s: %d without WWW-Authenticate: Bearer", c.method, c.path, r.status)
			}
		}
	}
	if st := l.s.state.Load(); st != stateReady {
		t.Fatalf("a refused handoff changed the leaf's state to %d", st)
	}
	r := l.do(t, "POST", "/v1/admin/handoff", nil, "Authorization", "Bearer "+adminTok)
	if r.status != 200 {
		t.Errorf("handoff with the admin token: %d %s", r.status, r.body)
	}
	if _, err := New(Config{Tokens: auth.Tokens{Peer: "short"}}); err == nil || !strings.Contains(err.Error(), "invalid peer token") {
		t.Errorf("New with a short token: %v", err)
	}
}

func decodeJSON(resp *http.Response, v any) error {
	defer resp.Body.Close()
	return json.NewDecoder(resp.Body).Decode(v)
}
