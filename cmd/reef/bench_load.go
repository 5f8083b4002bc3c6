package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/reef-db/reef/testbench"
	"github.com/reef-db/reef/testbench/bench"
)

// stringList is a repeatable string flag.
type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, " ") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

// clusterFlags are the flags that say which cluster a bench run drives.
type clusterFlags struct {
	url         string
	leaves      int
	aggregators int
	dir         string
	keep        bool
	leafArgs    stringList
	aggArgs     stringList
}

func (c *clusterFlags) register(fs *flag.FlagSet, withURL bool, leaves int) {
	if withURL {
		fs.StringVar(&c.url, "url", "", "aggregator of a running cluster to drive (default: start a local cluster)")
	}
	fs.IntVar(&c.leaves, "leaves", leaves, "leaf processes of the cluster started")
	fs.IntVar(&c.aggregators, "aggregators", 1, "aggregators of the cluster started (1: one root; M ≥ 2: a root over M-1)")
	fs.StringVar(&c.dir, "dir", "", "directory of the cluster started (default: a temporary one, kept only after a failure)")
	fs.BoolVar(&c.keep, "keep", false, "keep the cluster directory after a run that passed")
	fs.Var(&c.leafArgs, "leaf-arg", "extra argument for every leaf, e.g. --leaf-arg=--seal-age=1s (repeatable)")
	fs.Var(&c.aggArgs, "agg-arg", "extra argument for every aggregator (repeatable)")
}

func (c *clusterFlags) target() (bench.Target, error) {
	bin, err := os.Executable()
	if err != nil {
		return bench.Target{}, fmt.Errorf("cannot find the reef binary: %w", err)
	}
	return bench.Target{
		URL:  c.url,
		Keep: c.keep,
		Cluster: testbench.ClusterConfig{
			Binary:        bin,
			Dir:           c.dir,
			Leaves:        c.leaves,
			Aggregators:   c.aggregators,
			ExtraLeafArgs: c.leafArgs,
			ExtraAggArgs:  c.aggArgs,
		},
	}, nil
}

// scenarioFlags are the flags every scenario (load, query-load, chaos, deploy) has.
type scenarioFlags struct {
	cluster     clusterFlags
	table       string
	out         string
	duration    time.Duration
	rate        float64
	batchRows   int
	concurrency int
	clients     int
	interval    time.Duration
	timeout     time.Duration
	queries     stringList
	preload     int64
	floor       float64
	verify      bool
}

func (f *scenarioFlags) register(fs *flag.FlagSet, kind string, d scenarioFlags) {
	fs.StringVar(&f.table, "table", "", "table to load and query (default "+kind+"_<date>_<time>, new for each run)")
	fs.StringVar(&f.out, "out", "", "report directory (default bench-results/"+kind+"-<timestamp>)")
	fs.DurationVar(&f.duration, "duration", d.duration, "length of the measured phase")
	fs.Float64Var(&f.rate, "rate", d.rate, "ingest target in rows per second (0: as fast as acknowledged; negative: no ingest)")
	fs.IntVar(&f.batchRows, "batch-rows", bench.DefaultBatchRows, "rows per ingest request")
	fs.IntVar(&f.concurrency, "concurrency", bench.DefaultConcurrency, "ingest requests in flight")
	fs.IntVar(&f.clients, "clients", d.clients, "concurrent query clients (0: no queries)")
	fs.DurationVar(&f.interval, "interval", 0, "pause of each query client between queries (0: back to back)")
	fs.DurationVar(&f.timeout, "query-timeout", bench.DefaultQueryTimeout, "deadline each query asks for")
	fs.Var(&f.queries, "query", "SQL a query client runs, {table} standing for the table (repeatable; default: four typical queries)")
	fs.Int64Var(&f.preload, "preload", d.preload, "rows loaded before the measured phase (as fast as possible)")
	fs.Float64Var(&f.floor, "coverage-floor", d.floor, "fail the run if an answer's coverage falls below this percent (0: no floor)")
	fs.BoolVar(&f.verify, "verify", d.verify, "check afterwards that every acknowledged row is present exactly once")
}

func (f *scenarioFlags) scenario(kind string, args []string) (bench.Scenario, error) {
	t, err := f.cluster.target()
	if err != nil {
		return bench.Scenario{}, err
	}
	s := bench.Scenario{
		Kind:          kind,
		Target:        t,
		Table:         f.table,
		Duration:      f.duration,
		Preload:       f.preload,
		CoverageFloor: f.floor,
		Verify:        f.verify,
		OutDir:        f.out,
		Command:       strings.TrimSpace("reef bench " + kind + " " + strings.Join(args, " ")),
		Progress:      os.Stderr,
	}
	if s.OutDir == "" {
		s.OutDir = bench.DefaultOutDir(kind, time.Now())
	}
	if f.rate >= 0 {
		s.Load = &bench.LoadConfig{Rate: f.rate, BatchRows: f.batchRows, Concurrency: f.concurrency}
	}
	if f.clients > 0 {
		s.Queries = &bench.QueryConfig{Clients: f.clients, Interval: f.interval, Timeout: f.timeout, Queries: f.queries}
	}
	return s, nil
}

// runScenario runs s, prints its summary and says where the report is.
func runScenario(name string, s bench.Scenario) int {
	return runReport(name, s.OutDir, func(ctx context.Context) (*bench.Report, error) { return bench.Run(ctx, s) })
}

