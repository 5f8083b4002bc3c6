// Package sqltest runs data-driven test files for the SQL front end (packages
// query/sql and query/plan), in the manner of Prometheus' promqltest. A file is a
// list of cases:
//
//	# comments and blank lines are kept as they are
//	directive [args…]
//	SELECT … (one or more lines of input)
//	----
//	expected output (one or more lines, ending at a blank line or the end of file)
//
// With -rewrite, the expected output of every case is replaced by what the test
// produced, so that a change of behaviour is reviewed as a diff of the file.
//
// This package is for tests only; no production code may import it.
package sqltest

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/reef-db/reef/query/sql"
)

var rewrite = flag.Bool("rewrite", false, "rewrite the expected output in testdata files")

// Case is one test case of a file.
type Case struct {
	Directive string
	Args      []string
	Input     string
	Expected  string
	Line      int // 1-based line of the directive

	preamble []string // comment and blank lines before the case
}

// ParseFile reads the cases of a test file.
func ParseFile(path string) ([]Case, []string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, fmt.Errorf("cannot read test file: %w", err)
	}
	lines := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
	var cases []Case
	var pre []string
	for i := 0; i < len(lines); {
		l := lines[i]
		if strings.TrimSpace(l) == "" || strings.HasPrefix(l, "#") {
			pre = append(pre, l)
			i++
			continue
		}
		f := strings.Fields(l)
		c := Case{Directive: f[0], Args: f[1:], Line: i + 1, preamble: pre}
		pre = nil
		i++
		var in []string
		for ; i < len(lines) && lines[i] != "----"; i++ {
			in = append(in, lines[i])
		}
		if i == len(lines) {
			return nil, nil, fmt.Errorf("%s:%d: case has no ---- line", path, c.Line)
		}
		i++ // ----
		var out []string
		for ; i < len(lines) && strings.TrimSpace(lines[i]) != ""; i++ {
			out = append(out, lines[i])
		}
		c.Input = strings.Join(in, "\n")
		c.Expected = strings.Join(out, "\n")
		cases = append(cases, c)
	}
	return cases, pre, nil
}

// Run runs every case of every file matching pattern through run, which returns
// the case's output, and compares it with the expected output (or, with -rewrite,
// writes it into the file).
func Run(t *testing.T, pattern string, run func(t *testing.T, c Case) string) {
	t.Helper()
	files, err := filepath.Glob(pattern)
	if err != nil || len(files) == 0 {
		t.Fatalf("no test files match %s (%v)", pattern, err)
	}
	for _, path := range files {
		t.Run(filepath.Base(path), func(t *testing.T) {
			cases, tail, err := ParseFile(path)
			if err != nil {
				t.Fatal(err)
			}
			var b strings.Builder
			for _, c := range cases {
				got := strings.TrimRight(run(t, c), "\n")
				if strings.Contains(got, "\n\n") {
					t.Errorf("%s:%d: output holds a blank line, which the file format cannot show", path, c.Line)
				}
				if !*rewrite && got != c.Expected {
					t.Errorf("%s:%d: %s\n%s\n--- got:\n%s\n--- want:\n%s", path, c.Line, c.Directive, c.Input, got, c.Expected)
				}
				for _, l := range c.preamble {
					b.WriteString(l + "\n")
				}
				b.WriteString(strings.Join(append([]string{c.Directive}, c.Args...), " ") + "\n")
				b.WriteString(c.Input + "\n----\n" + got + "\n")
			}
			for _, l := range tail {
				b.WriteString(l + "\n")
			}
			if *rewrite {
				if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}

// Inputs returns the inputs of every case in the files matching pattern, as seeds
// for fuzz tests.
func Inputs(pattern string) ([]string, error) {
	files, err := filepath.Glob(pattern)
	if err != nil {
		return nil, err
	}
	var ins []string
	for _, path := range files {
		cases, _, err := ParseFile(path)
		if err != nil {
			return nil, err
		}
		for _, c := range cases {
			ins = append(ins, c.Input)
		}
	}
	return ins, nil
}

// FormatError renders an error for a test file: "error: <message>", and for an
// *sql.Error with a position, the line of the query it is on with a caret under
// the offending byte (both lines start with "| ", so that neither is blank).
func FormatError(query string, err error) string {
	s := "error: " + err.Error()
	var se *sql.Error
	if !errors.As(err, &se) || se.Pos <= 0 {
		return s
	}
	off := se.Pos - 1
	if off > len(query) {
		return s + "\n(position past the end of the query)"
	}
	start := strings.LastIndexByte(query[:off], '\n') + 1
	end := strings.IndexByte(query[off:], '\n')
	if end < 0 {
		end = len(query)
	} else {
		end += off
	}
	return s + "\n| " + query[start:end] + "\n| " + strings.Repeat(" ", off-start) + "^"
}
