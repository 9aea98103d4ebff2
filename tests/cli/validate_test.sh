#!/usr/bin/env bash
# `clinicflow validate` accepts the shipped workflows and rejects a broken one with located errors.
# usage: validate_test.sh CLINICFLOW_BINARY SOURCE_DIR
set -euo pipefail
cli=$1 src=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$src"

# The shipped configuration loads the plugins the workflows name (their form fields are checked
# too); its plugins_dir is relative to the source tree, so point it at this build's plugins.
plugins_dir=$(cd "$(dirname "$cli")/../plugins" && pwd)
sed "s#^plugins_dir = .*#plugins_dir = \"$plugins_dir\"#" config/clinicflow.toml >"$tmp/clinicflow.toml"

# Every shipped workflow; workflows/*.sim.toml are simulation profiles for `clinicflow simulate`,
# not workflows.
workflows=()
for f in workflows/*.toml; do [[ $f == *.sim.toml ]] || workflows+=("$f"); done
"$cli" validate --config "$tmp/clinicflow.toml" "${workflows[@]}" >"$tmp/ok.out" 2>"$tmp/ok.err"
cat "$tmp/ok.out"
! grep -q warning "$tmp/ok.err" || { cat "$tmp/ok.err"; echo "plugins did not load"; exit 1; }
grep -q '^ok workflows/ketamine_iv.toml: ketamine_iv version 2, 8 stages, 30 steps' "$tmp/ok.out"
grep -q '^ok workflows/ketamine_im.toml: ketamine_im version 1, 8 stages, 20 steps' "$tmp/ok.out"

# Break the shipped workflow in two places: a misspelled field in a condition, a step that is never reached.
sed -e 's/when = "age < 18"/when = "agee < 18"/' \
    -e '/^id = "re_evaluation"/i id = "orphan"\nstage = "maintenance"\nroles = ["nurse"]\n\n[[step]]' \
    workflows/ketamine_iv.toml >"$tmp/broken.toml"
set +e
"$cli" validate --config "$tmp/clinicflow.toml" "$tmp/broken.toml" >"$tmp/bad.out"
status=$?
set -e
cat "$tmp/bad.out"
[ "$status" -eq 1 ] || { echo "expected exit status 1, got $status"; exit 1; }
line=$(grep -n 'when = "agee < 18"' "$tmp/broken.toml" | cut -d: -f1)
grep -qF "$tmp/broken.toml:$line:11: in condition: step 'referral_intake' has no field 'agee'" "$tmp/bad.out"
grep -q "broken.toml:[0-9]*:1: step 'orphan' can never be reached" "$tmp/bad.out"
grep -q "^2 errors found" "$tmp/bad.out"

# Usage errors are not validation errors.
set +e
"$cli" validate >/dev/null 2>&1
[ $? -eq 2 ] || { echo "expected exit status 2 without files"; exit 1; }
set -e
echo "validate_test: ok"
