#!/usr/bin/env bash
# `clinicflow call` over wss://: a server with TLS on, a self-signed certificate for localhost.
# Trusted through --ca-file, the call gets its answer; without it the certificate is refused
# (nothing is sent); a ws:// URL against the TLS port gets no answer either.
# usage: call_tls_test.sh CLINICFLOWD_BINARY CLINICFLOW_BINARY
set -euo pipefail
server=$1 cli=$2
tmp=$(mktemp -d)
# shellcheck source=server_harness.sh
source "$(dirname "$0")/server_harness.sh"

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj "/CN=localhost" \
  -addext "subjectAltName=DNS:localhost" -keyout "$tmp/key.pem" -out "$tmp/cert.pem" 2>/dev/null
mkdir -p "$tmp/workflows"
cat >"$tmp/clinicflow.toml" <<TOML
[server]
listen = "127.0.0.1:0"
[paths]
data_dir = "$tmp/var"
workflows_dir = "$tmp/workflows"
[log]
file = "$tmp/var/clinicflow.log"
[api]
tls_cert = "$tmp/cert.pem"
tls_key = "$tmp/key.pem"
TOML
start_server "$server" "$tmp/clinicflow.toml" https
token=$(head -1 "$tmp/var/admin.token")

# Trusted: the answer, exit status 0.
"$cli" call clock.now --url "wss://localhost:$port/v1/ws" --token "$token" --ca-file "$tmp/cert.pem" >"$tmp/ok.out"
grep -q '"result":{"now":' "$tmp/ok.out" || { cat "$tmp/ok.out"; exit 1; }

# Not trusted: refused at the TLS handshake, exit status 2, and the reason names it.
set +e
"$cli" call clock.now --url "wss://localhost:$port/v1/ws" --token "$token" >"$tmp/untrusted.out" 2>&1
status=$?
"$cli" call clock.now --url "ws://localhost:$port/v1/ws" --token "$token" >"$tmp/plain.out" 2>&1
plain_status=$?
set -e
[ "$status" -eq 2 ] || { cat "$tmp/untrusted.out"; echo "expected exit 2 for an untrusted certificate, got $status"; exit 1; }
grep -q 'TLS handshake failed' "$tmp/untrusted.out" || { cat "$tmp/untrusted.out"; exit 1; }
[ "$plain_status" -eq 2 ] || { cat "$tmp/plain.out"; echo "expected exit 2 for ws:// on a TLS port, got $plain_status"; exit 1; }
echo "call_tls_test: ok"
