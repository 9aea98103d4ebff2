#!/usr/bin/env bash
# The integrator tutorial (docs/plugins.md, part 2), done exactly as written: install the SDK with
# `cmake --install`, build examples/sms_gateway_plugin out of tree against it, copy the .so into
# the server's plugins folder, configure [plugins.sms_gateway], reference it from a workflow,
# start the server and see the message delivered — once, also after retries and restarts. The
# code blocks the tutorial shows must be the files in examples/sms_gateway_plugin/.
#
# OPEN_CASE_DRIVER (tests/cli/open_case_driver.cpp) opens cases with the same wiring as
# clinicflowd (app::Runtime) and runs the outbox one pass at a time, so each attempt is seen;
# the server itself does the first delivery (it delivers pending messages when it starts).
#
# usage: out_of_tree_test.sh SOURCE_DIR BUILD_DIR [OPEN_CASE_DRIVER]
#   BUILD_DIR: the project's configured build folder, with kernel/clinicflowd built.
set -euo pipefail
src=$(cd "$1" && pwd)
build=$(cd "$2" && pwd)
driver=${3:-$build/tests/open_case_driver}
tmp=$(mktemp -d)
pid=""
cleanup() {
  if [ -n "$pid" ]; then kill -9 "$pid" 2>/dev/null || true; fi
  rm -rf "$tmp"
}
trap cleanup EXIT

fail() {
  echo "out_of_tree_test: FAILED: $*" >&2
  exit 1
}
show() {  # show FILE...: print files for a failure's context
  for f in "$@"; do
    [ -f "$f" ] && { echo "--- $f"; cat "$f"; } >&2
  done
  return 0
}
[ -f "$build/CMakeCache.txt" ] || fail "$build is not a configured CMake build folder"
[ -x "$driver" ] || fail "no driver at $driver (build the target open_case_driver)"

# ---------------------------------------------------------------- 0. the tutorial is the example
# docs/plugins.md marks each file it shows with "<!-- file: PATH -->" before the code block.
doc_block() {  # doc_block PATH: the code block the tutorial shows for PATH
  awk -v marker="<!-- file: $1 -->" '
    $0 == marker { found = 1; next }
    found == 1 && /^```/ { found = 2; next }
    found == 2 && /^```$/ { exit }
    found == 2 { print }' "$src/docs/plugins.md"
}
for f in examples/sms_gateway_plugin/CMakeLists.txt examples/sms_gateway_plugin/sms_gateway.cpp; do
  doc_block "$f" >"$tmp/doc_block"
  [ -s "$tmp/doc_block" ] || fail "docs/plugins.md shows no code block for $f"
  diff -u "$tmp/doc_block" "$src/$f" >&2 || fail "docs/plugins.md shows a different $f than the repository holds"
done

# ---------------------------------------------------------------- 1. install the SDK
timeout 120 cmake --install "$build" --prefix "$tmp/sdk" >"$tmp/install.log" 2>&1 ||
  { show "$tmp/install.log"; fail "cmake --install $build failed (is kernel/clinicflowd built?)"; }
for f in include/clinicflow/plugin.h include/clinicflow/plugin.hpp bin/clinicflowd; do
  [ -e "$tmp/sdk/$f" ] || { show "$tmp/install.log"; fail "cmake --install did not install $f"; }
done
package=$(find "$tmp/sdk" -name clinicflowConfig.cmake)
[ -n "$package" ] || fail "cmake --install did not install the CMake package (clinicflowConfig.cmake)"
server=$tmp/sdk/bin/clinicflowd

# ---------------------------------------------------------------- 2. build the plugin out of tree
# With the project's own compiler, and its ccache when it uses one.
cxx=$(sed -n 's/^CMAKE_CXX_COMPILER:[A-Z]*=//p' "$build/CMakeCache.txt")
ccache=$(sed -n 's/^CCACHE_PROGRAM:[A-Z]*=//p' "$build/CMakeCache.txt")
args=(-G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo "-DCMAKE_PREFIX_PATH=$tmp/sdk")
[ -n "$cxx" ] && args+=("-DCMAKE_CXX_COMPILER=$cxx")
[ -n "$ccache" ] && [ -x "$ccache" ] && args+=("-DCMAKE_CXX_COMPILER_LAUNCHER=$ccache")
timeout 300 cmake -S "$src/examples/sms_gateway_plugin" -B "$tmp/plugin-build" "${args[@]}" >"$tmp/configure.log" 2>&1 ||
  { show "$tmp/configure.log"; fail "configuring examples/sms_gateway_plugin against the installed SDK failed"; }
