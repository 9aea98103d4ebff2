# Sourced by tools/bench/run.sh and tests/cli/bench_smoke_test.sh.
# bench_data_dir DIR BUILD_DIR SOURCE_DIR writes DIR/clinicflow.toml and DIR/workflows (a copy of
# tools/bench/ketamine_iv_tasks.toml) and makes DIR/var: the shipped settings
# (config/clinicflow.toml: limits, roles, synchronous = "full", cases_in_memory), loopback, port 0,
# the virtual clock, no plugins (the bench workflow uses staff tasks only). CASES_IN_MEMORY
# (default: the shipped 65536) sets [storage] cases_in_memory, e.g. 4096 to measure cases read
# back from the database.
bench_data_dir() {
  local dir=$1 build=$2 source_dir=$3
  mkdir -p "$dir/workflows" "$dir/var"
  cp "$source_dir/tools/bench/ketamine_iv_tasks.toml" "$dir/workflows/"
  cat > "$dir/clinicflow.toml" <<TOML
[server]
listen = "127.0.0.1:0"
clock = "virtual"
[paths]
data_dir = "$dir/var"
workflows_dir = "$dir/workflows"
plugins_dir = "$build/plugins"
[log]
level = "info"
[storage]
synchronous = "full"
cases_in_memory = ${CASES_IN_MEMORY:-65536}
[api]
max_message_bytes = 4194304
max_connections = 256
requests_per_second = 10000
idle_timeout = "5m"
auth_timeout = "10s"
max_queued_bytes = 16777216
[roles.frontdesk]
[roles.nurse]
[roles.prescriber]
[roles.billing]
[roles.admin]
TOML
}
