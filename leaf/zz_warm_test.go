package leaf

import (
	"testing"

	"github.com/reef-db/reef/api"
	"github.com/reef-db/reef/block"
)

func BenchmarkZZWarm(b *testing.B) {
	body := standardEvents(block.MaxRows)
	cfg, _ := testConfig().withDefaults()
	m := newMetrics()
	st := newStore(&cfg, heapStore{}, m)
	defer st.close()
	d := newDecoder(&cfg)
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		var res api.IngestResult
		d.reset(&res, testNow)
		if err := d.ingest(st, "web", body); err != nil {
			b.Fatal(err)
		}
		if t, _ := st.table("web", false); t != nil && len(t.sealed) > 4 {
			t.mu.Lock()
			for _, r := range t.sealed {
				r.release()
			}
			t.sealed = nil
			t.mu.Unlock()
		}
	}
	b.ReportMetric(float64(block.MaxRows)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
}
