package testbench

import (
	"bufio"
	"bytes"
	"encoding/json"
	"math"
	"slices"
	"strings"
	"testing"
	"time"
)

// testEnd is a fixed End so that datasets do not depend on the clock.
var testEnd = time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC)

func genBytes(t *testing.T, cfg GenConfig) []byte {
	t.Helper()
	var buf bytes.Buffer
	n, err := WriteNDJSON(&buf, cfg)
	if err != nil {
		t.Fatalf("WriteNDJSON(%+v): %v", cfg, err)
	}
	if n != int64(buf.Len()) {
		t.Fatalf("WriteNDJSON returned %d bytes, wrote %d", n, buf.Len())
	}
	return buf.Bytes()
}

func TestGeneratorDeterministic(t *testing.T) {
	base := GenConfig{Seed: 42, Rows: 20_000, End: testEnd, Span: time.Hour}
	a := genBytes(t, base)
	if b := genBytes(t, base); !bytes.Equal(a, b) {
		t.Fatal("same config gave different bytes")
	}
	if got := bytes.Count(a, []byte("\n")); got != base.Rows {
		t.Fatalf("got %d lines, want %d", got, base.Rows)
	}

	f := func(name string, cfg GenConfig) {
		t.Helper()
		if bytes.Equal(a, genBytes(t, cfg)) {
			t.Errorf("%s: same bytes as the base config", name)
		}
	}
	f("other seed", GenConfig{Seed: 43, Rows: base.Rows, End: base.End, Span: base.Span})
	f("other end", GenConfig{Seed: 42, Rows: base.Rows, End: base.End.Add(time.Hour), Span: base.Span})
	f("other span", GenConfig{Seed: 42, Rows: base.Rows, End: base.End, Span: 2 * time.Hour})

	// A default End resolves to now; the resolved config replays the same data.
	g := NewGenerator(GenConfig{Seed: 7, Rows: 1000})
	var e Event
	var first []byte
	for g.Next(&e) {
		first = AppendNDJSON(first, &e)
	}
	if again := genBytes(t, g.Config()); !bytes.Equal(first, again) {
		t.Fatal("the resolved config did not replay the same data")
	}
	// Sub-second parts of End do not matter.
	if !bytes.Equal(a, genBytes(t, GenConfig{Seed: 42, Rows: base.Rows, End: testEnd.Add(999 * time.Millisecond), Span: time.Hour})) {
		t.Fatal("End is not truncated to the second")
	}
}

func TestGeneratorPrefix(t *testing.T) {
	// Rows changes the time slices, but every other field of row i depends only on
	// the seed and i, so a bigger dataset extends a smaller one.
	var short, long []Event
	for e := range Events(GenConfig{Seed: 9, Rows: 100, End: testEnd}) {
		short = append(short, e)
	}
	for e := range Events(GenConfig{Seed: 9, Rows: 1000, End: testEnd}) {
		long = append(long, e)
		if len(long) == len(short) {
			break // also checks that breaking out of the iterator works
		}
	}
	for i := range short {
		s, l := short[i], long[i]
		s.Time, l.Time = 0, 0
		if s != l {
			t.Fatalf("row %d: %+v with 100 rows, %+v with 1000", i, s, l)
		}
	}
}

