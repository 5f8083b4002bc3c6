#!/usr/bin/env bash
# pgo-profile.sh — collect the CPU profile that `go build` uses to optimize reef
# (profile-guided optimization: cmd/reef/default.pgo, picked up by every build of
# the main package).
#
# It starts a local cluster (2 leaves + 1 aggregator, `reef bench cluster`) whose
# processes serve their profiles (--pprof), then profiles them in two phases:
#   1. ingest: generated events (`reef gen --url`, the generator of the standard
#      dataset) posted through the aggregator in 20,000-row batches, 8 in flight,
#      as `reef bench ingest` posts its data;
#   2. queries: the five queries of `reef bench queries`, over and over, through
#      the aggregator.
# The six profiles are merged into one (`go tool pprof -proto`) and written to
# cmd/reef/default.pgo (or to the file given as the first argument). Run it on a
# quiet machine after a change to a hot path; docs/pgo.md says more.
#
# Needs go, curl and a built bin/reef (make build).

set -euo pipefail

cd "$(dirname "$0")/.."
out=${1:-cmd/reef/default.pgo}
reef=bin/reef
secs=${PGO_SECONDS:-8}
[[ -x $reef ]] || { echo "pgo-profile.sh: $reef not found; run make build first" >&2; exit 1; }

work=$(mktemp -d /tmp/reef-pgo-XXXXXX)
cluster_pid=""
cleanup() {
	if [[ -n $cluster_pid ]]; then
		kill -INT "$cluster_pid" 2>/dev/null || true
		wait "$cluster_pid" 2>/dev/null || true
	fi
	rm -rf "$work"
}
trap cleanup EXIT

echo "pgo-profile: starting 2 leaves + 1 aggregator in $work"
"$reef" bench cluster --leaves 2 --dir "$work/cluster" \
	--leaf-arg=--pprof=127.0.0.1:0 --agg-arg=--pprof=127.0.0.1:0 >"$work/cluster.out" 2>&1 &
cluster_pid=$!
for _ in $(seq 100); do
	grep -q '^aggregator http' "$work/cluster.out" 2>/dev/null && break
	kill -0 "$cluster_pid" 2>/dev/null || { cat "$work/cluster.out" >&2; exit 1; }
	sleep 0.1
done
agg=$(sed -n 's/^aggregator \(http[^ ]*\).*/\1/p' "$work/cluster.out")
[[ -n $agg ]] || { echo "pgo-profile: the cluster did not start:" >&2; cat "$work/cluster.out" >&2; exit 1; }
mapfile -t urls < <(sed -n 's/.*msg="serving profiles".*url=\([^ ]*\).*/\1/p' "$work"/cluster/logs/*.log)
[[ ${#urls[@]} -eq 3 ]] || { echo "pgo-profile: found ${#urls[@]} profile endpoints, want 3" >&2; exit 1; }

# profile NAME: every process's CPU profile over the next $secs seconds.
profile() {
	local i=0 pids=()
	for u in "${urls[@]}"; do
		curl -sf -o "$work/$1-$i.pprof" "${u}profile?seconds=$secs" &
		pids+=($!)
		i=$((i + 1))
	done
	wait "${pids[@]}"
}

echo "pgo-profile: ingest phase (${secs}s)"
"$reef" gen --url "$agg" --rows 20000000 --batch-rows 20000 --concurrency 8 >"$work/gen.out" 2>&1 &
gen_pid=$!
sleep 1
profile ingest
kill "$gen_pid" 2>/dev/null || true
wait "$gen_pid" 2>/dev/null || true

echo "pgo-profile: query phase (${secs}s)"
queries=(
	"SELECT count(*) FROM events"
	"SELECT service, count(*), avg(latency_ms) FROM events GROUP BY service"
	"SELECT endpoint, p99(latency_ms) FROM events WHERE status = 500 GROUP BY endpoint"
	"SELECT host, count(*) AS c FROM events GROUP BY host ORDER BY c DESC LIMIT 10"
	"SELECT time(1m), count(*) FROM events WHERE service = 'svc-03' GROUP BY time(1m)"
)
(
	end=$((SECONDS + secs + 2))
	while ((SECONDS < end)); do
		for q in "${queries[@]}"; do
			"$reef" shell --addr "$agg" -c "$q" >/dev/null
		done
	done
) &
query_pid=$!
profile queries
wait "$query_pid" || true

go tool pprof -proto "$work"/*.pprof >"$work/merged.pgo" 2>/dev/null
mv "$work/merged.pgo" "$out"
echo "pgo-profile: wrote $out ($(wc -c <"$out") bytes)"
