package shell

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"time"

	"github.com/peterh/liner"

	"github.com/reef-db/reef/api"
	"github.com/reef-db/reef/internal/auth"
)

// DefaultAddr is the aggregator the shell talks to unless told otherwise.
const DefaultAddr = "http://127.0.0.1:7070"

// DefaultPager pages long tables when $PAGER is not set.
const DefaultPager = "less -FRSX"

// maxTokenBytes bounds a token file.
const maxTokenBytes = 64 << 10

// Options configure Run. The zero value of every field is a sensible default except
// the streams, which Main sets to the process's own.
type Options struct {
	Addr        string        // aggregator URL; default DefaultAddr
	Token       string        // bearer token; empty: none
	TLSCAFile   string        // PEM CA file to trust for an https:// Addr; empty: the system's CAs
	Command     string        // run these statements/commands and exit (-c)
	Format      string        // table (default), csv, json, ndjson
	Timeout     time.Duration // per query; 0: the server's default
	MinCoverage float64       // percent; 0: any

	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer

	// HistoryFile keeps the interactive history; default
	// os.UserConfigDir()/reef/history, "-" for none.
	HistoryFile string
	// Client, when set, is used instead of one made for Addr and Token.
	Client *api.Client
}

// Flags registers the shell's command-line flags on fs, writing into o. tokenFile
// receives --token-file; Main resolves it (and REEF_TOKEN) with Token.
func (o *Options) Flags(fs *flag.FlagSet, tokenFile *string) {
	fs.StringVar(&o.Addr, "addr", DefaultAddr, "`URL` of the aggregator")
	fs.StringVar(&o.Command, "c", "", "run the `SQL` statements (separated by ';') or \\-command and exit")
	fs.StringVar(&o.Format, "format", FormatTable, "output `format`: table, csv, json or ndjson")
	fs.DurationVar(&o.Timeout, "timeout", 0, "query timeout, e.g. 5s (0: the server's default)")
	fs.Float64Var(&o.MinCoverage, "min-coverage", 0, "fail queries that cover less than this `percent` of the data")
	fs.StringVar(tokenFile, "token-file", "", "read the bearer token from this `file` (default: $REEF_TOKEN, else $REEF_QUERY_TOKEN)")
	fs.StringVar(&o.TLSCAFile, "tls-ca", "", "PEM `file` of CA certificates to trust for an https:// --addr (e.g. a self-signed certificate)")
	fs.StringVar(&o.HistoryFile, "history", "", "history `file` (default: <config dir>/reef/history; - for none)")
}

// Token returns the bearer token: the contents of tokenFile if one is given, else
// $REEF_TOKEN, else $REEF_QUERY_TOKEN (the aggregator's query token).
func Token(tokenFile string) (string, error) {
	if tokenFile == "" {
		if tok := strings.TrimSpace(os.Getenv("REEF_TOKEN")); tok != "" {
			return tok, nil
		}
		return strings.TrimSpace(os.Getenv(auth.EnvQueryToken)), nil
	}
	f, err := os.Open(tokenFile)
	if err != nil {
		return "", fmt.Errorf("cannot read token file: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxTokenBytes+1))
	if err != nil {
		return "", fmt.Errorf("cannot read token file %s: %w", tokenFile, err)
	}
	if len(b) > maxTokenBytes {
		return "", fmt.Errorf("token file %s is larger than %d bytes", tokenFile, maxTokenBytes)
	}
	tok := strings.TrimSpace(string(b))
	if tok == "" || strings.ContainsAny(tok, "\r\n") {
		return "", fmt.Errorf("token file %s must hold one non-empty line", tokenFile)
	}
	return tok, nil
}

// Main is `reef shell`: it parses args (the arguments after the subcommand), runs the
// shell on the process's standard streams, and returns the exit status: 0, 1 if any
// statement failed (in -c or script mode), 2 for bad usage.
func Main(ctx context.Context, args []string) int {
	var o Options
	var tokenFile string
	fs := flag.NewFlagSet("reef shell", flag.ContinueOnError)
	fs.SetOutput(os.Stderr)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "Usage: reef shell [flags]\n\nInteractive SQL shell of a reef aggregator; see docs/shell.md.\n\nFlags:")
		fs.PrintDefaults()
	}
	o.Flags(fs, &tokenFile)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "reef shell: unexpected argument %q (use -c to run SQL)\n", fs.Arg(0))
		return 2
	}
	tok, err := Token(tokenFile)
	if err != nil {
		fmt.Fprintf(os.Stderr, "reef shell: %v\n", err)
		return 2
	}
	o.Token = tok
	o.Stdin, o.Stdout, o.Stderr = os.Stdin, os.Stdout, os.Stderr
	return Run(ctx, o)
}