func TestGeneratorDistribution(t *testing.T) {
	const rows = 100_000
	cfg := GenConfig{Seed: 1, Rows: rows, End: testEnd, Span: 6 * time.Hour}
	start, end := cfg.Window()
	if end != testEnd.Unix() || start != end-6*3600 {
		t.Fatalf("Window() = [%d, %d), want [%d, %d)", start, end, testEnd.Unix()-6*3600, testEnd.Unix())
	}

	services := map[string]int{}
	hosts := map[string]int{}
	endpoints := map[string]int{}
	statuses := map[int64]int{}
	var lat []float64
	svcLat := map[string][]float64{}
	prev := int64(math.MinInt64)
	var firstTime, lastTime int64
	n := 0
	for e := range Events(cfg) {
		if e.Time < start || e.Time >= end {
			t.Fatalf("row %d: time %d outside [%d, %d)", n, e.Time, start, end)
		}
		if e.Time < prev {
			t.Fatalf("row %d: time %d before the previous %d", n, e.Time, prev)
		}
		if n == 0 {
			firstTime = e.Time
		}
		prev, lastTime = e.Time, e.Time
		svc, err := ServiceOfHost(e.Host)
		if err != nil || svc != e.Service {
			t.Fatalf("row %d: host %s belongs to %q (%v), event says %s", n, e.Host, svc, err, e.Service)
		}
		if !strings.HasPrefix(e.Endpoint, "/api/v1/") {
			t.Fatalf("row %d: endpoint %q", n, e.Endpoint)
		}
		if e.LatencyMS < 0.01 || e.LatencyMS > MaxLatencyMS || math.Round(e.LatencyMS*100)/100 != e.LatencyMS {
			t.Fatalf("row %d: latency %v not in [0.01, %v] or not rounded to 0.01", n, e.LatencyMS, MaxLatencyMS)
		}
		if e.Bytes <= 0 {
			t.Fatalf("row %d: bytes %d", n, e.Bytes)
		}
		services[e.Service]++
		hosts[e.Host]++
		endpoints[e.Endpoint]++
		statuses[e.Status]++
		lat = append(lat, e.LatencyMS)
		svcLat[e.Service] = append(svcLat[e.Service], e.LatencyMS)
		n++
	}
	if n != rows {
		t.Fatalf("got %d rows, want %d", n, rows)
	}
	// Events spread over the whole window.
	if slack := int64(60); firstTime > start+slack || lastTime < end-1-slack {
		t.Errorf("events span [%d, %d], want about [%d, %d)", firstTime, lastTime, start, end)
	}

	// Services follow the Zipf law P(k) ∝ (1+k)^-1.1.
	if len(services) != NumServices {
		t.Fatalf("got %d services, want %d", len(services), NumServices)
	}
	var norm float64
	for k := range NumServices {
		norm += math.Pow(float64(1+k), -serviceZipfS)
	}
	for k, name := range Services() {
		want := math.Pow(float64(1+k), -serviceZipfS) / norm
		got := float64(services[name]) / rows
		if math.Abs(got-want) > 0.01 {
			t.Errorf("service %s: share %.4f, want %.4f ± 0.01", name, got, want)
		}
	}
	if services["svc-00"] < 10*services["svc-19"] {
		t.Errorf("services not skewed: svc-00 %d rows, svc-19 %d", services["svc-00"], services["svc-19"])
	}

	if len(hosts) != NumHosts {
		t.Errorf("got %d hosts, want all %d", len(hosts), NumHosts)
	}

	if len(endpoints) > NumEndpoints || len(endpoints) < NumEndpoints/2 {
		t.Errorf("got %d endpoints, want between %d and %d", len(endpoints), NumEndpoints/2, NumEndpoints)
	}
	top := Endpoints()[0]
	for name, c := range endpoints {
		if c > endpoints[top] {
			t.Errorf("endpoint %s (%d rows) busier than the top-ranked %s (%d)", name, c, top, endpoints[top])
		}
	}
	if share := float64(endpoints[top]) / rows; share < 0.15 {
		t.Errorf("endpoints not skewed: top share %.3f", share)
	}

	for status, want := range map[int64]float64{200: 0.90, 404: 0.07, 500: 0.03} {
		if got := float64(statuses[status]) / rows; math.Abs(got-want) > 0.005 {
			t.Errorf("status %d: share %.4f, want %.2f ± 0.005", status, got, want)
		}
	}
	if len(statuses) != 3 {
		t.Errorf("statuses %v, want only 200, 404, 500", statuses)
	}

	// SlowService stands out: its median latency is well above every other's.
	var slow, nextSlowest float64
	for name, l := range svcLat {
		slices.Sort(l)
		if med := l[len(l)/2]; name == SlowService {
			slow = med
		} else {
			nextSlowest = max(nextSlowest, med)
		}
	}
	if slow < 1.8*nextSlowest {
		t.Errorf("median latency of %s %.2f, of the next slowest service %.2f: want it to stand out", SlowService, slow, nextSlowest)
	}

	slices.Sort(lat)
	if med, p99 := lat[len(lat)/2], lat[len(lat)*99/100]; med < 5 || med > 100 || p99 < 4*med {
		t.Errorf("latency median %.2f, p99 %.2f: want a median in [5, 100]ms and a long tail", med, p99)
	}
}

// jsonEvent is how encoding/json sees one NDJSON line.
type jsonEvent struct {
	Time      *int64   `json:"time"`
	Service   *string  `json:"service"`
	Host      *string  `json:"host"`
	Endpoint  *string  `json:"endpoint"`
	Status    *int64   `json:"status"`
	LatencyMS *float64 `json:"latency_ms"`
	Bytes     *int64   `json:"bytes"`
}

func TestNDJSONMatchesEvents(t *testing.T) {
	cfg := GenConfig{Seed: 5, Rows: 5000, End: testEnd}
	data := genBytes(t, cfg)
	g := NewGenerator(cfg)
	sc := bufio.NewScanner(bytes.NewReader(data))
	line := 0
	for sc.Scan() {
		line++
		var j jsonEvent
		dec := json.NewDecoder(bytes.NewReader(sc.Bytes()))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&j); err != nil {
			t.Fatalf("line %d %q: %v", line, sc.Text(), err)
		}
		if j.Time == nil || j.Service == nil || j.Host == nil || j.Endpoint == nil || j.Status == nil || j.LatencyMS == nil || j.Bytes == nil {
			t.Fatalf("line %d %q: missing a field", line, sc.Text())
		}
		got := Event{*j.Time, *j.Service, *j.Host, *j.Endpoint, *j.Status, *j.LatencyMS, *j.Bytes}
		var want Event
		if !g.Next(&want) {
			t.Fatalf("line %d: more lines than events", line)
		}
		if got != want {
			t.Fatalf("line %d: parsed %+v, generated %+v", line, got, want)
		}
		// latency_ms is always a JSON float, so the column is typed float from row 1.
		if i := bytes.Index(sc.Bytes(), []byte(`"latency_ms":`)); i < 0 || !bytes.ContainsAny(sc.Bytes()[i:], ".e") {
			t.Fatalf("line %d %q: latency_ms without a decimal point", line, sc.Text())
		}
	}
	if line != cfg.Rows {
		t.Fatalf("got %d lines, want %d", line, cfg.Rows)
	}
	if g.Remaining() != 0 {
		t.Fatalf("%d events more than lines", g.Remaining())
	}
}

