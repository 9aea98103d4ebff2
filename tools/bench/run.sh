#!/usr/bin/env bash
# Runs the API benchmark: clinicflow_echo (the ceiling) and clinicflowd on loopback, then
# clinicflow_bench for C = 1, 16, 64 connections: echo, case.get only, the walk (patient.create,
# case.open, case.submit ...) and case.submit only (on cases opened before the clock starts).
#
#   tools/bench/run.sh BUILD_DIR [SECONDS_PER_CONFIGURATION (default 5, at most 10)]
#
# Environment: REPS (default 2) repeats every configuration; CONNECTIONS (default "1 16 64");
# CASES_IN_MEMORY (default: the shipped 65536) is the server's [storage] cases_in_memory.
# Builds nothing: build clinicflowd, clinicflow_echo and clinicflow_bench first. Everything it
# starts is stopped on exit; its temporary data directory is removed.
set -euo pipefail

build=${1:?usage: run.sh BUILD_DIR [SECONDS]}
build=$(cd "$build" && pwd)
seconds=${2:-5}
reps=${REPS:-2}
connections=${CONNECTIONS:-"1 16 64"}
source_dir=$(cd "$(dirname "$0")/../.." && pwd)
if ! [[ $seconds =~ ^[0-9]+$ ]] || ((seconds < 1 || seconds > 10)); then
  echo "run.sh: SECONDS must be 1..10" >&2
  exit 2
fi
echo_bin=$build/tools/bench/clinicflow_echo
bench_bin=$build/tools/bench/clinicflow_bench
server_bin=$build/kernel/clinicflowd
for b in "$echo_bin" "$bench_bin" "$server_bin"; do
  [[ -x $b ]] || { echo "run.sh: $b is missing; build it first" >&2; exit 2; }
done

tmp=$(mktemp -d /tmp/clinicflow-bench.XXXXXX)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Waits (at most 30 s) for "listening on ...:PORT" in a file and prints PORT.
wait_port() {
  local file=$1 i
  for ((i = 0; i < 300; i++)); do
    if grep -q "listening on" "$file" 2>/dev/null; then
      grep -o "listening on [^ ]*" "$file" | head -1 | sed -E 's/.*:([0-9]+)$/\1/'
      return 0
    fi
    sleep 0.1
  done
  echo "run.sh: no 'listening on' in $file" >&2
  cat "$file" >&2
  return 1
}

source "$source_dir/tools/bench/data_dir.sh"
bench_data_dir "$tmp" "$build" "$source_dir"

"$echo_bin" 0 > "$tmp/echo.out" 2>&1 &
pids+=($!)
"$server_bin" --config "$tmp/clinicflow.toml" --clock virtual > "$tmp/server.out" 2> "$tmp/server.err" &
pids+=($!)
echo_port=$(wait_port "$tmp/echo.out")
api_port=$(wait_port "$tmp/server.out")
token=$(head -1 "$tmp/var/admin.token")

echo "# $(date -u +%FT%TZ) $(nproc) cores; load average: $(cut -d' ' -f1-3 /proc/loadavg); ${seconds} s per configuration, ${reps} rep(s)"
bench() {  # label args... ; prints the RESULT line (the full output goes to $tmp/log)
  local label=$1
  shift
  echo "## $label $*" >> "$tmp/log"
  timeout $((seconds * 2 + 60)) "$bench_bin" "$@" -d "$seconds" | tee -a "$tmp/log" | grep '^RESULT'
}

results=()
for c in $connections; do
  for ((r = 1; r <= reps; r++)); do
    e=$(bench echo --echo "127.0.0.1:$echo_port" -c "$c")
    g=$(bench get --api "ws://127.0.0.1:$api_port/v1/ws" --token "$token" --workflow ketamine_iv_tasks --phase get -c "$c")
    w=$(bench walk --api "ws://127.0.0.1:$api_port/v1/ws" --token "$token" --workflow ketamine_iv_tasks --phase walk -c "$c")
    # Enough open cases per connection (2 submits each) that none runs out within the window:
    # one connection alone submits up to ~1,600/s, each of 16 up to ~620/s, each of 64 up to
    # ~250/s; each case takes 2.
    per_second=$((c <= 1 ? 1000 : c <= 16 ? 400 : 200))
    s=$(bench submit --api "ws://127.0.0.1:$api_port/v1/ws" --token "$token" --workflow ketamine_iv_tasks --phase submit \
          -c "$c" --setup-cases $((seconds * per_second)))
    results+=("$c $r|$e|$g|$w|$s")
    echo "C=$c run $r done (load average $(cut -d' ' -f1 /proc/loadavg))" >&2
  done
done

echo
echo "Full output per run:"
sed 's/^/    /' "$tmp/log"
echo
printf '%-4s %-3s | %9s %7s | %9s %6s %7s %7s | %9s %9s %7s %7s | %9s %7s %7s | %s\n' \
  C run echo/s e.p99 get/s ratio g.p50 g.p99 walk.rq/s w.sub/s cases/s w.s.p99 submit/s s.p50 s.p99 errors
for line in "${results[@]}"; do
  IFS='|' read -r head e g w s <<< "$line"
  field() { sed -E "s/.* $1=([^ ]+).*/\1/" <<< "$2"; }
  read -r c r <<< "$head"
  awk -v c="$c" -v r="$r" -v er="$(field req_per_s "$e")" -v ep99="$(field p99_us "$e")" \
      -v gr="$(field get_per_s "$g")" -v g50="$(field get_p50_us "$g")" -v g99="$(field get_p99_us "$g")" \
      -v wr="$(field req_per_s "$w")" -v wsr="$(field submit_per_s "$w")" -v cs="$(field cases_per_s "$w")" \
      -v ws99="$(field submit_p99_us "$w")" \
      -v sr="$(field submit_per_s "$s")" -v s50="$(field submit_p50_us "$s")" -v s99="$(field submit_p99_us "$s")" \
      -v errs="$(field errors "$g")/$(field errors "$w")/$(field errors "$s")" 'BEGIN {
    printf "%-4s %-3s | %9.0f %7.0f | %9.0f %6.2f %7.0f %7.0f | %9.0f %9.0f %7.1f %7.0f | %9.0f %7.0f %7.0f | %s\n",
      c, r, er, ep99, gr, gr / er, g50, g99, wr, wsr, cs, ws99, sr, s50, s99, errs }'
done
echo "(latencies in µs; ratio = case.get req/s ÷ echo msgs/s; walk: all methods, of which w.sub/s case.submit;"
echo " submit/s: the case.submit-only phase; errors = get/walk/submit)"
