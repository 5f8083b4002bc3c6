package shell

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/reef-db/reef/api"
)

// Keywords and Functions are what tab completion offers besides table and column
// names.
var (
	Keywords = []string{
		"SELECT", "FROM", "WHERE", "GROUP", "BY", "ORDER", "LIMIT", "AND", "OR", "NOT",
		"IN", "LIKE", "IS", "NULL", "ASC", "DESC", "AS", "TRUE", "FALSE", "BETWEEN",
		"DISTINCT", "HAVING",
	}
	Functions = []string{
		"count", "sum", "avg", "min", "max", "p50", "p90", "p95", "p99", "p999",
		"percentile", "count_distinct", "time", "now", "has", "has_any", "has_all",
	}
)

// maxCompletions bounds the candidates offered for one Tab.
const maxCompletions = 200

// fromTable finds the table named in a FROM clause.
var fromTable = regexp.MustCompile(`(?i)\bfrom\s+(?:"([^"]+)"|([A-Za-z_][A-Za-z0-9_.\-]*))`)

// lastWordBefore finds the last word before the word being completed.
var lastWordBefore = regexp.MustCompile(`([A-Za-z_]+)\s+$`)

// Complete offers completions for the word before the cursor in line (pos counts
// runes, as liner passes it). It has liner's WordCompleter shape: the text before the
// word, the candidate words, the text after the cursor.
//
// After FROM (and for \d) it offers table names; elsewhere the columns of the table
// named in the FROM clause of the statement being typed (which may have begun on an
// earlier line), then functions, then keywords in the case the word is typed in.
func (s *Shell) Complete(line string, pos int) (head string, completions []string, tail string) {
	runes := []rune(line)
	pos = min(max(pos, 0), len(runes))
	before, tail := string(runes[:pos]), string(runes[pos:])
	ws := len(before)
	for ws > 0 && isWordByte(before[ws-1]) {
		ws--
	}
	head, word := before[:ws], before[ws:]

	ctx, cancel := context.WithTimeout(context.Background(), completionTimeout)
	defer cancel()

	trimmed := strings.TrimLeft(line, " \t")
	if strings.HasPrefix(trimmed, `\`) && !s.split.inQuote() {
		return s.completeCommand(ctx, before, head, word, tail)
	}

	var cands []string
	if m := lastWordBefore.FindStringSubmatch(head); m != nil && strings.EqualFold(m[1], "from") {
		cands = s.schema.tableNames(ctx)
	} else {
		text := s.split.pending() + line
		if m := fromTable.FindStringSubmatch(text); m != nil {
			table := m[1] + m[2]
			for _, c := range s.schema.columns(ctx, table) {
				cands = append(cands, c.Name)
			}
		}
		for _, f := range Functions {
			cands = append(cands, f+"(")
		}
		if word != "" {
			upper := strings.IndexFunc(word, unicode.IsUpper) >= 0
			for _, k := range Keywords {
				if !upper {
					k = strings.ToLower(k)
				}
				cands = append(cands, k)
			}
		}
	}
	return head, matchPrefix(cands, word), tail
}

// completeCommand completes a `\`-command, or its argument: a table for \d, a format
// for \format, a file for \i and \o.
func (s *Shell) completeCommand(ctx context.Context, before, head, word, tail string) (string, []string, string) {
	fields := strings.Fields(before)
	if len(fields) == 0 || (len(fields) == 1 && !strings.HasSuffix(before, " ")) {
		// Completing the command name itself; the word excludes the backslash.
		var names []string
		for _, c := range commands {
			names = append(names, strings.TrimPrefix(c.name, `\`))
		}
		return head, matchPrefix(names, word), tail
	}
	switch fields[0] {
	case `\d`:
		return head, matchPrefix(s.schema.tableNames(ctx), word), tail
	case `\format`:
		return head, matchPrefix(Formats, word), tail
	case `\timing`, `\x`:
		return head, matchPrefix([]string{"on", "off"}, word), tail
	case `\i`, `\o`:
		// File names may hold any character: take the whole last argument.
		arg := ""
		if !strings.HasSuffix(before, " ") {
			arg = fields[len(fields)-1]
		}
		h := before[:len(before)-len(arg)]
		return h, completeFile(arg), tail
	}
	return head, nil, tail
}

// completeFile lists the files and directories whose path starts with prefix.
func completeFile(prefix string) []string {
	matches, err := filepath.Glob(globEscape(prefix) + "*")
	if err != nil {
		return nil
	}
	if len(matches) > maxCompletions {
		matches = matches[:maxCompletions]
	}
	for i, m := range matches {
		if fi, err := os.Stat(m); err == nil && fi.IsDir() {
			matches[i] = m + string(filepath.Separator)
		}
	}
	return matches
}

func globEscape(s string) string {
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune(`*?[\`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// isWordByte reports whether c can be part of a completed name: letters, digits,
// '_' and '.', since flattened JSON gives columns dotted names.
func isWordByte(c byte) bool {
	return c == '_' || c == '.' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= 0x80
}

// matchPrefix keeps the candidates that start with word (ignoring case), without
// duplicates, in their given order, at most maxCompletions.
func matchPrefix(cands []string, word string) []string {
	var out []string
	seen := make(map[string]bool)
	lw := strings.ToLower(word)
	for _, c := range cands {
		if seen[c] || !strings.HasPrefix(strings.ToLower(c), lw) {
			continue
		}
		seen[c] = true
		out = append(out, c)
		if len(out) == maxCompletions {
			break
		}
	}
	return out
}

// Bounds of the schema cache.
const (
	schemaTTL          = 30 * time.Second
	completionTimeout  = 2 * time.Second
	maxCachedSchemas   = 256
	maxCachedTableList = 10_000
)

// schemaCache keeps table names and columns fetched for completion for a short
// time, so that pressing Tab does not cost a round trip every time. A failed fetch is
// remembered too, so that an unreachable server delays Tab at most once per TTL.
type schemaCache struct {
	client *api.Client
	now    func() time.Time

	mu       sync.Mutex
	tables   []string
	tablesAt time.Time
	cols     map[string]cachedColumns
}

type cachedColumns struct {
	cols []api.ColumnInfo
	at   time.Time
}

func newSchemaCache(c *api.Client) *schemaCache {
	return &schemaCache{client: c, now: time.Now, cols: make(map[string]cachedColumns)}
}

// tableNames returns the tables' names, sorted.
func (c *schemaCache) tableNames(ctx context.Context) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.tablesAt.IsZero() && c.now().Sub(c.tablesAt) < schemaTTL {
		return c.tables
	}
	ts, err := c.client.Tables(ctx)
	c.tablesAt = c.now()
	if err != nil {
		return c.tables // stale is better than nothing
	}
	c.storeLocked(ts)
	return c.tables
}

// columns returns the columns of table, or nil if it cannot be described.
func (c *schemaCache) columns(ctx context.Context, table string) []api.ColumnInfo {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.cols[table]; ok && c.now().Sub(e.at) < schemaTTL {
		return e.cols
	}
	t, err := c.client.Table(ctx, table)
	if err != nil {
		c.putLocked(table, c.cols[table].cols)
		return c.cols[table].cols
	}
	c.putLocked(table, t.Columns)
	return t.Columns
}

// store records a fresh table list (with columns where the server sent them).
func (c *schemaCache) store(ts []api.TableStats) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.tablesAt = c.now()
	c.storeLocked(ts)
}

func (c *schemaCache) storeLocked(ts []api.TableStats) {
	names := make([]string, 0, min(len(ts), maxCachedTableList))
	for _, t := range ts {
		if len(names) == maxCachedTableList {
			break
		}
		names = append(names, t.Name)
		if len(t.Columns) > 0 {
			c.putLocked(t.Name, t.Columns)
		}
	}
	sort.Strings(names)
	c.tables = names
}

// put caches the columns of one table.
func (c *schemaCache) put(table string, cols []api.ColumnInfo) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.putLocked(table, cols)
}

// putLocked caches the columns of one table, evicting the oldest entry when full.
func (c *schemaCache) putLocked(table string, cols []api.ColumnInfo) {
	if _, ok := c.cols[table]; !ok && len(c.cols) >= maxCachedSchemas {
		oldest := ""
		var at time.Time
		for k, e := range c.cols {
			if oldest == "" || e.at.Before(at) {
				oldest, at = k, e.at
			}
		}
		delete(c.cols, oldest)
	}
	c.cols[table] = cachedColumns{cols: cols, at: c.now()}
}
