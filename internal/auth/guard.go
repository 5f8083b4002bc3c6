package auth

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	pathpkg "path"
	"strings"

	"github.com/reef-db/reef/api"
)

// Tokens are the bearer tokens a server accepts; an empty one is not configured.
//
//   - Ingest lets a writer post rows (POST /v1/ingest/…).
//   - Query lets a reader run SQL and read stats, tables and metrics.
//   - Admin guards /v1/admin/… (the leaf's handoff) and may read stats.
//   - Peer is the token aggregators send to their children (leaves and child
//     aggregators). A leaf with a peer token takes ingest and partial queries only
//     with it: writers and readers go through an aggregator.
type Tokens struct {
	Ingest, Query, Admin, Peer string
}

// MinTokenLen is the shortest token accepted: a guessable token is no guard.
const MinTokenLen = 16

// MaxTokenLen is the longest token accepted.
const MaxTokenLen = 4096

// Any reports whether at least one token is configured.
func (t Tokens) Any() bool { return t.Ingest != "" || t.Query != "" || t.Admin != "" || t.Peer != "" }

// Validate checks every configured token: at least MinTokenLen and at most
// MaxTokenLen characters of the bearer-token alphabet (RFC 6750: letters, digits,
// - . _ ~ + / and trailing =), and no two kinds sharing one token (a shared token
// would let one kind do the other's work).
func (t Tokens) Validate() error {
	var errs []error
	named := t.named()
	for i, n := range named {
		if n.tok == "" {
			continue
		}
		if err := checkToken(n.tok); err != nil {
			errs = append(errs, fmt.Errorf("invalid %s token: %w", n.kind, err))
		}
		for _, m := range named[:i] {
			if m.tok == n.tok {
				errs = append(errs, fmt.Errorf("the %s and %s tokens are the same; give each kind its own token", m.kind, n.kind))
			}
		}
	}
	return errors.Join(errs...)
}

type namedToken struct {
	kind kind
	tok  string
}

func (t Tokens) named() []namedToken {
	return []namedToken{{kindIngest, t.Ingest}, {kindQuery, t.Query}, {kindAdmin, t.Admin}, {kindPeer, t.Peer}}
}

func checkToken(tok string) error {
	if len(tok) < MinTokenLen {
		return fmt.Errorf("it is %d characters long, the minimum is %d (e.g. openssl rand -hex 32)", len(tok), MinTokenLen)
	}
	if len(tok) > MaxTokenLen {
		return fmt.Errorf("it is %d characters long, the limit is %d", len(tok), MaxTokenLen)
	}
	body := strings.TrimRight(tok, "=")
	if body == "" {
		return errors.New("it has nothing but '='")
	}
	for i := 0; i < len(body); i++ {
		c := body[i]
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
			c == '-' || c == '.' || c == '_' || c == '~' || c == '+' || c == '/'
		if !ok {
			return fmt.Errorf("character %d (%q) is not allowed; use letters, digits and - . _ ~ + / (e.g. openssl rand -hex 32)", i+1, c)
		}
	}
	return nil
}

// kind is a set of token kinds.
type kind uint8

const (
	kindIngest kind = 1 << iota
	kindQuery
	kindAdmin
	kindPeer
)

// String names the kinds of k, joined by " or ".
func (k kind) String() string {
	var names []string
	for _, n := range []struct {
		k    kind
		name string
	}{{kindIngest, "ingest"}, {kindQuery, "query"}, {kindAdmin, "admin"}, {kindPeer, "peer"}} {
		if k&n.k != 0 {
			names = append(names, n.name)
		}
	}
	return strings.Join(names, " or ")
}

// Role is the kind of server a Guard protects.
type Role int

const (
	// Aggregator: ingest needs the ingest (or peer) token, queries and reads the
	// query (or peer) token.
	Aggregator Role = iota
	// Leaf: with a peer token set, ingest and partial queries need exactly it; without
	// one a leaf behaves like an aggregator.
	Leaf
)

func (r Role) String() string {
	if r == Leaf {
		return "leaf"
	}
	return "aggregator"
}

// Class is what a request does, as far as access goes.
type Class int

const (
	// Open routes need no token: GET /livez and /readyz.
	Open Class = iota
	// Ingest: POST /v1/ingest/{table}.
	Ingest
	// Query: /v1/sql and /v1/partial.
	Query
	// Read: /v1/stats, /v1/tables…, /metrics and every other path.
	Read
	// Admin: /v1/admin/….
	Admin
)

func (c Class) String() string {
	switch c {
	case Open:
		return "open"
	case Ingest:
		return "ingest"
	case Query:
		return "query"
	case Admin:
		return "admin"
	}
	return "read"
}

// ClassOf classifies a request path, after cleaning it ("/v1/ingest/../admin/x" is
// admin). Paths nobody serves are Read, so that an unauthenticated client learns
// nothing from 404s either.
func ClassOf(p string) Class {
	path := p
	if p != "" {
		path = pathpkg.Clean(p)
	}
	switch {
	case path == "/livez" || path == "/readyz":
		return Open
	case strings.HasPrefix(path, "/v1/ingest/"):
		return Ingest
	case path == "/v1/sql" || path == "/v1/partial":
		return Query
	case path == "/v1/admin" || strings.HasPrefix(path, "/v1/admin/"):
		return Admin
	}
	return Read
}

