package aggregator

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"
)

// Membership: the children are the union of
//
//   - the static list given in Config.Children,
//   - the lines of Config.ClusterFile (one URL per line, '#' starts a comment),
//     re-read by Reload (the reef binary calls it on SIGHUP), and
//   - DNS names: an entry `dns+http://NAME:PORT` stands for every address NAME
//     resolves to (as a Kubernetes headless service does), re-resolved every
//     Config.DNSInterval.
//
// A child that stays in the set keeps its health and stats across reloads.

// maxChildren bounds the children one aggregator fans out to.
const maxChildren = 4096

const dnsPrefix = "dns+"

// ReadClusterFile reads a cluster file: one child base URL per line; blank lines
// and text after '#' are ignored.
func ReadClusterFile(path string) ([]string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read cluster file: %w", err)
	}
	var out []string
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		if err := checkChildURL(line); err != nil {
			return nil, fmt.Errorf("cluster file %s line %d: %w", path, n, err)
		}
		out = append(out, line)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("cannot read cluster file %s: %w", path, err)
	}
	return out, nil
}

func checkChildURL(s string) error {
	u, err := url.Parse(strings.TrimPrefix(s, dnsPrefix))
	if err != nil {
		return fmt.Errorf("invalid child URL %q: %w", s, err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("invalid child URL %q: want http://host:port or dns+http://name:port", s)
	}
	return nil
}

// resolveChildren expands dns+ entries into one URL per resolved address.
func resolveChildren(ctx context.Context, entries []string) ([]string, error) {
	var out []string
	var errs []string
	for _, e := range entries {
		if !strings.HasPrefix(e, dnsPrefix) {
			out = append(out, e)
			continue
		}
		u, err := url.Parse(strings.TrimPrefix(e, dnsPrefix))
		if err != nil {
			errs = append(errs, err.Error())
			continue
		}
		host, port := u.Hostname(), u.Port()
		addrs, err := net.DefaultResolver.LookupHost(ctx, host)
		if err != nil {
			errs = append(errs, fmt.Sprintf("cannot resolve %s: %v", host, err))
			continue
		}
		slices.Sort(addrs)
		for _, a := range addrs {
			hp := a
			if port != "" {
				hp = net.JoinHostPort(a, port)
			} else if strings.Contains(a, ":") {
				hp = "[" + a + "]"
			}
			out = append(out, u.Scheme+"://"+hp+u.Path)
		}
	}
	if len(errs) > 0 {
		return out, fmt.Errorf("%s", strings.Join(errs, "; "))
	}
	return out, nil
}

// Reload re-reads the cluster file and re-resolves DNS names, and makes the result
// the set of children. On an error the current set stays.
func (s *Server) Reload(ctx context.Context) error {
	entries := slices.Clone(s.cfg.Children)
	if s.cfg.ClusterFile != "" {
		fromFile, err := ReadClusterFile(s.cfg.ClusterFile)
		if err != nil {
			return err
		}
		entries = append(entries, fromFile...)
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	urls, err := resolveChildren(ctx, entries)
	if err != nil && len(urls) == 0 {
		return err
	}
	slices.Sort(urls)
	urls = slices.Compact(urls)
	if len(urls) == 0 {
		return fmt.Errorf("no children: the leaf list and cluster file are empty")
	}
	if len(urls) > maxChildren {
		return fmt.Errorf("%d children, the limit is %d", len(urls), maxChildren)
	}
	added, removed := s.members.set(urls, s.cfg.Token)
	if len(added)+len(removed) > 0 {
		s.log.Info("children changed", "added", added, "removed", removed, "children", len(urls))
		s.members.checkAll(ctx, s.cfg.HealthTimeout, false)
	}
	return err // DNS errors for some names are reported, the rest applied
}

// set makes urls the children, keeping the state of those already present.
func (m *members) set(urls []string, token string) (added, removed []string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	old := make(map[string]*child, len(m.children))
	for _, c := range m.children {
		old[c.url] = c
	}
	next := make([]*child, 0, len(urls))
	for _, u := range urls {
		if c, ok := old[u]; ok {
			next = append(next, c)
			delete(old, u)
			continue
		}
		next = append(next, newChild(u, token, m.tls))
		added = append(added, u)
	}
	for u := range old {
		removed = append(removed, u)
	}
	m.children = next
	return added, removed
}
