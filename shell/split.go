package shell

import "strings"

// MaxStatementBytes bounds one statement; longer input is dropped with an error.
const MaxStatementBytes = 1 << 20

// splitter cuts input, fed a line at a time, into statements at every `;` that is not
// inside a quoted string or identifier ('…', "…") or a comment (-- to the end of
// the line, /* … */). A doubled quote inside a string ('it”s') needs no special case:
// it closes and reopens the string.
//
// It scans every byte once, however many lines a statement spans. Input is fed in
// whole lines, so the two bytes that open a comment always arrive together.
type splitter struct {
	buf     []byte
	scanned int  // bytes of buf already scanned
	quote   byte // open quote character, 0 if none
	line    bool // inside a -- comment
	block   bool // inside a /* */ comment
	code    bool // buf holds something besides blanks and comments
}

// feed appends text and returns the statements it completed, without their `;` and
// surrounding blanks. Statements made only of blanks and comments are dropped.
func (sp *splitter) feed(text string) []string {
	sp.buf = append(sp.buf, text...)
	var out []string
	start := 0
	for i := sp.scanned; i < len(sp.buf); i++ {
		c := sp.buf[i]
		var next byte
		if i+1 < len(sp.buf) {
			next = sp.buf[i+1]
		}
		switch {
		case sp.line:
			if c == '\n' {
				sp.line = false
			}
		case sp.block:
			if c == '*' && next == '/' {
				sp.block = false
				i++
			}
		case sp.quote != 0:
			if c == sp.quote {
				sp.quote = 0
			}
		case c == '-' && next == '-':
			sp.line = true
			i++
		case c == '/' && next == '*':
			sp.block = true
			i++
		case c == '\'' || c == '"':
			sp.quote = c
			sp.code = true
		case c == ';':
			if sp.code {
				out = append(out, strings.TrimSpace(string(sp.buf[start:i])))
			}
			start = i + 1
			sp.code = false
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
		default:
			sp.code = true
		}
	}
	sp.buf = append(sp.buf[:0], sp.buf[start:]...)
	sp.scanned = len(sp.buf)
	return out
}

// pending returns the text after the last complete statement.
func (sp *splitter) pending() string { return string(sp.buf) }

// empty reports whether nothing but blanks and comments is pending.
func (sp *splitter) empty() bool { return !sp.code && sp.quote == 0 && !sp.block }

// inQuote reports whether the pending text ends inside a quoted string or comment,
// where a line starting with `\` is text, not a command.
func (sp *splitter) inQuote() bool { return sp.quote != 0 || sp.block }

// rest returns the pending statement (blank if there is none) and resets.
func (sp *splitter) rest() string {
	s := ""
	if sp.code {
		s = strings.TrimSpace(string(sp.buf))
	}
	sp.reset()
	return s
}

func (sp *splitter) reset() {
	sp.buf = sp.buf[:0]
	sp.scanned = 0
	sp.quote, sp.line, sp.block, sp.code = 0, false, false, false
}

// size is the number of pending bytes.
func (sp *splitter) size() int { return len(sp.buf) }
