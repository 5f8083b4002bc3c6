package aggregator

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func childURLs(s *Server) []string {
	var out []string
	for _, c := range s.members.list() {
		out = append(out, c.url)
	}
	slices.Sort(out)
	return out
}

func TestClusterFileReload(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cluster")
	write := func(s string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("# leaves\nhttp://127.0.0.1:1\n\nhttp://127.0.0.1:2  # second\n")
	s, err := New(Config{Children: []string{"http://127.0.0.1:3"}, ClusterFile: path, HealthTimeout: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if got := childURLs(s); strings.Join(got, " ") != "http://127.0.0.1:1 http://127.0.0.1:2 http://127.0.0.1:3" {
		t.Fatalf("children %v", got)
	}
	kept := s.members.list()[1] // http://127.0.0.1:2
	kept.stats.Rows = 77

	write("http://127.0.0.1:2\nhttp://127.0.0.1:4\n")
	if err := s.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := childURLs(s); strings.Join(got, " ") != "http://127.0.0.1:2 http://127.0.0.1:3 http://127.0.0.1:4" {
		t.Fatalf("after reload: children %v", got)
	}
	for _, c := range s.members.list() {
		if c.url == "http://127.0.0.1:2" && (c != kept || c.stats.Rows != 77) {
			t.Fatal("a child kept across a reload lost its state")
		}
	}

	write("http://127.0.0.1:5\nnot a url\n")
	err = s.Reload(context.Background())
	if err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Fatalf("bad cluster file: err %v, want one naming line 2", err)
	}
	if got := childURLs(s); len(got) != 3 {
		t.Fatalf("a failed reload changed the children: %v", got)
	}
}

func TestDNSChildren(t *testing.T) {
	got, err := resolveChildren(context.Background(), []string{"dns+http://localhost:7071", "http://127.0.0.2:1"})
	if err != nil {
		t.Skipf("no resolver for localhost here: %v", err)
	}
	if !slices.Contains(got, "http://127.0.0.1:7071") || !slices.Contains(got, "http://127.0.0.2:1") {
		t.Fatalf("resolved %v, want http://127.0.0.1:7071 among them and the static entry kept", got)
	}
	if _, err := resolveChildren(context.Background(), []string{"dns+http://no-such-host.invalid:1"}); err == nil {
		t.Fatal("unresolvable name gave no error")
	}
}

func TestNewRejectsBadChildren(t *testing.T) {
	for _, children := range [][]string{nil, {"127.0.0.1:1"}, {"http://a:1", "http://a:1"}, {"ftp://a:1"}} {
		if _, err := New(Config{Children: children}); err == nil {
			t.Errorf("New(%q) succeeded", children)
		}
	}
}
