#!/usr/bin/env bash
# clinicflowd: refuses to start on a bad config or an invalid workflow, naming file, line and
# column; starts on a good one, answers /healthz, and stops cleanly on SIGTERM.
# usage: server_test.sh CLINICFLOWD_BINARY SOURCE_DIR
set -euo pipefail
server=$1 src=$2
tmp=$(mktemp -d)
# The shipped workflows name plugins; the server needs their [plugins.*] tables (copied from the
# shipped configuration) and their libraries (this build's plugins folder).
plugins_dir=$(cd "$(dirname "$server")/../plugins" && pwd)
# shellcheck source=server_harness.sh
source "$(dirname "$0")/server_harness.sh"

expect_exit() {  # expect_exit STATUS command...
  local want=$1
  shift
  set +e
  timeout 60 "$@" >"$tmp/out" 2>&1  # a server that wrongly starts must not hang the test
  local got=$?
  set -e
  cat "$tmp/out"
  [ "$got" -eq "$want" ] || { echo "expected exit status $want, got $got"; exit 1; }
}

write_config() {  # write_config WORKFLOWS_DIR [EXTRA_SERVER_LINE]
  cat >"$tmp/clinicflow.toml" <<TOML
[server]
listen = "127.0.0.1:0"
${2:-}
[paths]
data_dir = "$tmp/var"
workflows_dir = "$1"
plugins_dir = "$plugins_dir"
[log]
file = "$tmp/var/clinicflow.log"
TOML
  sed -n '/^\[plugins\./,$p' "$src/config/clinicflow.toml" >>"$tmp/clinicflow.toml"
}

# 1. An unknown key in the config: named with file, line and column; non-zero exit.
write_config "$src/workflows" 'lisen = "x"'
expect_exit 2 "$server" --config "$tmp/clinicflow.toml"
grep -qF "$tmp/clinicflow.toml:3:1: unknown key 'lisen' in [server]" "$tmp/out"

# 2. A missing config file.
expect_exit 2 "$server" --config "$tmp/nope.toml"
grep -qF "$tmp/nope.toml: file not found" "$tmp/out"

# 3. A bad flag value.
write_config "$src/workflows"
expect_exit 2 "$server" --config "$tmp/clinicflow.toml" --clock sometimes
grep -qF -- '--clock must be "real" or "virtual", not "sometimes"' "$tmp/out"

# 4. An invalid workflow: the server refuses to start and logs the located error.
mkdir -p "$tmp/workflows"
sed -e 's/roles = \["frontdesk"\]/roles = ["receptionist"]/' "$src/workflows/ketamine_iv.toml" >"$tmp/workflows/iv.toml"
sed -i "s#workflows_dir = .*#workflows_dir = \"$tmp/workflows\"#" "$tmp/clinicflow.toml"
expect_exit 3 "$server" --config "$tmp/clinicflow.toml"
line=$(grep -n 'receptionist' "$tmp/workflows/iv.toml" | head -1 | cut -d: -f1)
grep -qF "$tmp/workflows/iv.toml:$line:10: no role 'receptionist' in the server configuration" "$tmp/out"
[ ! -e "$tmp/var/clinicflow.db" ] || { echo "a refused start must not create the database"; exit 1; }

# 5. A good start on the shipped workflows folder as it is (workflows/*.sim.toml, the simulation
# profiles beside the workflows, are skipped): prints where it listens, answers /healthz, stops
# on SIGTERM with status 0.
write_config "$src/workflows"
start_server "$server" "$tmp/clinicflow.toml" http
exec 3<>"/dev/tcp/127.0.0.1/$port"
printf 'GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n' >&3
response=$(cat <&3)
exec 3>&-
echo "$response" | head -1 | grep -q '200 OK' || { echo "$response"; exit 1; }
echo "$response" | grep -q '{"status":"ok"}'
[ -f "$tmp/var/clinicflow.db" ] || { echo "no database under the data directory"; exit 1; }
grep -q 'workflow ketamine_iv v2 loaded' "$tmp/var/clinicflow.log"
grep -q 'workflow ketamine_im v1 loaded' "$tmp/var/clinicflow.log"

# 6. A second server on the same data directory is refused while the first runs, naming the lock
# and the holder (two would fire every timer and send every message twice).
expect_exit 1 "$server" --config "$tmp/clinicflow.toml"
grep -qF "is in use by another clinicflowd (pid $pid, lock file $tmp/var/clinicflow.db.lock)" "$tmp/out"
kill -0 "$pid"  # the first one runs on

kill -TERM "$pid"
wait "$pid"
status=$?
pid=""
[ "$status" -eq 0 ] || { echo "exit status $status after SIGTERM"; exit 1; }
grep -q 'stopped' "$tmp/var/clinicflow.log"
echo "server_test: ok"
