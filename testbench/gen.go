package testbench

import (
	"fmt"
	"iter"
	"math"
	"math/rand/v2"
	"time"
)

// Dataset shape. The values are part of the generator's contract: tests and benchmark
// reports depend on them, so changing one changes every generated dataset.
const (
	// NumServices is how many distinct service values there are: svc-00 … svc-19.
	NumServices = 20
	// HostsPerService is how many hosts run each service; host names are unique per
	// service, so there are NumServices*HostsPerService hosts: host-0000 … host-1999.
	HostsPerService = 100
	// NumHosts is the number of distinct host values.
	NumHosts = NumServices * HostsPerService
	// NumEndpoints is how many distinct endpoint values there are.
	NumEndpoints = len(endpointResources) * len(endpointSuffixes)

	// DefaultSpan is the time span events are spread over when GenConfig.Span is 0.
	DefaultSpan = 24 * time.Hour

	// MaxLatencyMS caps latency_ms (a request timeout).
	MaxLatencyMS = 60000.0
)

// SlowService answers three times slower than the others: something to find.
const SlowService = "svc-07"

// Zipf parameters (see math/rand/v2.NewZipf: P(k) ∝ (v+k)^-s).
const (
	serviceZipfS  = 1.1
	endpointZipfS = 1.2
	zipfV         = 1.0
)

// Status shares as fractions: 200, then 404; the rest is 500.
const (
	status200Share = 0.90
	status404Share = 0.07
)

// pcgStream is the second PCG seed word; the first is GenConfig.Seed.
const pcgStream = 0x7265_6566_6765_6e31 // "reefgen1"

// Event is one generated web request. Its strings point into shared, read-only name
// tables: an Event costs no allocation and may be copied freely.
type Event struct {
	Time      int64   // unix seconds
	Service   string  // svc-00 … svc-19, Zipf-skewed: svc-00 is the busiest, SlowService the slowest
	Host      string  // host-0000 … host-1999; each service runs on its own 100 hosts
	Endpoint  string  // one of NumEndpoints paths like /api/v1/users/{id}, Zipf-skewed
	Status    int64   // 200 (90%), 404 (7%), 500 (3%)
	LatencyMS float64 // log-normal, rounded to 0.01, in [0.01, MaxLatencyMS]
	Bytes     int64   // response size
}

// GenConfig says which dataset to generate. Two generators with equal resolved
// configurations (see Resolve) produce identical events.
type GenConfig struct {
	// Seed selects the dataset; the same seed always gives the same events.
	Seed uint64
	// Rows is how many events to generate.
	Rows int
	// End is the exclusive upper bound of event times; zero means now. It is truncated
	// to a whole second. Set it explicitly for a dataset that does not depend on when
	// it was generated.
	End time.Time
	// Span is how far before End the first event may lie; zero means DefaultSpan. It is
	// truncated to a whole second and must be at least one second.
	Span time.Duration
}

// Resolve fills in the defaults (End = now, Span = DefaultSpan) and truncates End and
// Span to whole seconds. Generating from the resolved configuration gives the same
// events as generating from the original one at the same moment.
func (c GenConfig) Resolve() GenConfig {
	if c.End.IsZero() {
		c.End = time.Now()
	}
	c.End = time.Unix(c.End.Unix(), 0).UTC()
	if c.Span == 0 {
		c.Span = DefaultSpan
	}
	c.Span = c.Span.Truncate(time.Second)
	return c
}

// Validate reports a configuration that cannot be generated.
func (c GenConfig) Validate() error {
	if c.Rows < 0 {
		return fmt.Errorf("invalid generator config: rows is %d, want >= 0", c.Rows)
	}
	if c.Span != 0 && c.Span < time.Second {
		return fmt.Errorf("invalid generator config: span is %v, want 0 (default %v) or at least 1s", c.Span, DefaultSpan)
	}
	return nil
}

// Window returns the time range of the events, [start, end) in unix seconds.
func (c GenConfig) Window() (start, end int64) {
	r := c.Resolve()
	end = r.End.Unix()
	return end - int64(r.Span/time.Second), end
}

// Generator produces the events of one GenConfig in order. Event times never
// decrease: event i of n lies in the i-th of n equal slices of [start, end), at a
// random point within it, so the events spread evenly over the window (about
// Rows/Span per second) and arrive as a log would. A Generator is not safe for
// concurrent use.
type Generator struct {
	cfg        GenConfig
	r          *rand.Rand
	services   *rand.Zipf
	endpoints  *rand.Zipf
	start      int64
	spanSec    float64
	rows       float64
	i          int
	n          int
	lastTime   int64
	lastSecond int64 // start + span - 1: the last second an event may have
}

// NewGenerator returns a generator of cfg's events. A configuration that fails
// Validate yields no events (Rows < 0) or uses one second (Span < 1s); call Validate
// first to report it.
func NewGenerator(cfg GenConfig) *Generator {
	cfg = cfg.Resolve()
	if cfg.Span < time.Second {
		cfg.Span = time.Second
	}
	if cfg.Rows < 0 {
		cfg.Rows = 0
	}
	r := rand.New(rand.NewPCG(cfg.Seed, pcgStream))
	start, end := cfg.Window()
	return &Generator{
		cfg:        cfg,
		r:          r,
		services:   rand.NewZipf(r, serviceZipfS, zipfV, NumServices-1),
		endpoints:  rand.NewZipf(r, endpointZipfS, zipfV, uint64(NumEndpoints-1)),
		start:      start,
		spanSec:    float64(end - start),
		rows:       float64(cfg.Rows),
		n:          cfg.Rows,
		lastTime:   start,
		lastSecond: end - 1,
	}
}

