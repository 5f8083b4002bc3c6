package sql

import (
	"math"
	"strconv"
	"strings"
	"unicode/utf8"
)

// MaxQueryLen bounds the length of a query in bytes.
const MaxQueryLen = 1 << 20

// maxDepth bounds the nesting of expressions, so that no query can exhaust the
// stack.
const maxDepth = 200

// Parse parses one query. Errors are *Error.
func Parse(q string) (*Query, error) {
	if len(q) > MaxQueryLen {
		return nil, Errorf(0, "query is %d bytes long; the limit is %d", len(q), MaxQueryLen)
	}
	if !utf8.ValidString(q) {
		return nil, syntaxErrorf(invalidUTF8(q)+1, "invalid UTF-8")
	}
	p := &parser{lx: lexer{src: q}}
	if err := p.advance(); err != nil {
		return nil, err
	}
	return p.query()
}

// invalidUTF8 returns the offset of the first byte of q that is not valid UTF-8.
func invalidUTF8(q string) int {
	for i, r := range q {
		if r == utf8.RuneError {
			if _, n := utf8.DecodeRuneInString(q[i:]); n == 1 {
				return i
			}
		}
	}
	return len(q)
}

// parser is a recursive-descent parser with one token of lookahead.
//
//	query       = SELECT item {"," item} FROM name [WHERE expr]
//	              [GROUP BY expr {"," expr}] [ORDER BY term {"," term}]
//	              [LIMIT int] [";"]
//	item        = "*" | expr [[AS] name]
//	term        = expr [ASC | DESC]
//	expr        = and {OR and}
//	and         = not {AND not}
//	not         = NOT not | predicate
//	predicate   = sum [cmp sum | [NOT] IN "(" expr {"," expr} ")"
//	              | [NOT] LIKE sum | [NOT] BETWEEN sum AND sum | IS [NOT] NULL]
//	cmp         = "=" | "!=" | "<>" | "<" | "<=" | ">" | ">=" | "~" | "=~" | "!~"
//	sum         = product {("+" | "-") product}
//	product     = unary {("*" | "/") unary}
//	unary       = ("-" | "+") unary | primary
//	primary     = literal | name | func "(" [args] ")" | "(" expr ")"
type parser struct {
	lx    lexer
	tok   token
	depth int
}

func (p *parser) advance() error {
	t, err := p.lx.next()
	if err != nil {
		return err
	}
	p.tok = t
	return nil
}

// expect consumes a token of kind k, described as what in the error otherwise.
func (p *parser) expect(k tokKind, what string) error {
	if p.tok.kind != k {
		return p.unexpected(what)
	}
	return p.advance()
}

func (p *parser) unexpected(what string) error {
	return syntaxErrorf(p.tok.pos, "expected %s, found %s", what, p.tok.describe())
}

// accept consumes a token of kind k if it is next.
func (p *parser) accept(k tokKind) (bool, error) {
	if p.tok.kind != k {
		return false, nil
	}
	return true, p.advance()
}

func (p *parser) query() (*Query, error) {
	if err := p.expect(kSelect, "SELECT"); err != nil {
		return nil, err
	}
	q := &Query{}
	if err := p.commaList(func() error {
		it, err := p.selectItem()
		q.Select = append(q.Select, it)
		return err
	}); err != nil {
		return nil, err
	}
	if err := p.expect(kFrom, "FROM"); err != nil {
		return nil, err
	}
	from, err := p.name("table name")
	if err != nil {
		return nil, err
	}
	q.From = from
	if ok, err := p.accept(kWhere); err != nil {
		return nil, err
	} else if ok {
		if q.Where, err = p.expr(); err != nil {
			return nil, err
		}
	}
	if p.tok.kind == kGroup {
		if err := p.advance(); err != nil {
			return nil, err
		}
		if err := p.expect(kBy, "BY after GROUP"); err != nil {
			return nil, err
		}
		if err := p.commaList(func() error {
			e, err := p.expr()
			q.GroupBy = append(q.GroupBy, e)
			return err
		}); err != nil {
			return nil, err
		}
	}
	if p.tok.kind == kHaving {
		return nil, Errorf(p.tok.pos, "HAVING is not supported")
	}
	if p.tok.kind == kOrder {
		if err := p.advance(); err != nil {
			return nil, err
		}
		if err := p.expect(kBy, "BY after ORDER"); err != nil {
			return nil, err
		}
		if err := p.commaList(func() error {
			e, err := p.expr()
			if err != nil {
				return err
			}
			t := OrderTerm{Expr: e}
			switch p.tok.kind {
			case kDesc:
				t.Desc = true
				fallthrough
			case kAsc:
				if err := p.advance(); err != nil {
					return err
				}
			}
			q.OrderBy = append(q.OrderBy, t)
			return nil
		}); err != nil {
			return nil, err
		}
	}
	if p.tok.kind == kLimit {
		if err := p.advance(); err != nil {
			return nil, err
		}
		if p.tok.kind != tInt {
			return nil, p.unexpected("a non-negative integer after LIMIT")
		}
		if p.tok.big {
			return nil, syntaxErrorf(p.tok.pos, "LIMIT %s is out of range", p.tok.text)
		}
		q.Limit = &Literal{Kind: LitInt, Int: p.tok.ival, At: p.tok.pos}
		if err := p.advance(); err != nil {
			return nil, err
		}
	}
	if _, err := p.accept(tSemi); err != nil {
		return nil, err
	}
	if p.tok.kind != tEOF {
		return nil, p.unexpected("end of query")
	}
	return q, nil
}