// rule says which token kinds a class accepts; a class with accepts == 0 is open.
type rule struct {
	accepts kind
}

// Guard checks the bearer token of every request against the routes' classes. Make
// one with NewGuard; a nil *Guard lets everything through.
type Guard struct {
	role   Role
	rules  [Admin + 1]rule
	hashes []tokenHash
}

type tokenHash struct {
	kind kind
	sum  [sha256.Size]byte
}

// NewGuard returns a guard for a server of the given role, or nil when no token is
// configured (then every route is open). The rules:
//
//	class    aggregator                 leaf with peer token     leaf without
//	ingest   ingest, peer  (if ingest)  peer                     ingest (if set)
//	query    query, peer   (if query)   peer                     query (if set)
//	read     query, admin, peer (if query is set; on a leaf also if peer is set)
//	admin    admin (if set)
//	open     always open
//
// A class whose token is not configured is open.
func NewGuard(role Role, t Tokens) (*Guard, error) {
	if err := t.Validate(); err != nil {
		return nil, err
	}
	if !t.Any() {
		return nil, nil
	}
	g := &Guard{role: role}
	for _, n := range t.named() {
		if n.tok != "" {
			g.hashes = append(g.hashes, tokenHash{kind: n.kind, sum: sha256.Sum256([]byte(n.tok))})
		}
	}
	readers := kindQuery | kindAdmin | kindPeer
	switch {
	case role == Leaf && t.Peer != "":
		g.rules[Ingest] = rule{kindPeer}
		g.rules[Query] = rule{kindPeer}
		g.rules[Read] = rule{readers}
	default:
		if t.Ingest != "" {
			g.rules[Ingest] = rule{kindIngest | kindPeer}
		}
		if t.Query != "" {
			g.rules[Query] = rule{kindQuery | kindPeer}
			g.rules[Read] = rule{readers}
		}
	}
	if t.Admin != "" {
		g.rules[Admin] = rule{kindAdmin}
	}
	return g, nil
}

// Guarded reports whether requests of class c need a token.
func (g *Guard) Guarded(c Class) bool { return g != nil && g.rules[c].accepts != 0 }

// match returns the kinds whose token is tok (0 for none). Every configured token
// is compared, in constant time over hashes of equal length, whether or not an
// earlier one matched.
func (g *Guard) match(tok string) kind {
	sum := sha256.Sum256([]byte(tok))
	var k kind
	for _, h := range g.hashes {
		if subtle.ConstantTimeCompare(sum[:], h.sum[:]) == 1 {
			k |= h.kind
		}
	}
	return k
}

// Decision is the outcome of Check.
type Decision struct {
	// Status is 0 when the request may go on, else 401 or 403.
	Status int
	// Message says why not, for the JSON error body.
	Message string
	// Challenge is the WWW-Authenticate header value of a refusal.
	Challenge string
}

// Check decides whether a request for path with the given Authorization header
// value may go on.
func (g *Guard) Check(method, path, authorization string) Decision {
	if g == nil {
		return Decision{}
	}
	class := ClassOf(path)
	accepts := g.rules[class].accepts
	if accepts == 0 {
		return Decision{}
	}
	what := fmt.Sprintf("%s %s on this %s needs the %s token", method, path, g.role, accepts)
	scheme, tok, found := strings.Cut(authorization, " ")
	tok = strings.TrimSpace(tok)
	switch {
	case authorization == "":
		return Decision{http.StatusUnauthorized,
			fmt.Sprintf("missing bearer token: %s; send the header Authorization: Bearer TOKEN", what),
			`Bearer realm="reef"`}
	case !found || !strings.EqualFold(scheme, "Bearer") || tok == "":
		return Decision{http.StatusUnauthorized,
			fmt.Sprintf("unsupported Authorization header: %s; send the header Authorization: Bearer TOKEN", what),
			`Bearer realm="reef", error="invalid_request"`}
	}
	have := g.match(tok)
	switch {
	case have == 0:
		return Decision{http.StatusUnauthorized,
			fmt.Sprintf("invalid bearer token: it is none of this %s's tokens; %s", g.role, what),
			`Bearer realm="reef", error="invalid_token"`}
	case have&accepts == 0:
		return Decision{http.StatusForbidden,
			fmt.Sprintf("forbidden: this is the %s token; %s", have, what),
			`Bearer realm="reef", error="insufficient_scope"`}
	}
	return Decision{}
}

// Wrap returns h behind the guard: requests without the right token get 401 or 403
// with a JSON api.Error body and a WWW-Authenticate header. A nil guard returns h.
func (g *Guard) Wrap(h http.Handler) http.Handler {
	if g == nil {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		d := g.Check(r.Method, r.URL.Path, r.Header.Get("Authorization"))
		if d.Status == 0 {
			h.ServeHTTP(w, r)
			return
		}
		data, _ := json.Marshal(&api.Error{Message: d.Message})
		w.Header().Set("WWW-Authenticate", d.Challenge)
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(d.Status)
		_, _ = w.Write(append(data, '\n'))
	})
}
