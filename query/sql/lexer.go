package sql

import (
	"math"
	"strconv"
	"strings"
	"unicode/utf8"
)

// tokKind is the kind of a token.
type tokKind uint8

const (
	tEOF      tokKind = iota
	tIdent            // bare identifier that is not a keyword
	tQIdent           // "quoted identifier"
	tString           // 'string literal'
	tInt              // 123
	tFloat            // 1.5, .5, 1e3
	tDuration         // 30s, 5m, 1h30m
	tComma            // ,
	tLParen           // (
	tRParen           // )
	tStar             // *
	tPlus             // +
	tMinus            // -
	tSlash            // /
	tSemi             // ;
	tEq               // =
	tNe               // != or <>
	tLt               // <
	tLe               // <=
	tGt               // >
	tGe               // >=
	tMatch            // ~ or =~
	tNotMatch         // !~

	// Keywords (case-insensitive).
	kSelect
	kFrom
	kWhere
	kGroup
	kBy
	kOrder
	kAsc
	kDesc
	kLimit
	kAnd
	kOr
	kNot
	kIn
	kLike
	kIs
	kNull
	kTrue
	kFalse
	kAs
	kBetween
	kDistinct
	kHaving
)

var keywords = map[string]tokKind{
	"select":   kSelect,
	"from":     kFrom,
	"where":    kWhere,
	"group":    kGroup,
	"by":       kBy,
	"order":    kOrder,
	"asc":      kAsc,
	"desc":     kDesc,
	"limit":    kLimit,
	"and":      kAnd,
	"or":       kOr,
	"not":      kNot,
	"in":       kIn,
	"like":     kLike,
	"is":       kIs,
	"null":     kNull,
	"true":     kTrue,
	"false":    kFalse,
	"as":       kAs,
	"between":  kBetween,
	"distinct": kDistinct,
	"having":   kHaving,
}

// maxKeywordLen is the length of the longest keyword.
const maxKeywordLen = 8

// lookupKeyword reports whether s is a keyword, ignoring case, without allocating.
func lookupKeyword(s string) (tokKind, bool) {
	if len(s) > maxKeywordLen {
		return 0, false
	}
	var buf [maxKeywordLen]byte
	for i := 0; i < len(s); i++ {
		buf[i] = lower(s[i])
	}
	k, ok := keywords[string(buf[:len(s)])]
	return k, ok
}

// IsKeyword reports whether s (in any case) is a reserved word, which must be
// double-quoted to be used as a column or table name.
func IsKeyword(s string) bool {
	_, ok := lookupKeyword(s)
	return ok
}