// name reads a bare or double-quoted identifier.
func (p *parser) name(what string) (*Ident, error) {
	switch p.tok.kind {
	case tIdent, tQIdent:
		id := &Ident{Name: p.tok.str, Quoted: p.tok.kind == tQIdent, At: p.tok.pos}
		return id, p.advance()
	}
	return nil, p.unexpected(what)
}

func (p *parser) selectItem() (SelectItem, error) {
	if p.tok.kind == tStar {
		it := SelectItem{Expr: &Star{At: p.tok.pos}}
		return it, p.advance()
	}
	e, err := p.expr()
	if err != nil {
		return SelectItem{}, err
	}
	it := SelectItem{Expr: e}
	switch p.tok.kind {
	case kAs:
		if err := p.advance(); err != nil {
			return SelectItem{}, err
		}
		if it.Alias, err = p.name("alias after AS"); err != nil {
			return SelectItem{}, err
		}
	case tIdent, tQIdent:
		// A bare alias must be followed by "," or FROM. Otherwise the "alias" is
		// more likely a misspelt keyword (SELECT x FORM t), so report it as such.
		aliasTok := p.tok
		if it.Alias, err = p.name("alias"); err != nil {
			return SelectItem{}, err
		}
		if p.tok.kind != tComma && p.tok.kind != kFrom {
			return SelectItem{}, syntaxErrorf(aliasTok.pos, "expected FROM, found %s", aliasTok.describe())
		}
	}
	return it, nil
}

// enter and leave bound the nesting depth.
func (p *parser) enter() error {
	p.depth++
	if p.depth > maxDepth {
		return syntaxErrorf(p.tok.pos, "expression is nested too deeply (more than %d levels)", maxDepth)
	}
	return nil
}

func (p *parser) leave() { p.depth-- }

func (p *parser) expr() (Expr, error) {
	if err := p.enter(); err != nil {
		return nil, err
	}
	defer p.leave()
	return p.binaryLevel(p.and, kOr, OpOr, kOr, OpOr)
}

func (p *parser) and() (Expr, error) { return p.binaryLevel(p.not, kAnd, OpAnd, kAnd, OpAnd) }

func (p *parser) not() (Expr, error) {
	if p.tok.kind != kNot {
		return p.predicate()
	}
	if err := p.enter(); err != nil {
		return nil, err
	}
	defer p.leave()
	at := p.tok.pos
	if err := p.advance(); err != nil {
		return nil, err
	}
	x, err := p.not()
	if err != nil {
		return nil, err
	}
	return &Unary{Op: OpNot, X: x, At: at}, nil
}

var cmpOps = [...]Op{
	tEq: OpEq, tNe: OpNe, tLt: OpLt, tLe: OpLe, tGt: OpGt, tGe: OpGe,
	tMatch: OpMatch, tNotMatch: OpNotMatch,
}