// Config returns the resolved configuration the generator works from; pass it on to
// generate the very same events again.
func (g *Generator) Config() GenConfig { return g.cfg }

// Remaining returns how many events Next will still produce.
func (g *Generator) Remaining() int { return g.n - g.i }

// Next fills e with the next event and reports whether there was one.
func (g *Generator) Next(e *Event) bool {
	if g.i >= g.n {
		return false
	}
	r := g.r

	// Time: a random point in this event's slice of the window, never before the
	// previous event (float rounding at slice edges must not reorder events).
	t := g.start + int64((float64(g.i)+r.Float64())*g.spanSec/g.rows)
	t = min(max(t, g.lastTime), g.lastSecond)
	g.lastTime = t
	g.i++

	svc := int(g.services.Uint64())
	ep := int(g.endpoints.Uint64())

	var status int64
	switch u := r.Float64(); {
	case u < status200Share:
		status = 200
	case u < status200Share+status404Share:
		status = 404
	default:
		status = 500
	}

	// Latency: log-normal around the endpoint's median times the service's factor;
	// errors are fast (404) or slow (500: timeouts, retries).
	median := endpointMedianMS[ep] * serviceLatency[svc]
	switch status {
	case 404:
		median *= 0.3
	case 500:
		median *= 4
	}
	lat := median * math.Exp(0.8*r.NormFloat64())
	lat = math.Round(lat*100) / 100
	lat = min(max(lat, 0.01), MaxLatencyMS)

	var size int64
	switch status {
	case 200:
		// Log-normal around 4 KiB, capped at 64 MiB.
		size = int64(min(4096*math.Exp(1.2*r.NormFloat64()), 64<<20))
	case 404:
		size = 150 + r.Int64N(200)
	default:
		size = 80 + r.Int64N(120)
	}

	*e = Event{
		Time:      t,
		Service:   serviceNames[svc],
		Host:      hostNames[svc*HostsPerService+r.IntN(HostsPerService)],
		Endpoint:  endpointNames[ep],
		Status:    status,
		LatencyMS: lat,
		Bytes:     size,
	}
	return true
}

// Events returns cfg's events in order, for range loops.
func Events(cfg GenConfig) iter.Seq[Event] {
	return func(yield func(Event) bool) {
		g := NewGenerator(cfg)
		var e Event
		for g.Next(&e) {
			if !yield(e) {
				return
			}
		}
	}
}

// Services returns the service names in Zipf rank order (the first is the busiest).
func Services() []string { return append([]string(nil), serviceNames[:]...) }

// Endpoints returns the endpoint names in Zipf rank order (the first is the busiest).
func Endpoints() []string { return append([]string(nil), endpointNames[:]...) }

// ServiceOfHost returns the service that runs on host, or an error for a name the
// generator does not produce.
func ServiceOfHost(host string) (string, error) {
	var n int
	if _, err := fmt.Sscanf(host, "host-%04d", &n); err != nil || n < 0 || n >= NumHosts || hostNames[n] != host {
		return "", fmt.Errorf("cannot map host %q to a service: not a generated host name", host)
	}
	return serviceNames[n/HostsPerService], nil
}

// Endpoint paths: every resource with every suffix. Index i is resource
// i%len(resources) with suffix i/len(resources), so the Zipf head holds the plain
// collection routes of every resource rather than every route of one resource.
var endpointResources = [...]string{
	"users", "orders", "items", "carts", "payments", "sessions", "search", "products",
	"reviews", "inventory", "shipments", "invoices", "accounts", "notifications",
	"messages", "feeds", "photos", "videos", "comments", "likes", "groups", "events",
	"tickets", "reports", "settings",
}

var endpointSuffixes = [...]struct {
	path     string
	medianMS float64
}{
	{"", 40},
	{"/{id}", 15},
	{"/{id}/status", 10},
	{"/count", 25},
	{"/recent", 50},
	{"/{id}/history", 80},
	{"/batch", 200},
	{"/export", 900},
}

var (
	serviceNames     [NumServices]string
	hostNames        [NumHosts]string
	endpointNames    [NumEndpoints]string
	endpointMedianMS [NumEndpoints]float64
	serviceLatency   [NumServices]float64 // latency factor per service
)

func init() {
	for i := range serviceNames {
		serviceNames[i] = fmt.Sprintf("svc-%02d", i)
		// ×0.6 … ×1.4, in no order related to the services' ranks.
		serviceLatency[i] = 0.6 + 0.1*float64(i*7%9)
		if serviceNames[i] == SlowService {
			serviceLatency[i] = 3
		}
	}
	for i := range hostNames {
		hostNames[i] = fmt.Sprintf("host-%04d", i)
	}
	nr := len(endpointResources)
	for i := range endpointNames {
		res, suf := i%nr, i/nr
		endpointNames[i] = "/api/v1/" + endpointResources[res] + endpointSuffixes[suf].path
		// Each resource is a little faster or slower than the next: ×0.5 … ×2.
		endpointMedianMS[i] = endpointSuffixes[suf].medianMS * (0.5 + 1.5*float64(res%7)/6)
	}
}