func lower(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// token is one lexical token. pos and end are 1-based byte offsets of its first byte
// and of the byte after it.
type token struct {
	kind tokKind
	pos  int
	text string  // the token as written
	str  string  // tString, tQIdent: the decoded value
	ival int64   // tInt, tDuration (seconds)
	fval float64 // tFloat
	big  bool    // tInt: too large for int64 (ival is not set)
}

// describe names the token for an error message: `"FORM"`, or "end of query".
func (t token) describe() string {
	if t.kind == tEOF {
		return "end of query"
	}
	return strconv.Quote(t.text)
}

// lexer splits the query into tokens on demand; it keeps no token list.
type lexer struct {
	src string
	off int // 0-based offset of the next unread byte
}

func isIdentStart(c byte) bool {
	return c == '_' || ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z')
}

func isIdentChar(c byte) bool {
	return isIdentStart(c) || isDigit(c) || c == '.'
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// next returns the next token, or a syntax error for text that is no token.
func (l *lexer) next() (token, error) {
	if err := l.skipSpace(); err != nil {
		return token{}, err
	}
	start := l.off
	if start >= len(l.src) {
		return token{kind: tEOF, pos: start + 1}, nil
	}
	c := l.src[start]
	switch {
	case isIdentStart(c):
		l.off++
		for l.off < len(l.src) && isIdentChar(l.src[l.off]) {
			l.off++
		}
		text := l.src[start:l.off]
		if k, ok := lookupKeyword(text); ok {
			return token{kind: k, pos: start + 1, text: text}, nil
		}
		return token{kind: tIdent, pos: start + 1, text: text, str: text}, nil
	case isDigit(c) || (c == '.' && start+1 < len(l.src) && isDigit(l.src[start+1])):
		return l.number()
	case c == '\'':
		s, err := l.quoted('\'', "string")
		if err != nil {
			return token{}, err
		}
		return token{kind: tString, pos: start + 1, text: l.src[start:l.off], str: s}, nil
	case c == '"':
		s, err := l.quoted('"', "quoted identifier")
		if err != nil {
			return token{}, err
		}
		if s == "" {
			return token{}, syntaxErrorf(start+1, "empty quoted identifier")
		}
		return token{kind: tQIdent, pos: start + 1, text: l.src[start:l.off], str: s}, nil
	}
	kind, n := tEOF, 1
	two := ""
	if start+1 < len(l.src) {
		two = l.src[start : start+2]
	}
	switch two {
	case "!=", "<>":
		kind, n = tNe, 2
	case "<=":
		kind, n = tLe, 2
	case ">=":
		kind, n = tGe, 2
	case "=~":
		kind, n = tMatch, 2
	case "!~":
		kind, n = tNotMatch, 2
	}
	if n == 1 {
		switch c {
		case ',':
			kind = tComma
		case '(':
			kind = tLParen
		case ')':
			kind = tRParen
		case '*':
			kind = tStar
		case '+':
			kind = tPlus
		case '-':
			kind = tMinus
		case '/':
			kind = tSlash
		case ';':
			kind = tSemi
		case '=':
			kind = tEq
		case '<':
			kind = tLt
		case '>':
			kind = tGt
		case '~':
			kind = tMatch
		default:
			r, _ := utf8.DecodeRuneInString(l.src[start:])
			return token{}, syntaxErrorf(start+1, "unexpected character %q", r)
		}
	}
	l.off += n
	return token{kind: kind, pos: start + 1, text: l.src[start:l.off]}, nil
}

// skipSpace skips white space, -- line comments and /* block comments */.
func (l *lexer) skipSpace() error {
	for l.off < len(l.src) {
		switch c := l.src[l.off]; {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v':
			l.off++
		case strings.HasPrefix(l.src[l.off:], "--"):
			end := strings.IndexByte(l.src[l.off:], '\n')
			if end < 0 {
				l.off = len(l.src)
			} else {
				l.off += end + 1
			}
		case strings.HasPrefix(l.src[l.off:], "/*"):
			end := strings.Index(l.src[l.off+2:], "*/")
			if end < 0 {
				return syntaxErrorf(l.off+1, "unterminated comment")
			}
			l.off += 2 + end + 2
		default:
			return nil
		}
	}
	return nil
}

// quoted reads a literal enclosed in q, where q written twice stands for one q.
// It returns the decoded text; it allocates only when the literal holds an escaped
// quote.
func (l *lexer) quoted(q byte, what string) (string, error) {
	start := l.off
	l.off++ // opening quote
	var b []byte
	from := l.off
	for {
		i := strings.IndexByte(l.src[l.off:], q)
		if i < 0 {
			l.off = len(l.src)
			return "", syntaxErrorf(start+1, "unterminated %s", what)
		}
		l.off += i + 1
		if l.off < len(l.src) && l.src[l.off] == q {
			b = append(b, l.src[from:l.off]...) // keep one quote
			l.off++
			from = l.off
			continue
		}
		if b == nil {
			return l.src[from : l.off-1], nil
		}
		b = append(b, l.src[from:l.off-1]...)
		return string(b), nil
	}
}

// durationUnits maps a duration unit to seconds.
func durationUnit(c byte) int64 {
	switch c {
	case 's':
		return 1
	case 'm':
		return 60
	case 'h':
		return 3600
	case 'd':
		return 86400
	case 'w':
		return 7 * 86400
	}
	return 0
}

// number reads an integer, a float, or a duration such as 30s or 1h30m.
func (l *lexer) number() (token, error) {
	start := l.off
	for l.off < len(l.src) && isDigit(l.src[l.off]) {
		l.off++
	}
	isFloat := false
	if l.off < len(l.src) && l.src[l.off] == '.' {
		isFloat = true
		l.off++
		for l.off < len(l.src) && isDigit(l.src[l.off]) {
			l.off++
		}
	}
	if l.off < len(l.src) && (l.src[l.off] == 'e' || l.src[l.off] == 'E') {
		// An exponent needs digits: 1e5, 1.5E-3.
		j := l.off + 1
		if j < len(l.src) && (l.src[j] == '+' || l.src[j] == '-') {
			j++
		}
		if j < len(l.src) && isDigit(l.src[j]) {
			isFloat = true
			l.off = j
			for l.off < len(l.src) && isDigit(l.src[l.off]) {
				l.off++
			}
		}
	}
	if !isFloat && l.off < len(l.src) && isIdentStart(l.src[l.off]) {
		return l.duration(start)
	}
	if l.off < len(l.src) && isIdentChar(l.src[l.off]) {
		return token{}, l.badNumber(start)
	}
	text := l.src[start:l.off]
	if isFloat {
		f, err := strconv.ParseFloat(text, 64)
		if err != nil || math.IsInf(f, 0) {
			return token{}, syntaxErrorf(start+1, "number %s is out of range", text)
		}
		return token{kind: tFloat, pos: start + 1, text: text, fval: f}, nil
	}
	i, err := strconv.ParseInt(text, 10, 64)
	if err != nil {
		// Out of range; -9223372036854775808 is handled by the parser, which asks
		// for the literal with its sign.
		return token{kind: tInt, pos: start + 1, text: text, big: true}, nil
	}
	return token{kind: tInt, pos: start + 1, text: text, ival: i}, nil
}

// duration reads the rest of a duration literal whose first number starts at start
// and ends at l.off: one or more <integer><unit> pairs, units s, m, h, d, w.
func (l *lexer) duration(start int) (token, error) {
	var total int64
	numStart := start
	for {
		n, err := strconv.ParseInt(l.src[numStart:l.off], 10, 64)
		unitStart := l.off
		for l.off < len(l.src) && isIdentStart(l.src[l.off]) {
			l.off++
		}
		unit := l.src[unitStart:l.off]
		if len(unit) != 1 || durationUnit(unit[0]) == 0 {
			switch unit {
			case "ms", "us", "ns":
				return token{}, l.badDuration(start, "durations have a resolution of seconds")
			case "e", "E":
				return token{}, l.badNumber(start)
			}
			if len(unit) != 1 {
				return token{}, l.badNumber(start)
			}
			return token{}, l.badDuration(start, "unknown unit "+strconv.Quote(unit))
		}
		mul := durationUnit(unit[0])
		if err != nil || n > (math.MaxInt64-total)/mul {
			return token{}, syntaxErrorf(start+1, "duration %s is out of range", l.src[start:l.off])
		}
		total += n * mul
		if l.off >= len(l.src) || !isDigit(l.src[l.off]) {
			break
		}
		numStart = l.off
		for l.off < len(l.src) && isDigit(l.src[l.off]) {
			l.off++
		}
		if l.off >= len(l.src) || !isIdentStart(l.src[l.off]) {
			break // 1h30 lacks a unit; reported below
		}
	}
	if l.off < len(l.src) && isIdentChar(l.src[l.off]) || isDigit(l.src[l.off-1]) {
		return token{}, l.badNumber(start)
	}
	return token{kind: tDuration, pos: start + 1, text: l.src[start:l.off], ival: total}, nil
}

// badDuration reports a duration that reef cannot read, such as 5M or 250ms.
func (l *lexer) badDuration(start int, why string) error {
	for l.off < len(l.src) && isIdentChar(l.src[l.off]) {
		l.off++
	}
	return syntaxErrorf(start+1, "invalid duration %q: %s (units are s, m, h, d and w)", l.src[start:l.off], why)
}

// badNumber reports a number run together with letters, such as 12abc or 1.5h.
func (l *lexer) badNumber(start int) error {
	for l.off < len(l.src) && isIdentChar(l.src[l.off]) {
		l.off++
	}
	return syntaxErrorf(start+1, "invalid number %q", l.src[start:l.off])
}