func (p *parser) predicate() (Expr, error) {
	l, err := p.sum()
	if err != nil {
		return nil, err
	}
	switch k := p.tok.kind; k {
	case tEq, tNe, tLt, tLe, tGt, tGe, tMatch, tNotMatch:
		at := p.tok.pos
		if err := p.advance(); err != nil {
			return nil, err
		}
		r, err := p.sum()
		if err != nil {
			return nil, err
		}
		return &Binary{Op: cmpOps[k], L: l, R: r, OpAt: at}, nil
	case kIs:
		at := p.tok.pos
		if err := p.advance(); err != nil {
			return nil, err
		}
		not, err := p.accept(kNot)
		if err != nil {
			return nil, err
		}
		if err := p.expect(kNull, "NULL"); err != nil {
			return nil, err
		}
		return &IsNull{X: l, Not: not, OpAt: at}, nil
	case kNot, kIn, kLike, kBetween:
		at := p.tok.pos
		not, err := p.accept(kNot)
		if err != nil {
			return nil, err
		}
		switch p.tok.kind {
		case kIn:
			return p.in(l, not, at)
		case kLike:
			if err := p.advance(); err != nil {
				return nil, err
			}
			r, err := p.sum()
			if err != nil {
				return nil, err
			}
			op := OpLike
			if not {
				op = OpNotLike
			}
			return &Binary{Op: op, L: l, R: r, OpAt: at}, nil
		case kBetween:
			if err := p.advance(); err != nil {
				return nil, err
			}
			lo, err := p.sum()
			if err != nil {
				return nil, err
			}
			if err := p.expect(kAnd, "AND"); err != nil {
				return nil, err
			}
			hi, err := p.sum()
			if err != nil {
				return nil, err
			}
			return &Between{X: l, Lo: lo, Hi: hi, Not: not, OpAt: at}, nil
		}
		return nil, p.unexpected("IN, LIKE or BETWEEN after NOT")
	}
	return l, nil
}

func (p *parser) in(x Expr, not bool, at int) (Expr, error) {
	if err := p.advance(); err != nil { // IN
		return nil, err
	}
	if err := p.expect(tLParen, "( after IN"); err != nil {
		return nil, err
	}
	e := &In{X: x, Not: not, OpAt: at}
	if err := p.commaList(func() error {
		v, err := p.expr()
		e.List = append(e.List, v)
		return err
	}); err != nil {
		return nil, err
	}
	if err := p.expect(tRParen, `"," or ")"`); err != nil {
		return nil, err
	}
	return e, nil
}

func (p *parser) sum() (Expr, error) {
	return p.binaryLevel(p.product, tPlus, OpAdd, tMinus, OpSub)
}

func (p *parser) product() (Expr, error) {
	return p.binaryLevel(p.unary, tStar, OpMul, tSlash, OpDiv)
}

// commaList parses item, then another after each comma, until no comma follows.
func (p *parser) commaList(item func() error) error {
	for {
		if err := item(); err != nil {
			return err
		}
		if ok, err := p.accept(tComma); err != nil || !ok {
			return err
		}
	}
}

// binaryLevel parses one level of left-associative binary operators (OR, AND, the
// additive and the multiplicative ones): next, then any number of (op next) where
// the token t1 means op1 and t2 means op2 (the same pair twice for a level of one
// operator).
func (p *parser) binaryLevel(next func() (Expr, error), t1 tokKind, op1 Op, t2 tokKind, op2 Op) (Expr, error) {
	l, err := next()
	if err != nil {
		return nil, err
	}
	for p.tok.kind == t1 || p.tok.kind == t2 {
		op, at := op1, p.tok.pos
		if p.tok.kind == t2 {
			op = op2
		}
		if err := p.advance(); err != nil {
			return nil, err
		}
		r, err := next()
		if err != nil {
			return nil, err
		}
		l = &Binary{Op: op, L: l, R: r, OpAt: at}
	}
	return l, nil
}

func (p *parser) unary() (Expr, error) {
	if p.tok.kind != tMinus && p.tok.kind != tPlus {
		return p.primary()
	}
	if err := p.enter(); err != nil {
		return nil, err
	}
	defer p.leave()
	neg, at := p.tok.kind == tMinus, p.tok.pos
	if err := p.advance(); err != nil {
		return nil, err
	}
	if !neg {
		return p.unary()
	}
	// A minus sign directly before a number is part of the literal, so that
	// -9223372036854775808 can be written.
	switch t := p.tok; t.kind {
	case tInt:
		lit := &Literal{Kind: LitInt, Int: -t.ival, At: at}
		if t.big {
			if strings.TrimLeft(t.text, "0") != "9223372036854775808" {
				return nil, syntaxErrorf(at, "integer -%s is out of range", t.text)
			}
			lit.Int = math.MinInt64
		}
		return lit, p.advance()
	case tFloat:
		return &Literal{Kind: LitFloat, Float: -t.fval, At: at}, p.advance()
	case tDuration:
		return &Literal{Kind: LitDuration, Int: -t.ival, At: at}, p.advance()
	}
	x, err := p.unary()
	if err != nil {
		return nil, err
	}
	return &Unary{Op: OpNeg, X: x, At: at}, nil
}

