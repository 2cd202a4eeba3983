#!/usr/bin/env bash
# bench/run.sh measures cutover's router against the backend alone, a plain
# httputil.ReverseProxy, nginx and haproxy in one run on this machine, then
# runs the switch test. See bench/README.md for what each figure means.
#
# Knobs (environment): BENCH_DURATION (wrk -d, default 5s), BENCH_ROUNDS (3),
# BENCH_CONNS (wrk -c, 64), BENCH_THREADS (wrk -t, 2), BENCH_WEIGHT (green's
# weight in cutover, 10), BENCH_NO_PEERS=1 (skip nginx/haproxy),
# BENCH_NO_INSTALL=1 (never call apt-get), BENCH_NO_SWITCH=1 (skip switch test).
#
# Everything it starts runs in the foreground of a background job, on
# 127.0.0.1, and is stopped by its PID when the script exits.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${BENCH_DURATION:-5s}
ROUNDS=${BENCH_ROUNDS:-3}
CONNS=${BENCH_CONNS:-64}
THREADS=${BENCH_THREADS:-2}
WEIGHT=${BENCH_WEIGHT:-10}

mkdir -p bench/results
RESULTS=bench/results/latest.txt
exec > >(tee "$RESULTS") 2>&1

tmp=$(mktemp -d /tmp/cutover-bench.XXXXXX)
pids=()
child=
cleanup() {
	local p
	[ -n "$child" ] && kill "$child" 2>/dev/null
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# fg CMD...: runs CMD as a background job and waits for it, so that a signal
# to this script runs the cleanup at once instead of after CMD ends.
fg() {
	local rc=0
	"$@" &
	child=$!
	wait "$child" || rc=$?
	child=
	return "$rc"
}

# --- tools -----------------------------------------------------------------
need=()
command -v wrk >/dev/null || need+=(wrk)
if [ -z "${BENCH_NO_PEERS:-}" ]; then
	command -v nginx >/dev/null || need+=(nginx-light)
	command -v haproxy >/dev/null || need+=(haproxy)
fi
if [ ${#need[@]} -gt 0 ]; then
	if [ -z "${BENCH_NO_INSTALL:-}" ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
		echo "installing ${need[*]} with apt-get"
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}"; } >"$tmp/apt.log" 2>&1 ||
			{ echo "warning: apt-get failed:"; tail -5 "$tmp/apt.log"; }
	else
		echo "not installing ${need[*]} (not root, no apt-get, or BENCH_NO_INSTALL set)"
	fi
fi
command -v wrk >/dev/null || { echo "wrk is required"; exit 1; }

# --- build -----------------------------------------------------------------
echo "building"
go build -o "$tmp/backend" ./bench/backend
go build -o "$tmp/baseline" ./bench/baseline
have_cutover=
if go build -o "$tmp/cutoverbench" ./bench/cutoverbench 2>"$tmp/build.err" &&
	go build -o "$tmp/switchtest" ./bench/switchtest 2>>"$tmp/build.err"; then
	have_cutover=1
else
	echo "warning: cutover's router does not build yet; skipping it:"; head -5 "$tmp/build.err"
fi

# --- processes -------------------------------------------------------------
declare -A addr pid procs

# start NAME CMD...: runs CMD in the background; its first output line is
# its address.
start() {
	local name=$1; shift
	"$@" >"$tmp/$name.out" 2>"$tmp/$name.err" &
	pid[$name]=$!
	pids+=($!)
	local i
	for i in $(seq 200); do
		if [ -s "$tmp/$name.out" ]; then
			read -r "addr[$name]" <"$tmp/$name.out"
			return
		fi
		kill -0 "${pid[$name]}" 2>/dev/null || break
		sleep 0.05
	done
	echo "$name did not start:"; cat "$tmp/$name.err"; exit 1
}

# start_port NAME PORT CMD...: runs a server that does not print its
# address and waits until PORT accepts connections.
start_port() {
	local name=$1 port=$2; shift 2
	"$@" >"$tmp/$name.out" 2>"$tmp/$name.err" &
	pid[$name]=$!
	pids+=($!)
	addr[$name]=127.0.0.1:$port
	local i
	for i in $(seq 200); do
		if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
		kill -0 "${pid[$name]}" 2>/dev/null || break
		sleep 0.05
	done
	echo "$name did not start:"; cat "$tmp/$name.err" "$tmp/$name.out"; return 1
}

freeport() {
	local p
	for _ in $(seq 100); do
		p=$((20000 + RANDOM % 20000))
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then echo "$p"; return; fi
	done
	return 1
}

start blue "$tmp/backend" -listen 127.0.0.1:0 -color blue
start green "$tmp/backend" -listen 127.0.0.1:0 -color green
subjects=(direct httputil)
addr[direct]=${addr[blue]}
procs[direct]=${pid[blue]}
start httputil "$tmp/baseline" -listen 127.0.0.1:0 -upstream "${addr[blue]}"
procs[httputil]=${pid[httputil]}
if [ -n "$have_cutover" ]; then
	start cutover "$tmp/cutoverbench" -blue "${addr[blue]}" -green "${addr[green]}" -weight "$WEIGHT" -cpuprofile "$tmp/cutover.pprof"
	procs[cutover]=${pid[cutover]}
	subjects+=(cutover)
fi

if [ -z "${BENCH_NO_PEERS:-}" ] && command -v nginx >/dev/null; then
	port=$(freeport)
	mkdir -p "$tmp/nginx"
	cat >"$tmp/nginx.conf" <<EOF
daemon off;
master_process on;
worker_processes auto;
pid $tmp/nginx/nginx.pid;
error_log $tmp/nginx.err warn;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $tmp/nginx/body;
    proxy_temp_path $tmp/nginx/proxy;
    fastcgi_temp_path $tmp/nginx/fastcgi;
    uwsgi_temp_path $tmp/nginx/uwsgi;
    scgi_temp_path $tmp/nginx/scgi;
    upstream backend { server ${addr[blue]}; keepalive 256; }
    server {
        listen 127.0.0.1:$port;
        location / {
            proxy_pass http://backend;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
    }
}
EOF
	if start_port nginx "$port" nginx -p "$tmp/nginx" -e "$tmp/nginx.err" -c "$tmp/nginx.conf"; then
		procs[nginx]=${pid[nginx]}
		subjects+=(nginx)
	fi
fi
if [ -z "${BENCH_NO_PEERS:-}" ] && command -v haproxy >/dev/null; then
	port=$(freeport)
	cat >"$tmp/haproxy.cfg" <<EOF
global
    maxconn 8192
    nbthread $(nproc)
defaults
    mode http
    timeout connect 5s
    timeout client 60s
    timeout server 60s
    option http-keep-alive
frontend public
    bind 127.0.0.1:$port
    default_backend pool
backend pool
    http-reuse always
    server blue ${addr[blue]}
EOF
	if start_port haproxy "$port" haproxy -db -f "$tmp/haproxy.cfg"; then
		procs[haproxy]=${pid[haproxy]}
		subjects+=(haproxy)
	fi
fi

# --- measuring -------------------------------------------------------------
tck=$(getconf CLK_TCK)

# cputicks PID: user+system ticks of PID and its child processes.
cputicks() {
	local total=0 p t
	for p in "$1" $(cat /proc/"$1"/task/*/children 2>/dev/null); do
		t=$(sed 's/^.*) //' /proc/"$p"/stat 2>/dev/null | awk '{print $12 + $13}') || t=0
		total=$((total + ${t:-0}))
	done
	echo "$total"
}

# to_us VALUE: wrk's "318.00us" / "2.34ms" / "1.02s" in microseconds.
to_us() {
	awk -v v="$1" 'BEGIN {
		n = v + 0
		if (v ~ /us$/) print n; else if (v ~ /ms$/) print n * 1000; else if (v ~ /s$/) print n * 1000000; else print n }'
}

# measure ROUND SUBJECT: one wrk run, one line in $tmp/runs.
measure() {
	local round=$1 s=$2 before after out rps p50 p99 reqs errs cpu
	before=$(cputicks "${procs[$s]}")
	fg wrk -t"$THREADS" -c"$CONNS" -d"$DURATION" --latency "http://${addr[$s]}/" >"$tmp/wrk.out"
	out=$(<"$tmp/wrk.out")
	after=$(cputicks "${procs[$s]}")
	rps=$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")
	p50=$(to_us "$(awk '$1 == "50%" {print $2}' <<<"$out")")
	p99=$(to_us "$(awk '$1 == "99%" {print $2}' <<<"$out")")
	reqs=$(awk '/requests in/ {print $1}' <<<"$out")
	errs=$(awk '/Non-2xx/ {n += $NF} /Socket errors/ {gsub(",", ""); n += $4 + $6 + $8 + $10} END {print n + 0}' <<<"$out")
	cpu=$(awk -v t=$((after - before)) -v hz="$tck" -v r="$reqs" 'BEGIN {printf "%.1f", (r > 0) ? t / hz * 1e6 / r : 0}')
	echo "$round $s $rps $p50 $p99 $cpu $errs" >>"$tmp/runs"
	printf '  round %d %-9s %10.0f req/s  p50 %8.0fus  p99 %8.0fus  cpu %6.1fus/req  errors %d\n' \
		"$round" "$s" "$rps" "$p50" "$p99" "$cpu" "$errs"
}

echo
echo "== cutover bench $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "machine: $(nproc) cpus, $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo), $(uname -sr), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "tools: $(go version | cut -d' ' -f3), wrk $(wrk -v 2>&1 | awk 'NR==1 {print $2}')$(command -v nginx >/dev/null && echo ", $(nginx -v 2>&1 | cut -d' ' -f3)")$(command -v haproxy >/dev/null && echo ", haproxy $(haproxy -v | awk 'NR==1 {print $3}')")"
echo "load: wrk -t$THREADS -c$CONNS -d$DURATION, $ROUNDS interleaved rounds; cutover at $((100 - WEIGHT))/$WEIGHT blue/green"
echo "subjects: ${subjects[*]}"
echo "warming up"
for s in "${subjects[@]}"; do fg wrk -t"$THREADS" -c"$CONNS" -d1s "http://${addr[$s]}/" >/dev/null; done
: >"$tmp/runs"
n=${#subjects[@]}
for ((r = 1; r <= ROUNDS; r++)); do
	# Rotate the order each round so no subject always runs first.
	for ((i = 0; i < n; i++)); do measure "$r" "${subjects[$(((i + r - 1) % n))]}"; done
done

# median COLUMN SUBJECT
median() {
	awk -v s="$2" -v c="$1" '$2 == s {print $c}' "$tmp/runs" | sort -g |
		awk '{v[NR] = $1} END {if (NR == 0) print 0; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2}'
}
declare -A med
for s in "${subjects[@]}"; do med[$s]=$(median 3 "$s"); done
echo
printf '%-9s %10s %9s %9s %8s %9s %11s %7s\n' subject "req/s" "p50 us" "p99 us" "x direct" "x httputil" "cpu us/req" errors
for s in "${subjects[@]}"; do
	errs=$(awk -v s="$s" '$2 == s {n += $7} END {print n + 0}' "$tmp/runs")
	printf '%-9s %10.0f %9.0f %9.0f %8.2f %9.2f %11.1f %7d\n' "$s" "${med[$s]}" "$(median 4 "$s")" "$(median 5 "$s")" \
		"$(awk -v a="${med[$s]}" -v b="${med[direct]}" 'BEGIN {print a / b}')" \
		"$(awk -v a="${med[$s]}" -v b="${med[httputil]}" 'BEGIN {print a / b}')" \
		"$(median 6 "$s")" "$errs"
done
echo "(medians of $ROUNDS rounds; cpu us/req is the proxy process's own CPU per request, the backend's for direct)"
if [ -n "$have_cutover" ]; then
	ratio=$(awk -v a="${med[cutover]}" -v b="${med[httputil]}" 'BEGIN {printf "%.2f", a / b}')
	verdict=$(awk -v r="$ratio" 'BEGIN {print (r >= 1.2) ? "met" : "NOT met"}')
	echo "floor: cutover / httputil = $ratio (floor 1.20: $verdict)"
fi

status=0
if [ -n "$have_cutover" ]; then
	# Stop the router so it writes its CPU profile, then show where time went.
	kill -TERM "${pid[cutover]}"
	wait "${pid[cutover]}" || true
	echo
	echo "== where cutoverbench spent its CPU (go tool pprof -top)"
	go tool pprof -top -nodecount=20 "$tmp/cutoverbench" "$tmp/cutover.pprof" 2>/dev/null | sed -n '5,30p'
	echo "-- cumulative"
	go tool pprof -top -cum -nodecount=30 "$tmp/cutoverbench" "$tmp/cutover.pprof" 2>/dev/null | sed -n '7,40p'
	cp "$tmp/cutover.pprof" bench/results/cutover.pprof
	if [ -z "${BENCH_NO_SWITCH:-}" ]; then
		echo
		echo "== switch test (32 connections, 1000 flips)"
		fg "$tmp/switchtest" || status=$?
	fi
fi
exit "$status"
