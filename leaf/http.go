package leaf

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/reef-db/reef/api"
)

// writeJSON answers with v as JSON.
func writeJSON(w http.ResponseWriter, status int, v any) {
	data, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		data, _ = json.Marshal(&api.Error{Message: fmt.Sprintf("cannot encode answer: %v", err)})
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(append(data, '\n'))
}

// writeError answers with a JSON api.Error.
func writeError(w http.ResponseWriter, status int, format string, args ...any) {
	writeJSON(w, status, &api.Error{Message: fmt.Sprintf(format, args...)})
}

// writeRetry answers 429 or 503 with a Retry-After header (seconds).
func writeRetry(w http.ResponseWriter, status int, seconds int, format string, args ...any) {
	w.Header().Set("Retry-After", fmt.Sprint(seconds))
	writeError(w, status, format, args...)
}

// notFound answers a path no route serves.
func notFound(w http.ResponseWriter, r *http.Request) {
	writeError(w, http.StatusNotFound, "no route for %s %s", r.Method, r.URL.Path)
}

// methodNotAllowed returns a handler answering 405 for a path served only for the
// given methods.
func methodNotAllowed(methods ...string) http.HandlerFunc {
	allow := strings.Join(methods, ", ")
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Allow", allow)
		writeError(w, http.StatusMethodNotAllowed, "%s is not allowed on %s; use %s", r.Method, r.URL.Path, allow)
	}
}
