#!/usr/bin/env bash
# The benchmark tools still work end to end: clinicflow_echo answers, and clinicflow_bench runs
# each phase against a real clinicflowd without an error and does what the phase is for. Nothing
# here is timed; the figures themselves are docs/performance.md's.
#   bench_smoke_test.sh CLINICFLOWD CLINICFLOW_BENCH CLINICFLOW_ECHO SOURCE_DIR BUILD_DIR
set -euo pipefail
server=$1 bench=$2 echo_server=$3 source_dir=$4 build_dir=$5
tmp=$(mktemp -d)
source "$(dirname "$0")/server_harness.sh"
echo_pid=""
trap '[ -n "$echo_pid" ] && kill "$echo_pid" 2>/dev/null; cleanup' EXIT

fail() { echo "FAIL: $*"; exit 1; }
field() { sed -E "s/.* $1=([^ ]+).*/\1/" <<< "$2"; }

# The data directory and configuration run.sh uses.
source "$source_dir/tools/bench/data_dir.sh"
bench_data_dir "$tmp" "$build_dir" "$source_dir"
start_server "$server" "$tmp/clinicflow.toml" http
token=$(head -1 "$tmp/var/admin.token")
api="ws://127.0.0.1:$port/v1/ws"

# echo: the ceiling server answers what it is sent.
"$echo_server" 0 > "$tmp/echo.out" 2>&1 &
echo_pid=$!
for _ in $(seq 1 50); do grep -q "listening on" "$tmp/echo.out" && break; sleep 0.1; done
echo_port=$(grep -o "listening on [^ ]*" "$tmp/echo.out" | sed -E 's/.*:([0-9]+)$/\1/')
[ -n "$echo_port" ] || fail "clinicflow_echo printed no port"
r=$("$bench" --echo "127.0.0.1:$echo_port" -c 2 -d 0.5 | grep '^RESULT')
[ "$(field errors "$r")" = 0 ] || fail "echo: $r"
(( $(field req_per_s "$r") > 0 )) || fail "echo answered nothing: $r"

# walk: patients, cases and submits, every case walked to its end.
r=$("$bench" --api "$api" --token "$token" --workflow ketamine_iv_tasks --phase walk -c 4 -d 0.5 | tee "$tmp/walk" | grep '^RESULT')
[ "$(field errors "$r")" = 0 ] || fail "walk: $r"
(( $(field submit_per_s "$r") > 0 && $(field cases_per_s "$r" | cut -d. -f1) > 0 )) || fail "walk submitted nothing: $r"
grep -q '^patient.create' "$tmp/walk" || fail "walk created no patient"

# get: only case.get inside the window.
r=$("$bench" --api "$api" --token "$token" --workflow ketamine_iv_tasks --phase get -c 4 -d 0.5 | tee "$tmp/get" | grep '^RESULT')
[ "$(field errors "$r")" = 0 ] || fail "get: $r"
(( $(field get_per_s "$r") > 0 )) || fail "get read nothing: $r"
[ "$(grep -cE '^(case\.|patient\.)' "$tmp/get")" = 1 ] || fail "get sent more than case.get: $(cat "$tmp/get")"

# submit: with enough cases opened beforehand, only case.submit inside the window.
r=$("$bench" --api "$api" --token "$token" --workflow ketamine_iv_tasks --phase submit -c 4 -d 0.5 --setup-cases 600 |
      tee "$tmp/submit" | grep '^RESULT')
[ "$(field errors "$r")" = 0 ] || fail "submit: $r"
(( $(field submit_per_s "$r") > 0 )) || fail "submit submitted nothing: $r"
[ "$(grep -cE '^(case\.|patient\.)' "$tmp/submit")" = 1 ] || fail "submit sent more than case.submit: $(cat "$tmp/submit")"

# A wrong flag is a usage error.
set +e
"$bench" --api "$api" --token "$token" --workflow ketamine_iv_tasks --phase nope > "$tmp/usage" 2>&1
status=$?
set -e
[ "$status" = 2 ] && grep -q usage "$tmp/usage" || fail "--phase nope: exit $status"
echo "bench smoke test passed"