func TestGenConfig(t *testing.T) {
	f := func(cfg GenConfig, wantErr string) {
		t.Helper()
		err := cfg.Validate()
		switch {
		case wantErr == "" && err != nil:
			t.Errorf("Validate(%+v) = %v, want nil", cfg, err)
		case wantErr != "" && (err == nil || !strings.Contains(err.Error(), wantErr)):
			t.Errorf("Validate(%+v) = %v, want an error containing %q", cfg, err, wantErr)
		}
		if wantErr != "" {
			if _, err := WriteNDJSON(&bytes.Buffer{}, cfg); err == nil {
				t.Errorf("WriteNDJSON(%+v) accepted an invalid config", cfg)
			}
		}
	}
	f(GenConfig{}, "")
	f(GenConfig{Rows: 10, Span: time.Second}, "")
	f(GenConfig{Rows: -1}, "rows is -1")
	f(GenConfig{Rows: 1, Span: time.Millisecond}, "span is 1ms")
	f(GenConfig{Rows: 1, Span: -time.Hour}, "span is -1h0m0s")

	r := GenConfig{End: testEnd.Add(1500 * time.Millisecond)}.Resolve()
	if !r.End.Equal(testEnd.Add(time.Second)) || r.Span != DefaultSpan {
		t.Errorf("Resolve() = %+v, want End %v and Span %v", r, testEnd.Add(time.Second), DefaultSpan)
	}
	before := time.Now().Unix()
	if got := (GenConfig{}).Resolve().End.Unix(); got < before || got > time.Now().Unix() {
		t.Errorf("default End %d is not now", got)
	}

	// Invalid configs never panic the generator.
	for range Events(GenConfig{Rows: -5}) {
		t.Fatal("negative Rows produced an event")
	}
	n := 0
	for e := range Events(GenConfig{Rows: 10, End: testEnd, Span: time.Nanosecond}) {
		if e.Time != testEnd.Unix()-1 {
			t.Fatalf("time %d with a sub-second span, want %d", e.Time, testEnd.Unix()-1)
		}
		n++
	}
	if n != 10 {
		t.Fatalf("got %d events, want 10", n)
	}
}

func TestServiceOfHost(t *testing.T) {
	f := func(host, want string) {
		t.Helper()
		got, err := ServiceOfHost(host)
		if want == "" {
			if err == nil {
				t.Errorf("ServiceOfHost(%q) = %q, want an error", host, got)
			}
			return
		}
		if err != nil || got != want {
			t.Errorf("ServiceOfHost(%q) = %q, %v; want %q", host, got, err, want)
		}
	}
	f("host-0000", "svc-00")
	f("host-0099", "svc-00")
	f("host-0100", "svc-01")
	f("host-1999", "svc-19")
	f("host-2000", "")
	f("host-12", "")
	f("host-0012x", "")
	f("svc-00", "")
	f("", "")
}

func BenchmarkGenerator(b *testing.B) {
	g := NewGenerator(GenConfig{Seed: 1, Rows: math.MaxInt, End: testEnd})
	var e Event
	b.ReportAllocs()
	for b.Loop() {
		g.Next(&e)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "rows/s")
}

func BenchmarkAppendNDJSON(b *testing.B) {
	events := make([]Event, 0, 4096)
	for e := range Events(GenConfig{Seed: 1, Rows: cap(events), End: testEnd}) {
		events = append(events, e)
	}
	buf := make([]byte, 0, 1<<20)
	var size int
	for i := range events {
		size += len(AppendNDJSON(nil, &events[i]))
	}
	b.SetBytes(int64(size / len(events)))
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if len(buf) > 1<<20-512 {
			buf = buf[:0]
		}
		buf = AppendNDJSON(buf, &events[i%len(events)])
		i++
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "rows/s")
}

func BenchmarkWriteNDJSON(b *testing.B) {
	const rows = 100_000
	cfg := GenConfig{Seed: 1, Rows: rows, End: testEnd}
	n, _ := WriteNDJSON(discard{}, cfg)
	b.SetBytes(n)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := WriteNDJSON(discard{}, cfg); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)*rows/b.Elapsed().Seconds(), "rows/s")
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }
