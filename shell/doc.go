// Package shell is reef's interactive SQL client: `reef shell`. It reads SQL
// statements (ending at `;`, possibly over several lines) and `\`-commands, sends the
// statements to an aggregator through api.Client, and prints the answers as aligned
// tables (or CSV, JSON, NDJSON) with a coverage line under each, a caret under the
// position of a syntax error, and a sparkline under time series.
//
// In a terminal it edits lines with github.com/peterh/liner (history, Ctrl-R search,
// tab completion of keywords, functions, tables and the columns of the table in the
// FROM clause); Ctrl-C cancels the running query, not the shell. Without a terminal,
// or with -c, it runs the given statements and exits non-zero if any failed.
//
// The read-eval-print loop works over io.Reader/io.Writer and the LineReader
// interface, so that it runs the same under tests as in a terminal.
//
// This package talks to reef only through api.Client over HTTP: it must not import
// leaf, aggregator or query packages, and it keeps no state beyond its history file.
// docs/shell.md is the user's guide.
package shell