func (p *parser) primary() (Expr, error) {
	t := p.tok
	var e Expr
	switch t.kind {
	case tInt:
		if t.big {
			return nil, syntaxErrorf(t.pos, "integer %s is out of range", t.text)
		}
		e = &Literal{Kind: LitInt, Int: t.ival, At: t.pos}
	case tFloat:
		e = &Literal{Kind: LitFloat, Float: t.fval, At: t.pos}
	case tDuration:
		e = &Literal{Kind: LitDuration, Int: t.ival, At: t.pos}
	case tString:
		e = &Literal{Kind: LitString, Str: t.str, At: t.pos}
	case kTrue, kFalse:
		e = &Literal{Kind: LitBool, Bool: t.kind == kTrue, At: t.pos}
	case kNull:
		e = &Literal{Kind: LitNull, At: t.pos}
	case tQIdent:
		e = &Ident{Name: t.str, Quoted: true, At: t.pos}
	case tIdent:
		if err := p.advance(); err != nil {
			return nil, err
		}
		if p.tok.kind == tLParen {
			return p.call(t)
		}
		return &Ident{Name: t.str, At: t.pos}, nil
	case tLParen:
		if err := p.advance(); err != nil {
			return nil, err
		}
		x, err := p.expr()
		if err != nil {
			return nil, err
		}
		if err := p.expect(tRParen, ")"); err != nil {
			return nil, err
		}
		return x, nil
	case kSelect:
		return nil, Errorf(t.pos, "subqueries are not supported")
	case tStar:
		return nil, Errorf(t.pos, "* is only allowed in SELECT * and count(*)")
	default:
		return nil, p.unexpected("expression")
	}
	return e, p.advance()
}

// call parses the argument list of function name, with p.tok at "(".
func (p *parser) call(name token) (Expr, error) {
	fn := strings.ToLower(name.text)
	fi, ok := lookupFunc(fn)
	if !ok {
		return nil, Errorf(name.pos, "unknown function %q", name.text)
	}
	c := &Call{Name: fn, At: name.pos}
	if err := p.advance(); err != nil { // (
		return nil, err
	}
	if p.tok.kind != tRParen {
		if p.tok.kind == kDistinct {
			if !fi.distinct {
				return nil, Errorf(p.tok.pos, "DISTINCT is only allowed in count(DISTINCT x)")
			}
			c.Distinct = true
			if err := p.advance(); err != nil {
				return nil, err
			}
		}
		if err := p.commaList(func() error {
			if p.tok.kind == tStar && fi.star && len(c.Args) == 0 && !c.Distinct {
				c.Args = append(c.Args, &Star{At: p.tok.pos})
				return p.advance()
			}
			a, err := p.expr()
			c.Args = append(c.Args, a)
			return err
		}); err != nil {
			return nil, err
		}
	}
	if err := p.expect(tRParen, `"," or ")"`); err != nil {
		return nil, err
	}
	n := len(c.Args)
	switch {
	case fi.minArgs == fi.maxArgs && n != fi.minArgs:
		return nil, Errorf(name.pos, "%s takes %s, got %d", fn, plural(fi.minArgs, "argument"), n)
	case n < fi.minArgs:
		return nil, Errorf(name.pos, "%s takes at least %s, got %d", fn, plural(fi.minArgs, "argument"), n)
	case fi.maxArgs >= 0 && n > fi.maxArgs:
		return nil, Errorf(name.pos, "%s takes at most %s, got %d", fn, plural(fi.maxArgs, "argument"), n)
	case c.Distinct && n != 1:
		return nil, Errorf(name.pos, "count(DISTINCT …) takes 1 argument, got %d", n)
	}
	return c, nil
}

func plural(n int, word string) string {
	switch n {
	case 0:
		return "no " + word + "s"
	case 1:
		return "1 " + word
	}
	return strconv.Itoa(n) + " " + word + "s"
}
