package e2e

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/reef-db/reef/api"
	"github.com/reef-db/reef/testbench"
)

// TestRouterExactlyOnce: with one leaf refusing every write (its memory limit is
// tiny) and another killed in the middle of the run and restarted, every batch the
// writer saw acknowledged is in the cluster exactly once afterwards, and no batch is
// ever stored twice.
func TestRouterExactlyOnce(t *testing.T) {
	c := startCluster(t, testbench.ClusterConfig{
		Leaves: 3,
		LeafArgs: func(i int) []string {
			if i == 0 {
				return []string{"--memory-limit", "16KiB"}
			}
			return nil
		},
	})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	const batches, rowsPer = 120, 200
	var (
		mu    sync.Mutex
		acked = map[int]bool{}
		next  atomic.Int64
		wg    sync.WaitGroup
	)
	client := c.Client()
	for w := 0; w < 3; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				b := int(next.Add(1)) - 1
				if b >= batches {
					return
				}
				if b == batches/3 && w == 0 {
					if err := c.Kill(1); err != nil {
						t.Error(err)
					}
				}
				var body bytes.Buffer
				for i := 0; i < rowsPer; i++ {
					fmt.Fprintf(&body, `{"time":%d,"batch":%d,"i":%d}`+"\n", 1_764_000_000+b, b, i)
				}
				bctx, bcancel := context.WithTimeout(ctx, 10*time.Second)
				res, err := client.Ingest(bctx, "writes", &body, "application/x-ndjson", fmt.Sprintf("w-%d", b))
				bcancel()
				if err == nil && res.Accepted == rowsPer {
					mu.Lock()
					acked[b] = true
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	if len(acked) < batches*2/3 {
		t.Fatalf("only %d of %d batches acknowledged with two of three leaves able to take them", len(acked), batches)
	}

	if err := c.RestartLeaf(ctx, 1); err != nil {
		t.Fatal(err)
	}
	var res *api.QueryResult
	deadline := time.Now().Add(30 * time.Second)
	for {
		var err error
		res, err = client.SQL(ctx, api.QueryRequest{SQL: "SELECT batch, count(*) FROM writes GROUP BY batch"})
		if err == nil && !res.Partial {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("cluster not whole again after the restart: %v %+v", err, res)
		}
		time.Sleep(200 * time.Millisecond)
	}
	got := map[int]int64{}
	for _, row := range res.Rows {
		got[int(toInt(row[0]))] = toInt(row[1])
	}
	for b := 0; b < batches; b++ {
		n := got[b]
		switch {
		case acked[b] && n != rowsPer:
			t.Errorf("acknowledged batch %d has %d rows, want %d", b, n, rowsPer)
		case !acked[b] && n != 0 && n != rowsPer:
			t.Errorf("unacknowledged batch %d has %d rows, want 0 or %d", b, n, rowsPer)
		}
	}
}