// runReport runs a benchmark that writes a report into outDir, stopping it on
// Ctrl-C or SIGTERM; it prints the summary, says where the report is, and returns
// the exit status (1 when the run failed or its checks did not pass).
func runReport(name, outDir string, run func(context.Context) (*bench.Report, error)) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	rep, err := run(ctx)
	if rep != nil {
		fmt.Println()
		for _, row := range rep.Summary {
			fmt.Printf("%-18s %s\n", row.Name, row.Value)
		}
	}
	if err != nil {
		if errors.Is(err, context.Canceled) {
			fmt.Fprintf(os.Stderr, "%s: interrupted\n", name)
		} else {
			fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
		}
		if rep != nil {
			fmt.Fprintf(os.Stderr, "report in %s\n", outDir)
		}
		return 1
	}
	fmt.Fprintf(os.Stderr, "report in %s (%s, %s, %s)\n", outDir, bench.ReportMarkdown, bench.ReportJSON, strings.Join(rep.Plots, ", "))
	if !rep.Passed() {
		return 1
	}
	return 0
}

func runBenchLoad(args []string) int {
	fs := flag.NewFlagSet("reef bench load", flag.ExitOnError)
	var f scenarioFlags
	f.cluster.register(fs, true, testbench.DefaultLeaves)
	f.register(fs, "load", scenarioFlags{duration: 30 * time.Second, rate: 0, verify: true})
	_ = fs.Parse(args)
	if fs.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "reef bench load: unexpected arguments %q\n", fs.Args())
		return 2
	}
	if f.rate < 0 {
		fmt.Fprintln(os.Stderr, "reef bench load: --rate must be ≥ 0")
		return 2
	}
	s, err := f.scenario("load", args)
	if err != nil {
		fmt.Fprintln(os.Stderr, "reef bench load:", err)
		return 1
	}
	return runScenario("reef bench load", s)
}

func runBenchQueryLoad(args []string) int {
	fs := flag.NewFlagSet("reef bench query-load", flag.ExitOnError)
	var f scenarioFlags
	f.cluster.register(fs, true, testbench.DefaultLeaves)
	f.register(fs, "query-load", scenarioFlags{duration: 30 * time.Second, rate: -1, clients: 4, preload: 1_000_000})
	_ = fs.Parse(args)
	if fs.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "reef bench query-load: unexpected arguments %q\n", fs.Args())
		return 2
	}
	if f.clients <= 0 {
		fmt.Fprintln(os.Stderr, "reef bench query-load: --clients must be ≥ 1")
		return 2
	}
	if f.cluster.url != "" && f.table == "" {
		fmt.Fprintln(os.Stderr, "reef bench query-load: with --url, give the --table to query (and --preload 0 to load nothing)")
		return 2
	}
	s, err := f.scenario("query-load", args)
	if err != nil {
		fmt.Fprintln(os.Stderr, "reef bench query-load:", err)
		return 1
	}
	return runScenario("reef bench query-load", s)
}

func runBenchChaos(args []string) int {
	fs := flag.NewFlagSet("reef bench chaos", flag.ExitOnError)
	var f scenarioFlags
	f.cluster.register(fs, false, testbench.DefaultLeaves)
	f.register(fs, "chaos", scenarioFlags{duration: time.Minute, rate: 20_000, clients: 2, verify: true})
	faults := fs.String("faults", "kill,stop,restart", "faults in turn: kill (kill -9, then start again), stop (SIGSTOP, then SIGCONT), restart (SIGTERM, then start again)")
	every := fs.Duration("every", bench.DefaultFaultEvery, "time between the starts of two faults")
	down := fs.Duration("down", bench.DefaultFaultDown, "how long a killed leaf stays down and a stopped one stopped")
	_ = fs.Parse(args)
	if fs.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "reef bench chaos: unexpected arguments %q\n", fs.Args())
		return 2
	}
	kinds, err := bench.ParseFaultKinds(*faults)
	if err != nil {
		fmt.Fprintln(os.Stderr, "reef bench chaos:", err)
		return 2
	}
	s, err := f.scenario("chaos", args)
	if err != nil {
		fmt.Fprintln(os.Stderr, "reef bench chaos:", err)
		return 1
	}
	s.Faults = &bench.FaultConfig{Kinds: kinds, Every: *every, Down: *down}
	return runScenario("reef bench chaos", s)
}

func runBenchDeploy(args []string) int {
	fs := flag.NewFlagSet("reef bench deploy", flag.ExitOnError)
	var f scenarioFlags
	f.cluster.register(fs, false, testbench.DefaultLeaves)
	f.register(fs, "deploy", scenarioFlags{rate: 20_000, clients: 2, verify: true})
	script := fs.String("script", "", "the rolling deploy script (default: scripts/rolling-deploy.sh of the repository)")
	var scriptArgs stringList
	fs.Var(&scriptArgs, "script-arg", "extra argument for the script, before the cluster directory (repeatable)")
	around := fs.Duration("around", bench.DefaultDeployAround, "load and queries before the deploy starts and after it ends")
	_ = fs.Parse(args)
	if fs.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "reef bench deploy: unexpected arguments %q\n", fs.Args())
		return 2
	}
	s, err := f.scenario("deploy", args)
	if err != nil {
		fmt.Fprintln(os.Stderr, "reef bench deploy:", err)
		return 1
	}
	s.Deploy = &bench.DeployConfig{Script: *script, Args: scriptArgs, Before: *around, After: *around}
	return runScenario("reef bench deploy", s)
}
