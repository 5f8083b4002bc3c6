#!/usr/bin/env bash
# rolling-deploy.sh — restart the leaves of a reef cluster in batches through the
# shared-memory handoff, checking that every restarted leaf comes back with exactly
# the rows it handed over. Needs bash, curl and the reef binary (for reading JSON).
#
# Per leaf: record its rows (GET /v1/stats), hand off (POST /v1/admin/handoff: the
# leaf stops taking ingest, seals its open blocks into shm, writes the manifest and
# exits), wait until the old process is gone, start the new one, wait for /readyz,
# and compare the rows it reports at start (per table) with the rows it handed over.
# Any difference stops the deploy with exit status 1. A timeline (handoff, exit,
# exec→ready, rows, start path) and the total time are printed.
#
# Leaves of a `reef local` cluster (or any cluster started by the testbench harness)
# come from its cluster.json; a leaf is started again with its recorded command line
# (with --binary as the program), in the background, its output appended to its log,
# and its new pid written back to cluster.json so that the harness stops it too.
# Other deployments name the leaves with --leaf and say how to start one with
# --start-cmd, e.g. --start-cmd 'systemctl start reef-leaf@{id}'.
#
# docs/rolling-deploy.md has examples and what each number means.

set -uo pipefail

usage() {
	cat <<'EOF'
usage: rolling-deploy.sh [options] [CLUSTER_DIR | CLUSTER_FILE]
       rolling-deploy.sh [options] --leaf URL [--leaf URL …] --start-cmd TEMPLATE

  CLUSTER_DIR, --cluster-file FILE
                        a cluster.json (or the directory holding it) written by
                        `reef local` / the testbench harness
  --leaf URL            a leaf to restart (repeat); needs --start-cmd
  --start-cmd TEMPLATE  shell command that starts a leaf again and returns once it
                        is started; {id} {url} {port} {data} {shm} {binary} are
                        replaced (with --leaf, {id} is the leaf's id from its stats).
                        Default for a cluster file: its recorded command line
  --aggregator URL      an aggregator to tell at once that a restarted leaf is back
                        (repeat; default for a cluster file: its aggregators), so
                        that it queries the leaf again before the next one goes
  --binary PATH         the reef binary to deploy (default: the one recorded)
  --batch N             leaves restarted at the same time (default 1)
  --reef PATH           reef binary used to read JSON (default: --binary, else the
                        cluster file's, else `reef` in $PATH)
  --ready-timeout SEC   wait for /readyz at most this long (default 60)
  --exit-timeout SEC    wait for the old process to exit at most this long (default 60)
  -h, --help            this text

Environment: REEF_ADMIN_TOKEN, if set, is sent as a bearer token; REEF_CURL_OPTS
adds options to every curl call (e.g. --cacert ca.pem).
EOF
}

die() {
	echo "rolling-deploy: $*" >&2
	exit 2
}

batch=1
cluster_file=""
start_cmd=""
binary=""
reef=""
ready_timeout=60
exit_timeout=60
leaf_urls=()
agg_urls=()

while (($#)); do
	case $1 in
	--batch) batch=${2-}; shift 2 || die "--batch needs a value" ;;
	--cluster-file) cluster_file=${2-}; shift 2 || die "--cluster-file needs a value" ;;
	--leaf) leaf_urls+=("${2-}"); shift 2 || die "--leaf needs a value" ;;
	--start-cmd) start_cmd=${2-}; shift 2 || die "--start-cmd needs a value" ;;
	--aggregator) agg_urls+=("${2-}"); shift 2 || die "--aggregator needs a value" ;;
	--binary) binary=${2-}; shift 2 || die "--binary needs a value" ;;
	--reef) reef=${2-}; shift 2 || die "--reef needs a value" ;;
	--ready-timeout) ready_timeout=${2-}; shift 2 || die "--ready-timeout needs a value" ;;
	--exit-timeout) exit_timeout=${2-}; shift 2 || die "--exit-timeout needs a value" ;;
	-h | --help) usage; exit 0 ;;
	--*) die "unknown option $1 (see --help)" ;;
	*)
		[[ -z $cluster_file ]] || die "more than one cluster file given ($cluster_file, $1)"
		cluster_file=$1
		shift
		;;
	esac
done

[[ $batch =~ ^[1-9][0-9]*$ ]] || die "--batch must be a positive number, not '$batch'"
[[ $ready_timeout =~ ^[1-9][0-9]*$ ]] || die "--ready-timeout must be a positive number of seconds"
[[ $exit_timeout =~ ^[1-9][0-9]*$ ]] || die "--exit-timeout must be a positive number of seconds"
if [[ -n $cluster_file && -d $cluster_file ]]; then
	cluster_file=$cluster_file/cluster.json