timeout 300 cmake --build "$tmp/plugin-build" -j 2 >"$tmp/build.log" 2>&1 ||
  { show "$tmp/build.log"; fail "building examples/sms_gateway_plugin failed"; }
if grep -q 'warning:' "$tmp/build.log"; then show "$tmp/build.log"; fail "examples/sms_gateway_plugin builds with warnings"; fi
so=$tmp/plugin-build/sms_gateway.so
[ -f "$so" ] || fail "the build made no sms_gateway.so (clinicflow_add_plugin names it NAME.so)"
exported=$(nm -D --defined-only "$so" | grep -c ' T clinicflow_plugin_' || true)
[ "$exported" -eq 6 ] || { nm -D --defined-only "$so" | grep clinicflow >&2 || true; fail "sms_gateway.so exports $exported of the 6 ABI functions"; }

# ---------------------------------------------------------------- 3. install it into the server
mkdir -p "$tmp/plugins" "$tmp/workflows"
cp "$so" "$tmp/plugins/"

write_config() {  # write_config FILE PLUGIN_TABLE_LINES
  cat >"$1" <<TOML
[server]
listen = "127.0.0.1:0"
plugin_timeout = "5s"

[paths]
data_dir = "$tmp/var"
workflows_dir = "$tmp/workflows"
plugins_dir = "$tmp/plugins"

[delivery]
first_retry = "1s"

[plugins.sms_gateway]
$2
TOML
}
config=$tmp/clinicflow.toml
write_config "$config" "spool_dir = \"$tmp/spool\""

# The tutorial's workflow, plus a second message with no address (the plugin answers "failed").
doc_block workflows/sms_demo.toml >"$tmp/workflows/sms_demo.toml"
grep -q 'via = "sms_gateway"' "$tmp/workflows/sms_demo.toml" || fail "docs/plugins.md shows no workflows/sms_demo.toml"
cat >>"$tmp/workflows/sms_demo.toml" <<'TOML'

  [[step.message]]
  on = "opened"
  template = "welcome"
  via = "sms_gateway"
  to = "support_person"
TOML

# ---------------------------------------------------------------- helpers: the server
start_server() {  # waits for the "listening on" line
  "$server" --config "$config" "$@" >"$tmp/stdout" 2>"$tmp/stderr" &
  pid=$!
  for _ in $(seq 1 150); do
    grep -q 'listening on' "$tmp/stdout" && return 0
    kill -0 "$pid" 2>/dev/null || { pid=""; show "$tmp/stdout" "$tmp/stderr"; fail "clinicflowd exited early"; }
    sleep 0.1
  done
  show "$tmp/stdout" "$tmp/stderr"
  fail "clinicflowd did not print 'listening on' within 15 s"
}
stop_server() {  # SIGTERM; expects exit status 0 within 15 s
  kill -TERM "$pid"
  for _ in $(seq 1 150); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -0 "$pid" 2>/dev/null && { show "$tmp/stderr"; fail "clinicflowd did not stop within 15 s of SIGTERM"; }
  local status=0
  wait "$pid" || status=$?
  pid=""
  [ "$status" -eq 0 ] || { show "$tmp/stderr"; fail "clinicflowd exited with status $status after SIGTERM"; }
}
run_driver() {  # run_driver ARGS...: output in $tmp/driver.out
  timeout 60 "$driver" "$config" "$@" >"$tmp/driver.out" 2>"$tmp/driver.err" ||
    { show "$tmp/driver.out" "$tmp/driver.err"; fail "open_case_driver $* failed"; }
}
expect_line() {  # expect_line FILE EXACT_LINE WHAT
  grep -qxF -- "$2" "$1" || { show "$1"; fail "$3: expected the line '$2'"; }
}
spool=$tmp/spool/CLINIC.txt  # <spool_dir>/<sender>.txt, sender defaults to CLINIC

# ---------------------------------------------------------------- 4. a broken configuration
# A required setting left out: reported with the config file's line, fatal with --strict (4).
write_config "$tmp/missing.toml" ""
set +e
timeout 60 "$server" --config "$tmp/missing.toml" --strict >"$tmp/out" 2>&1
status=$?
set -e
[ "$status" -eq 4 ] || { show "$tmp/out"; fail "--strict with a broken plugin: expected exit status 4, got $status"; }
grep -qF "$tmp/missing.toml:13:1: plugin 'sms_gateway': setting 'spool_dir' is required (the folder the SMS gateway picks messages up from)" "$tmp/out" ||
  { show "$tmp/out"; fail "the missing spool_dir is not reported as docs/plugins.md shows"; }
