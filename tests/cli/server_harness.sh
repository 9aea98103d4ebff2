# Sourced by the CLI tests that run a server, after they set $tmp (a scratch folder). On exit the
# server started here is killed and $tmp removed.
pid=""
cleanup() {
  [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT

# start_server SERVER CONFIG SCHEME runs SERVER --config
# CONFIG in the background (output in $tmp/stdout and $tmp/stderr, pid in $pid), waits at most
# 10 s for "listening on SCHEME://127.0.0.1:PORT" and sets $port; the test fails if the server
# exits first or prints no port.
start_server() {
  local server=$1 config=$2 scheme=$3
  "$server" --config "$config" >"$tmp/stdout" 2>"$tmp/stderr" &
  pid=$!
  for _ in $(seq 1 100); do
    grep -q 'listening on' "$tmp/stdout" && break
    kill -0 "$pid" 2>/dev/null || { cat "$tmp/stderr"; echo "server exited early"; exit 1; }
    sleep 0.1
  done
  port=$(sed -n "s#.*listening on $scheme://127.0.0.1:\([0-9]*\).*#\1#p" "$tmp/stdout")
  [ -n "$port" ] || { cat "$tmp/stdout" "$tmp/stderr"; echo "no $scheme port printed"; exit 1; }
}
