package sql

import "fmt"

// Error is a parse or planning error at a position in the query text.
type Error struct {
	// Pos is the 1-based byte offset of the offending token in the query; 0 if the
	// error has no position.
	Pos int
	// Msg says what was wrong, without the position.
	Msg string
	// Syntax marks grammar errors ("expected FROM, found …"); other errors concern
	// meaning (an unknown function, a type mismatch, a misplaced aggregate).
	Syntax bool
}

// Error reads "syntax error at position 23: expected FROM, found \"FORM\"" for a
// syntax error and "unknown function \"cnt\" at position 8" otherwise.
func (e *Error) Error() string {
	switch {
	case e.Pos <= 0 && e.Syntax:
		return "syntax error: " + e.Msg
	case e.Pos <= 0:
		return e.Msg
	case e.Syntax:
		return fmt.Sprintf("syntax error at position %d: %s", e.Pos, e.Msg)
	}
	return fmt.Sprintf("%s at position %d", e.Msg, e.Pos)
}

// Errorf returns an *Error that is not a syntax error, at the 1-based position pos.
func Errorf(pos int, format string, args ...any) *Error {
	return &Error{Pos: pos, Msg: fmt.Sprintf(format, args...)}
}

func syntaxErrorf(pos int, format string, args ...any) *Error {
	return &Error{Pos: pos, Msg: fmt.Sprintf(format, args...), Syntax: true}
}