# A setting the plugin's constructor refuses.
write_config "$tmp/sender.toml" "spool_dir = \"$tmp/spool\"
sender = \"Not valid!\""
set +e
timeout 60 "$server" --config "$tmp/sender.toml" --strict >"$tmp/out" 2>&1
status=$?
set -e
[ "$status" -eq 4 ] || { show "$tmp/out"; fail "--strict with a bad sender: expected exit status 4, got $status"; }
grep -qF "plugin 'sms_gateway': could not be created with its settings: setting 'sender' must be 1 to 11 letters and digits, not 'Not valid!'" "$tmp/out" ||
  { show "$tmp/out"; fail "the refused sender is not reported as docs/plugins.md shows"; }

# ---------------------------------------------------------------- 5. the server loads the plugin
start_server
stop_server
grep -qF "plugin sms_gateway 1.0.0 (messaging) loaded from $tmp/plugins/sms_gateway.so" "$tmp/stderr" ||
  { show "$tmp/stderr"; fail "the server did not log the plugin as loaded"; }
grep -qF "workflow sms_demo v1 loaded" "$tmp/stderr" || { show "$tmp/stderr"; fail "the server did not load the workflow"; }
[ -f "$tmp/var/clinicflow.db" ] || fail "the server made no database"

# ---------------------------------------------------------------- 6. a case; the server delivers
mkdir -p "$tmp/spool"
run_driver open sms_demo p-001 --no-dispatch
case_a=$(sed -n 's/^case //p' "$tmp/driver.out")
[ -n "$case_a" ] || { show "$tmp/driver.out"; fail "the driver printed no case id"; }
[ "$(grep -c " sms_gateway pending attempts=0 " "$tmp/driver.out")" -eq 2 ] ||
  { show "$tmp/driver.out"; fail "opening the case did not queue two pending messages"; }
[ ! -e "$spool" ] || fail "a message was delivered before anything dispatched it"

start_server  # delivers what is pending as it starts
for _ in $(seq 1 100); do
  [ -s "$spool" ] && break
  sleep 0.1
done
stop_server
[ -s "$spool" ] || { show "$tmp/stderr"; fail "the server did not deliver the message to $spool within 10 s"; }
expect_line "$spool" "+15550100|Hello p-001, your case $case_a is open." "the spool file"
[ "$(wc -l <"$spool")" -eq 1 ] || { show "$spool"; fail "the spool file should hold exactly one line"; }

run_driver messages "$case_a"
expect_line "$tmp/driver.out" "message $case_a-4 sms_gateway delivered attempts=1 error=" "the delivered message"
expect_line "$tmp/driver.out" \
  "message $case_a-5 sms_gateway failed attempts=1 error=no phone number: give the workflow's [[step.message]] an 'address'" \
  "the message without an address"

# ---------------------------------------------------------------- 7. never twice
run_driver dispatch
expect_line "$tmp/driver.out" "attempts 0" "a second dispatch pass"
start_server
sleep 1  # the outbox's first pass runs as the server starts
stop_server
[ "$(wc -l <"$spool")" -eq 1 ] || { show "$spool"; fail "a message was delivered twice"; }

# ---------------------------------------------------------------- 8. retry after a write error
mv "$tmp/spool" "$tmp/spool.away"
run_driver open sms_demo p-002
case_b=$(sed -n 's/^case //p' "$tmp/driver.out")
expect_line "$tmp/driver.out" "attempts 2" "the first pass for case B"
expect_line "$tmp/driver.out" "message $case_b-4 sms_gateway pending attempts=1 error=cannot open $spool: No such file or directory" \
  "a message whose spool folder is missing"
mv "$tmp/spool.away" "$tmp/spool"
sleep 1.2  # [delivery] first_retry = "1s"
run_driver dispatch
expect_line "$tmp/driver.out" "attempts 1" "the pass once the retry is due"
run_driver messages "$case_b"
expect_line "$tmp/driver.out" "message $case_b-4 sms_gateway delivered attempts=2 error=" "the retried message"
expect_line "$spool" "+15550100|Hello p-002, your case $case_b is open." "the spool file after the retry"
[ "$(wc -l <"$spool")" -eq 2 ] || { show "$spool"; fail "the spool file should hold exactly two lines"; }

echo "out_of_tree_test: ok"
