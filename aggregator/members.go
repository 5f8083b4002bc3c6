package aggregator

import (
	"context"
	"crypto/tls"
	"sync"
	"sync/atomic"
	"time"

	"github.com/reef-db/reef/api"
)

// child is one leaf or child aggregator, with what the last health check saw.
type child struct {
	url    string
	client *api.Client

	mu            sync.Mutex
	up            bool      // last health check answered
	everUp        bool      // answered at least once
	excludedUntil time.Time // ingest refused recently: not a routing target until then
	stats         api.Stats // last stats seen (kept while down, for coverage estimates)
	lastErr       string

	// inflight is the body bytes of ingest batches sent to the child and not yet
	// answered: routing counts them against its free memory.
	inflight atomic.Int64
}

func (c *child) snapshot() (up bool, st api.Stats) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.up, c.stats
}

// healthy reports whether queries should be sent to the child.
func (c *child) healthy() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.up
}

// routable reports whether ingest may go to the child now.
func (c *child) routable(now time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.up && now.After(c.excludedUntil)
}

func (c *child) exclude(d time.Duration) {
	c.mu.Lock()
	c.excludedUntil = time.Now().Add(d)
	c.mu.Unlock()
}

func (c *child) freeBytes() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stats.FreeBytes
}

// room is what routing compares: the child's free memory less the batches in
// flight to it. Batches sent at once would otherwise all see the same free memory
// and go to the same leaf, which stores them one after another while the other
// leaves wait; counting them spreads concurrent writes like least-outstanding-
// requests, and the free memory still decides between leaves with nothing in flight.
func (c *child) room() int64 { return c.freeBytes() - c.inflight.Load() }

// check polls the child's stats once; fresh asks a child aggregator to refresh its
// own children's stats first.
func (c *child) check(ctx context.Context, timeout time.Duration, fresh bool) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	stats := c.client.Stats
	if fresh {
		stats = c.client.StatsFresh
	}
	st, err := stats(ctx)
	c.mu.Lock()
	defer c.mu.Unlock()
	if err != nil {
		c.up = false
		c.lastErr = err.Error()
		return
	}
	c.up = st.Ready
	if !st.Ready {
		c.lastErr = "not ready"
	}
	c.everUp = true
	c.stats = *st
}

// markDown records a failed request to the child, so the next queries skip it until
// a health check sees it again.
func (c *child) markDown(err error) {
	c.mu.Lock()
	c.up = false
	c.lastErr = err.Error()
	c.mu.Unlock()
}

// members is the set of children.
type members struct {
	tls      *tls.Config // client TLS config for https:// children; nil: the default
	mu       sync.RWMutex
	children []*child
}

func newChild(url, token string, tlsCfg *tls.Config) *child {
	cl := api.NewClient(url)
	cl.Token = token
	if tlsCfg != nil {
		_ = cl.SetTLSConfig(tlsCfg) // cannot fail for a client from NewClient
	}
	return &child{url: url, client: cl}
}

func (m *members) list() []*child {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.children
}

// checkAll polls every child in parallel and waits for all (see child.check).
func (m *members) checkAll(ctx context.Context, timeout time.Duration, fresh bool) {
	var wg sync.WaitGroup
	for _, c := range m.list() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.check(ctx, timeout, fresh)
		}()
	}
	wg.Wait()
}

func (c *child) lastError() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.lastErr == "" {
		return "no health check answered yet"
	}
	return c.lastErr
}

// noteIngest adds acknowledged rows to the child's last stats, so that coverage
// estimates and routing are current between health checks. A table the stats do
// not know yet gets an unknown time range (MinTime > MaxTime), which estimates
// count whole.
//
// The memory the rows will take is charged against the child's free bytes at the
// child's last reported bytes per row (the batch's own size while it holds none).
// Without this, the leaf that was freest at the last health check would win every
// pair it is in until the next one — two thirds of all writes with three leaves —
// instead of the even spread two random choices give when loads are current.
func (c *child) noteIngest(table string, rows, bodyBytes int) {
	if rows <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	cost := int64(bodyBytes)
	if c.stats.Rows > 0 && c.stats.Bytes > 0 {
		cost = int64(rows) * (c.stats.Bytes / c.stats.Rows)
	}
	c.stats.Bytes += cost
	c.stats.FreeBytes = max(0, c.stats.FreeBytes-cost)
	tables := make(map[string]api.TableStats, len(c.stats.Tables)+1)
	for k, v := range c.stats.Tables {
		tables[k] = v
	}
	ts, ok := tables[table]
	if !ok {
		ts = api.TableStats{Name: table, MinTime: 1, MaxTime: 0}
	}
	ts.Rows += int64(rows)
	tables[table] = ts
	c.stats.Tables = tables
	c.stats.Rows += int64(rows)
}
