package leaf

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fastjson"

	"github.com/reef-db/reef/api"
	"github.com/reef-db/reef/block"
	"github.com/reef-db/reef/testbench"
)

// webEvents returns n NDJSON lines of generated web events. Wide events are about
// 330 bytes with 12 fields (13 columns): strings of low and high cardinality, ints,
// a float, a nested object and a two-element set. Small events are about 120 bytes
// with 6 fields.
func webEvents(n int, wide bool) []byte {
	rng := rand.New(rand.NewPCG(1, 2))
	services := []string{"api", "web", "auth", "search", "billing", "media", "feed", "ads"}
	methods := []string{"GET", "GET", "GET", "POST", "PUT", "DELETE"}
	countries := []string{"US", "DE", "FR", "BR", "IN", "JP", "GB", "CA", "AU", "NL", "SE", "MX"}
	agents := []string{"Mozilla/5.0 (X11; Linux x86_64) Firefox/120.0", "Mozilla/5.0 (Macintosh) Safari/17.1",
		"curl/8.4.0", "Go-http-client/2.0", "Mozilla/5.0 (Windows NT 10.0) Chrome/119.0"}
	tags := []string{"canary", "eu", "us", "beta", "mobile", "bot", "cached", "retry"}
	var b strings.Builder
	t0 := int64(1_700_000_000)
	for i := range n {
		status := 200
		switch r := rng.IntN(100); {
		case r < 3:
			status = 500
		case r < 10:
			status = 404
		case r < 15:
			status = 302
		}
		if !wide {
			fmt.Fprintf(&b, `{"time":%d,"service":%q,"path":"/v1/items/%d","status":%d,"latency_ms":%.3f,"country":%q}`+"\n",
				t0+int64(i/100), services[rng.IntN(len(services))], rng.IntN(1000), status, rng.ExpFloat64()*40,
				countries[rng.IntN(len(countries))])
			continue
		}
		fmt.Fprintf(&b, `{"time":%d,"service":%q,"host":"host-%03d","http":{"method":%q,"path":"/v1/items/%d","status":%d},`+
			`"latency_ms":%.3f,"bytes":%d,"user_id":"u%07d","country":%q,"user_agent":%q,"tags":[%q,%q]}`+"\n",
			t0+int64(i/100), services[rng.IntN(len(services))], rng.IntN(200), methods[rng.IntN(len(methods))],
			rng.IntN(1000), status, rng.ExpFloat64()*40, rng.IntN(1<<20), rng.IntN(1_000_000),
			countries[rng.IntN(len(countries))], agents[rng.IntN(len(agents))],
			tags[rng.IntN(len(tags))], tags[rng.IntN(len(tags))])
	}
	return []byte(b.String())
}

// standardEvents returns n NDJSON lines of the testbench's standard dataset (what
// `reef bench ingest` sends): about 133 bytes, 8 flat fields.
func standardEvents(n int) []byte {
	g := testbench.NewGenerator(testbench.GenConfig{Seed: 1, Rows: n, End: time.Unix(1_767_225_600, 0)})
	var out []byte
	var e testbench.Event
	for g.Next(&e) {
		out = testbench.AppendNDJSON(out, &e)
	}
	return out
}

// benchShapes are the event shapes the ingest benchmarks decode.
var benchShapes = []struct {
	name string
	body func(n int) []byte
}{
	{"small", func(n int) []byte { return webEvents(n, false) }},
	{"wide", func(n int) []byte { return webEvents(n, true) }},
	{"standard", standardEvents},
}

// BenchmarkIngestNDJSON measures the decode-and-append path of ingest: one op stores
// one full block (block.MaxRows lines) into a fresh table and seals it.
func BenchmarkIngestNDJSON(b *testing.B) {
	for _, shape := range benchShapes {
		b.Run(shape.name, func(b *testing.B) {
			body := shape.body(block.MaxRows)
			cfg, _ := testConfig().withDefaults()
			m := newMetrics()
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				st := newStore(&cfg, heapStore{}, m)
				var res api.IngestResult
				d := newDecoder(&cfg)
				d.reset(&res, testNow)
				if err := d.ingest(st, "web", body); err != nil {
					b.Fatal(err)
				}
				if res.Accepted != block.MaxRows || len(res.Errors) != 0 {
					b.Fatalf("accepted %d, errors %+v", res.Accepted, res.Errors)
				}
				st.close()
			}
			b.ReportMetric(float64(block.MaxRows)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
		})
	}
}

// BenchmarkFastjsonBaseline parses the same lines with fastjson and does nothing
// else: the ceiling for BenchmarkIngestNDJSON on the machine at hand.
func BenchmarkFastjsonBaseline(b *testing.B) {
	for _, shape := range benchShapes {
		b.Run(shape.name, func(b *testing.B) {
			body := shape.body(block.MaxRows)
			var p fastjson.Parser
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				rest := body
				for len(rest) > 0 {
					i := bytes.IndexByte(rest, '\n')
					v, err := p.ParseBytes(rest[:i])
					if err != nil {
						b.Fatal(err)
					}
					o, _ := v.Object()
					o.Visit(func([]byte, *fastjson.Value) {})
					rest = rest[i+1:]
				}
			}
			b.ReportMetric(float64(block.MaxRows)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
		})
	}
}

// BenchmarkIngestNDJSONWarm is BenchmarkIngestNDJSON/standard in the steady state
// of a leaf: one table takes block after block, so its builders are sized from the
// last block and its dictionaries' caches are warm. One op stores one full block.
func BenchmarkIngestNDJSONWarm(b *testing.B) {
	body := standardEvents(block.MaxRows)
	cfg, _ := testConfig().withDefaults()
	st := newStore(&cfg, heapStore{}, newMetrics())
	defer st.close()
	d := newDecoder(&cfg)
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		var res api.IngestResult
		d.reset(&res, testNow)
		if err := d.ingest(st, "web", body); err != nil {
			b.Fatal(err)
		}
		if res.Accepted != block.MaxRows {
			b.Fatalf("accepted %d", res.Accepted)
		}
		// Let go of the sealed blocks now and then, as retention would.
		if t, _ := st.table("web", false); t != nil {
			t.mu.Lock()
			if len(t.sealed) > 4 {
				for _, r := range t.sealed {
					r.release()
				}
				t.sealed = nil
			}
			t.mu.Unlock()
		}
	}
	b.ReportMetric(float64(block.MaxRows)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
}
