package shell

import (
	"strconv"
	"strings"
	"unicode/utf8"
)

// caretContext bounds how much of a long line is shown around an error position.
const caretContext = 60

// caretLines shows where in sql an error is: the line holding the 1-based byte
// offset pos and, under it, a caret at that byte. A multi-line query is shown as
// "LINE n: …". pos = len(sql)+1 points just past the end (an unexpected end of
// input). It returns nil when pos is outside sql.
//
//	SELECT count( FROM events
//	              ^
func caretLines(sql string, pos int) []string {
	if pos < 1 || pos > len(sql)+1 {
		return nil
	}
	off := pos - 1
	for off > 0 && off < len(sql) && !utf8.RuneStart(sql[off]) {
		off-- // inside a multi-byte character: point at its start
	}
	start := strings.LastIndexByte(sql[:off], '\n') + 1
	end := len(sql)
	if i := strings.IndexByte(sql[off:], '\n'); i >= 0 {
		end = off + i
	}
	line := strings.TrimRight(sql[start:end], "\r")
	col := off - start
	if col > len(line) {
		col = len(line)
	}
	before, after := line[:col], line[col:]

	// Cut long lines to a window around the caret.
	if n := utf8.RuneCountInString(before); n > caretContext {
		before = "…" + string([]rune(before)[n-caretContext:])
	}
	if n := utf8.RuneCountInString(after); n > caretContext {
		after = string([]rune(after)[:caretContext]) + "…"
	}

	prefix := "  "
	if strings.Contains(sql, "\n") {
		prefix = "LINE " + strconv.Itoa(1+strings.Count(sql[:start], "\n")) + ": "
	}
	var pad strings.Builder
	pad.WriteString(strings.Repeat(" ", len(prefix)))
	for _, r := range before {
		if r == '\t' {
			pad.WriteByte('\t') // keeps the caret under the text whatever the tab stops
		} else {
			pad.WriteByte(' ')
		}
	}
	return []string{prefix + sanitizeLine(before+after), pad.String() + "^"}
}

// sanitizeLine replaces control characters other than tab with spaces, so that the
// caret still lines up under a line that held them.
func sanitizeLine(s string) string {
	return strings.Map(func(r rune) rune {
		if (r < ' ' && r != '\t') || r == 0x7f {
			return ' '
		}
		return r
	}, s)
}
