package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/reef-db/reef/api"
	"github.com/reef-db/reef/leaf"
	"github.com/reef-db/reef/testbench"
)

// clusterUsage describes `reef cluster`, the small JSON helper of
// scripts/rolling-deploy.sh, so that the script needs nothing but bash and curl.
const clusterUsage = `usage: reef cluster ACTION ARGS

Reads and updates a local cluster's cluster.json (written by reef local) and reads
leaf stats, for scripts such as scripts/rolling-deploy.sh.

  reef cluster leaves FILE               one line per leaf, tab-separated:
                                         id url pid port data_dir shm_dir log
  reef cluster aggregators FILE          the aggregators' URLs, one per line
  reef cluster argv FILE ID [BINARY]     the leaf's recorded command line, each argument
                                         ended by a NUL byte; BINARY replaces the program
  reef cluster set-pid FILE ID PID [BINARY]
                                         record a new pid (and program) for the leaf
  reef cluster rows                      read a leaf's GET /v1/stats JSON on stdin and print
                                         "TABLE ROWS" per table, sorted by name
  reef cluster start-rows                the same for the rows it held when it became ready
  reef cluster handoff-rows              the same from the answer of POST /v1/admin/handoff:
                                         the rows it handed over
  reef cluster start                     read GET /v1/stats JSON on stdin and print the start
                                         info: "PATH DURATION_MS BLOCKS ROWS"
`

func runCluster(args []string) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(os.Stderr, clusterUsage)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	fail := func(err error) int {
		fmt.Fprintln(os.Stderr, "reef cluster:", err)
		return 1
	}
	usage := func() int {
		fmt.Fprint(os.Stderr, clusterUsage)
		return 2
	}
	action, rest := args[0], args[1:]
	switch action {
	case "leaves":
		if len(rest) != 1 {
			return usage()
		}
		f, err := testbench.ReadClusterFile(rest[0])
		if err != nil {
			return fail(err)
		}
		for _, p := range f.Processes {
			if p.Role == testbench.RoleLeaf {
				fmt.Printf("%s\t%s\t%d\t%d\t%s\t%s\t%s\n", p.ID, p.URL, p.PID, p.Port, p.DataDir, p.ShmDir, p.Log)
			}
		}
	case "aggregators":
		if len(rest) != 1 {
			return usage()
		}
		f, err := testbench.ReadClusterFile(rest[0])
		if err != nil {
			return fail(err)
		}
		for _, p := range f.Processes {
			if p.Role == testbench.RoleAggregator {
				fmt.Println(p.URL)
			}
		}
	case "argv":
		if len(rest) < 2 || len(rest) > 3 {
			return usage()
		}
		f, err := testbench.ReadClusterFile(rest[0])
		if err != nil {
			return fail(err)
		}
		i := slices.IndexFunc(f.Processes, func(p testbench.ProcessInfo) bool { return p.ID == rest[1] })
		if i < 0 {
			return fail(fmt.Errorf("no process %q in %s", rest[1], rest[0]))
		}
		argv := slices.Clone(f.Processes[i].Argv)
		if len(rest) == 3 && rest[2] != "" {
			argv[0] = rest[2]
		}
		for _, a := range argv {
			if strings.IndexByte(a, 0) >= 0 {
				return fail(fmt.Errorf("argument %q holds a NUL byte", a))
			}
			fmt.Print(a, "\x00")
		}
	case "set-pid":
		if len(rest) < 3 || len(rest) > 4 {
			return usage()
		}
		pid, err := strconv.Atoi(rest[2])
		if err != nil {
			return fail(fmt.Errorf("pid %q is not a number", rest[2]))
		}
		binary := ""
		if len(rest) == 4 {
			binary = rest[3]
		}
		if err := testbench.UpdateClusterFileProcess(rest[0], rest[1], pid, binary); err != nil {
			return fail(err)
		}
	case "rows", "start-rows", "handoff-rows", "start":
		if len(rest) != 0 {
			return usage()
		}
		data, err := io.ReadAll(io.LimitReader(os.Stdin, 64<<20))
		if err != nil {
			return fail(err)
		}
		var rows map[string]int64
		if action == "handoff-rows" {
			var hr leaf.HandoffResult
			if err := json.Unmarshal(data, &hr); err != nil {
				return fail(fmt.Errorf("standard input is not the JSON answer of POST /v1/admin/handoff: %w", err))
			}
			rows = hr.TableRows
		} else {
			var st api.Stats
			if err := json.Unmarshal(data, &st); err != nil {
				return fail(fmt.Errorf("standard input is not the JSON of GET /v1/stats: %w", err))
			}
			switch action {
			case "start":
				fmt.Printf("%s %.1f %d %d\n", st.Start.Path, st.Start.DurationMS, st.Start.Blocks, st.Start.Rows)
				return 0
			case "start-rows":
				rows = st.Start.Tables
			default:
				rows = make(map[string]int64, len(st.Tables))
				for n, t := range st.Tables {
					rows[n] = t.Rows
				}
			}
		}
		names := make([]string, 0, len(rows))
		for n := range rows {
			names = append(names, n)
		}
		slices.Sort(names)
		for _, n := range names {
			fmt.Printf("%s %d\n", n, rows[n])
		}
	default:
		fmt.Fprintf(os.Stderr, "reef cluster: unknown action %q\n\n", action)
		return usage()
	}
	return 0
}