// Run runs the shell with o and returns the exit status (see Main).
//
// With o.Command it runs that and exits. Otherwise, when Stdin and Stdout are both
// terminals, it is interactive: liner edits lines, Ctrl-C cancels the query in
// flight, and the history is kept. Otherwise it runs the statements read from Stdin.
func Run(ctx context.Context, o Options) int {
	if o.Stdin == nil {
		o.Stdin = strings.NewReader("")
	}
	if o.Stdout == nil {
		o.Stdout = io.Discard
	}
	if o.Stderr == nil {
		o.Stderr = io.Discard
	}
	if o.Format == "" {
		o.Format = FormatTable
	}
	if !validFormat(o.Format) {
		fmt.Fprintf(o.Stderr, "reef shell: unknown format %q; want one of %s\n", o.Format, strings.Join(Formats, ", "))
		return 2
	}
	if o.Timeout < 0 {
		fmt.Fprintf(o.Stderr, "reef shell: negative timeout %s\n", o.Timeout)
		return 2
	}
	if o.MinCoverage < 0 || o.MinCoverage > 100 {
		fmt.Fprintf(o.Stderr, "reef shell: min coverage %g out of range: want a percentage from 0 to 100\n", o.MinCoverage)
		return 2
	}
	client := o.Client
	if client == nil {
		addr := o.Addr
		if addr == "" {
			addr = DefaultAddr
		}
		client = api.NewClient(addr)
		client.Token = o.Token
		defer client.HTTP.CloseIdleConnections()
		if o.TLSCAFile != "" {
			cfg, err := auth.ClientTLS(o.TLSCAFile)
			if err == nil {
				err = client.SetTLSConfig(cfg)
			}
			if err != nil {
				fmt.Fprintf(o.Stderr, "reef shell: %v\n", err)
				return 2
			}
		}
	}

	interactive := o.Command == "" && isTerminalStream(o.Stdin) && isTerminalStream(o.Stdout)
	s := New(Config{
		Client:      client,
		Stdout:      o.Stdout,
		Stderr:      o.Stderr,
		Interactive: interactive,
		Format:      o.Format,
		Timeout:     o.Timeout,
		MinCoverage: o.MinCoverage,
		Pager:       pagerCommand(),
		Color:       os.Getenv("NO_COLOR") == "" && os.Getenv("TERM") != "dumb",
	})
	defer s.Close()

	var err error
	switch {
	case o.Command != "":
		err = s.RunScript(ctx, strings.NewReader(o.Command))
	case interactive:
		err = runInteractive(ctx, s, client, o)
	default:
		err = s.RunScript(ctx, o.Stdin)
	}
	if err != nil && !errors.Is(err, context.Canceled) {
		fmt.Fprintf(o.Stderr, "reef shell: %v\n", err)
		return 1
	}
	if !interactive && (s.Failed() > 0 || err != nil) {
		return 1
	}
	return 0
}

// runInteractive runs the loop under liner, with SIGINT cancelling the query in
// flight.
func runInteractive(ctx context.Context, s *Shell, client *api.Client, o Options) error {
	ln := liner.NewLiner()
	defer ln.Close()
	ln.SetCtrlCAborts(true)
	ln.SetMultiLineMode(true)
	ln.SetTabCompletionStyle(liner.TabPrints)
	ln.SetWordCompleter(s.Complete)

	history := o.HistoryFile
	if history == "" {
		if dir, err := os.UserConfigDir(); err == nil {
			history = filepath.Join(dir, "reef", "history")
		}
	}
	if history != "-" && history != "" {
		loadHistory(ln, history, o.Stderr)
		defer saveHistory(ln, history, o.Stderr)
	}

	// While a query runs the terminal sends SIGINT for Ctrl-C; at the prompt liner
	// reads it as a key. Either way the shell itself stays.
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt)
	defer signal.Stop(sig)
	done := make(chan struct{})
	defer close(done)
	go func() {
		for {
			select {
			case <-sig:
				s.Interrupt()
			case <-done:
				return
			}
		}
	}()

	fmt.Fprintf(o.Stdout, "reef shell · %s · \\help for help, \\q to quit\n", client.BaseURL)
	return s.Loop(ctx, linerReader{ln})
}

// linerReader adapts liner to LineReader.
type linerReader struct{ st *liner.State }

func (l linerReader) Prompt(p string) (string, error) {
	line, err := l.st.Prompt(p)
	if errors.Is(err, liner.ErrPromptAborted) {
		return "", ErrInterrupted
	}
	return line, err
}

func (l linerReader) AppendHistory(entry string) { l.st.AppendHistory(entry) }

// loadHistory reads the history file, if there is one. liner keeps at most
// liner.HistoryLimit entries.
func loadHistory(ln *liner.State, path string, stderr io.Writer) {
	f, err := os.Open(path)
	if err != nil {
		if !errors.Is(err, os.ErrNotExist) {
			fmt.Fprintf(stderr, "warning: cannot read history: %v\n", err)
		}
		return
	}
	defer f.Close()
	if _, err := ln.ReadHistory(f); err != nil {
		fmt.Fprintf(stderr, "warning: cannot read history %s: %v\n", path, err)
	}
}

// saveHistory writes the history file through a temporary file and a rename, so
// that a crash never leaves it half written.
func saveHistory(ln *liner.State, path string, stderr io.Writer) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		fmt.Fprintf(stderr, "warning: cannot save history: %v\n", err)
		return
	}
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		fmt.Fprintf(stderr, "warning: cannot save history: %v\n", err)
		return
	}
	_, werr := ln.WriteHistory(f)
	cerr := f.Close()
	if werr == nil {
		werr = cerr
	}
	if werr == nil {
		werr = os.Rename(tmp, path)
	}
	if werr != nil {
		os.Remove(tmp)
		fmt.Fprintf(stderr, "warning: cannot save history %s: %v\n", path, werr)
	}
}

// pagerCommand returns $PAGER, or DefaultPager when $PAGER is unset and less is
// installed. A $PAGER set to the empty string turns paging off.
func pagerCommand() string {
	if p, ok := os.LookupEnv("PAGER"); ok {
		return strings.TrimSpace(p)
	}
	if _, err := exec.LookPath("less"); err != nil {
		return ""
	}
	return DefaultPager
}

// isTerminalStream reports whether a stream is a terminal.
func isTerminalStream(v any) bool {
	f, ok := v.(interface{ Fd() uintptr })
	return ok && isTerminal(f.Fd())
}