fi
if [[ -n $cluster_file && ${#leaf_urls[@]} -gt 0 ]]; then
	die "give either a cluster file or --leaf URLs, not both"
fi
if [[ -z $cluster_file && ${#leaf_urls[@]} -eq 0 ]]; then
	usage >&2
	exit 2
fi
if [[ -n $cluster_file && ! -r $cluster_file ]]; then
	die "cannot read cluster file $cluster_file"
fi
if ((${#leaf_urls[@]})) && [[ -z $start_cmd ]]; then
	die "--leaf needs --start-cmd: how to start a leaf again"
fi
if [[ -n $binary ]]; then
	[[ -x $binary ]] || die "--binary $binary is not an executable file"
	binary=$(cd "$(dirname "$binary")" && pwd)/$(basename "$binary")
fi
command -v curl >/dev/null || die "curl is needed"

# The reef binary that reads JSON for this script.
if [[ -z $reef ]]; then
	if [[ -n $binary ]]; then
		reef=$binary
	elif [[ -n $cluster_file ]]; then
		# The file is written by reef itself, one key per line.
		reef=$(sed -n 's/^  "binary": "\(.*\)",\{0,1\}$/\1/p' "$cluster_file" | head -n 1)
	fi
	if [[ -z $reef || ! -x $reef ]]; then
		reef=$(command -v reef || true)
	fi
fi
[[ -n $reef && -x $reef ]] || die "no reef binary to read JSON with; pass --reef or --binary"

curl_opts=(-sS --connect-timeout 2)
if [[ -n ${REEF_ADMIN_TOKEN-} ]]; then
	curl_opts+=(-H "Authorization: Bearer $REEF_ADMIN_TOKEN")
fi
if [[ -n ${REEF_CURL_OPTS-} ]]; then
	read -r -a extra <<<"$REEF_CURL_OPTS"
	curl_opts+=("${extra[@]}")
fi

# now_us prints the time in microseconds.
now_us() {
	if [[ -n ${EPOCHREALTIME-} ]]; then
		local t=${EPOCHREALTIME/[.,]/}
		echo "$t"
	else
		date +%s%6N
	fi
}

# ms A B prints (B-A) microseconds as milliseconds with one decimal.
ms() {
	local d=$(($2 - $1))
	printf '%d.%d' $((d / 1000)) $(((d % 1000) / 100))
}

# http_code URL prints the HTTP status of GET URL (000: no answer).
http_code() {
	curl "${curl_opts[@]}" -o /dev/null -w '%{http_code}' --max-time 2 "$1" 2>/dev/null || true
}

# The leaves: parallel arrays.
ids=() urls=() pids=() ports=() datas=() shms=() logs=()
if [[ -n $cluster_file ]]; then
	while IFS=$'\t' read -r id url pid port data shm log; do
		ids+=("$id") urls+=("$url") pids+=("$pid") ports+=("$port") datas+=("$data") shms+=("$shm") logs+=("$log")
	done < <("$reef" cluster leaves "$cluster_file") || die "cannot read $cluster_file"
	((${#ids[@]})) || die "no leaves in $cluster_file"
	if ((${#agg_urls[@]} == 0)); then
		while read -r url; do agg_urls+=("$url"); done < <("$reef" cluster aggregators "$cluster_file")
	fi
else
	for url in "${leaf_urls[@]}"; do
		url=${url%/}
		st=$(curl "${curl_opts[@]}" --fail-with-body "$url/v1/stats") || die "cannot read the stats of $url: $st"
		id=$(sed -n 's/^{"leaf_id":"\([^"]*\)".*/\1/p' <<<"$st")
		[[ -n $id ]] || id=$url
		port=${url##*:}
		ids+=("$id") urls+=("$url") pids+=("") ports+=("${port%%/*}") datas+=("") shms+=("") logs+=("")
	done
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/rolling-deploy.XXXXXX") || die "cannot make a temporary directory"
trap 'rm -rf "$tmp"' EXIT

# restart_leaf I restarts leaf I and writes its timeline line to $tmp/I.line; it
# exits non-zero (with the reason in $tmp/I.err) on any failure or loss.
restart_leaf() {
	local i=$1
	local id=${ids[$i]} url=${urls[$i]} pid=${pids[$i]} log=${logs[$i]}
	fail() {
		echo "$id: $*" >"$tmp/$i.err"
		exit 1
	}
	local stats before t0 t1 t2 t3 t4 answer handed after start code newpid

	stats=$(curl "${curl_opts[@]}" --fail-with-body "$url/v1/stats") || fail "cannot read stats: $stats"
	before=$("$reef" cluster rows <<<"$stats") || fail "cannot read rows from the stats"
	local rows_before=0 n
	while read -r _ n; do rows_before=$((rows_before + n)); done <<<"$before"

	t0=$(now_us)
	answer=$(curl "${curl_opts[@]}" --fail-with-body --max-time 120 -X POST "$url/v1/admin/handoff") ||
		fail "handoff failed: $answer"
	t1=$(now_us)
	handed=$("$reef" cluster handoff-rows <<<"$answer") || fail "cannot read the handoff answer: $answer"

	# The old process exits once it answered; wait until it is gone.
	local deadline=$((t1 + exit_timeout * 1000000))
	while :; do
		if [[ -n $pid ]]; then
			kill -0 "$pid" 2>/dev/null || break
			# A zombie waiting for its parent counts as gone.
			[[ -r /proc/$pid/stat && $(cut -d' ' -f3 "/proc/$pid/stat" 2>/dev/null) == Z ]] && break
		else
			[[ $(http_code "$url/livez") == 000 ]] && break
		fi
		(($(now_us) < deadline)) || fail "the old process did not exit within ${exit_timeout}s of the handoff"
		sleep 0.005
	done
	t2=$(now_us)

	t3=$(now_us)
	if [[ -z $start_cmd ]]; then
		local argv=()
		mapfile -d '' -t argv < <("$reef" cluster argv "$cluster_file" "$id" "$binary") || fail "cannot read the command line of $id"
		((${#argv[@]})) || fail "no command line recorded for $id"
		printf -- '--- rolling-deploy: starting %s at %s: %s\n' "$id" "$(date -u +%Y-%m-%dT%H:%M:%S.%NZ)" "${argv[*]}" >>"$log"
		if command -v setsid >/dev/null; then
			setsid "${argv[@]}" >>"$log" 2>&1 </dev/null &
		else
			nohup "${argv[@]}" >>"$log" 2>&1 </dev/null &
		fi
		newpid=$!
		"$reef" cluster set-pid "$cluster_file" "$id" "$newpid" "$binary" || fail "cannot record the new pid $newpid"
	else
		local cmd=$start_cmd
		cmd=${cmd//\{id\}/${ids[$i]}}
		cmd=${cmd//\{url\}/$url}
		cmd=${cmd//\{port\}/${ports[$i]}}
		cmd=${cmd//\{data\}/${datas[$i]}}
		cmd=${cmd//\{shm\}/${shms[$i]}}
		cmd=${cmd//\{binary\}/$binary}
		bash -c "$cmd" </dev/null || fail "start command failed: $cmd"
	fi

	deadline=$((t3 + ready_timeout * 1000000))
	while [[ $(http_code "$url/readyz") != 200 ]]; do
		if [[ -n ${newpid-} ]] && ! kill -0 "$newpid" 2>/dev/null; then
			fail "the new process exited before it was ready${log:+ (see $log)}"
		fi
		(($(now_us) < deadline)) || fail "not ready within ${ready_timeout}s${log:+ (see $log)}"
		sleep 0.002
	done
	t4=$(now_us)
	# Aggregators look at a leaf again at their next health check; have them look now.
	local agg
	for agg in "${agg_urls[@]}"; do
		curl "${curl_opts[@]}" -o /dev/null --max-time 5 "${agg%/}/v1/stats?refresh=1" 2>/dev/null || true
	done

	stats=$(curl "${curl_opts[@]}" --fail-with-body "$url/v1/stats") || fail "cannot read stats after the restart: $stats"
	after=$("$reef" cluster start-rows <<<"$stats") || fail "cannot read the start rows"
	start=$("$reef" cluster start <<<"$stats") || fail "cannot read the start info"
	if [[ $after != "$handed" ]]; then
		fail "rows lost or changed in the restart; per table, handed over (<) and at start (>):
$(diff <(echo "$handed") <(echo "$after") | grep '^[<>]' | sed 's/^/    /')"
	fi
	local rows_handed=0
	while read -r _ n; do rows_handed=$((rows_handed + ${n:-0})); done <<<"$handed"
	printf '%-12s %10s %8s %14s  %-6s %12d %12d\n' "$id" "$(ms "$t0" "$t1")" "$(ms "$t1" "$t2")" "$(ms "$t3" "$t4")" \
		"${start%% *}" "$rows_before" "$rows_handed" >"$tmp/$i.line"
}

n=${#ids[@]}
began=$(now_us)
echo "rolling deploy of $n leaves, $batch at a time${cluster_file:+ (cluster $cluster_file)}${binary:+, binary $binary}"
printf '%-12s %10s %8s %14s  %-6s %12s %12s\n' leaf handoff_ms exit_ms exec_ready_ms start rows_before rows_handed
failed=0
for ((b = 0; b < n; b += batch)); do
	jobs_pids=()
	for ((i = b; i < b + batch && i < n; i++)); do
		(restart_leaf "$i") &
		jobs_pids+=($!)
	done
	k=$b
	for jp in "${jobs_pids[@]}"; do
		if wait "$jp"; then
			cat "$tmp/$k.line"
		else
			failed=1
			echo "FAILED $(cat "$tmp/$k.err" 2>/dev/null || echo "${ids[$k]}: no reason recorded")" >&2
		fi
		k=$((k + 1))
	done
	if ((failed)); then
		echo "rolling deploy stopped after $(ms "$began" "$(now_us)") ms: a leaf failed; the leaves after it were not restarted" >&2
		exit 1
	fi
done
ended=$(now_us)
echo "total $(ms "$began" "$ended") ms for $n leaves, 0 rows lost"
