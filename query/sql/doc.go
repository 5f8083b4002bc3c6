// Package sql parses reef's SQL subset into an abstract syntax tree:
//
//	SELECT select_list FROM table [WHERE expr] [GROUP BY expr, …]
//	       [ORDER BY expr [ASC|DESC], …] [LIMIT n] [;]
//
// The lexer and the recursive-descent parser are hand-written. Parse checks the
// grammar, the names and argument counts of functions, and the form of literals
// (numbers, strings, durations such as 5m or 1h30m); every error is an *Error that
// carries the 1-based byte offset of the offending token. docs/sql.md is the language
// reference.
//
// This package only parses. It does not know what a column is, what now() is, or how
// a query is executed; turning the tree into a query plan (resolving aliases, folding
// constants, checking what may appear where) is package query/plan's job, and this
// package must not import it.
package sql
