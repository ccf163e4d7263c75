#!/usr/bin/env bash
# The composite action's one step, a script so it runs (and is tested) outside
# GitHub too: install, start in the background, wait for health, export the URL.
set -euo pipefail
venv="${RUNNER_TEMP:-${TMPDIR:-/tmp}}/mockstatus-venv"
python3 -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check "${MOCKSTATUS_SPEC:?}"
port="${MOCKSTATUS_ACTION_PORT:-8080}"
# shellcheck disable=SC2086 # the extra flags are meant to split into words
nohup "$venv/bin/mockstatus" serve --port "$port" ${MOCKSTATUS_ACTION_ARGS:-} >"${venv}.log" 2>&1 &
echo "$!" >"${venv}.pid"
url="http://127.0.0.1:$port"
if ! "$venv/bin/mockstatus" health "$url" --wait 30s; then
  cat "${venv}.log" >&2
  exit 1
fi
echo "MOCKSTATUS_URL=$url" >>"${GITHUB_ENV:-/dev/null}"
echo "url=$url" >>"${GITHUB_OUTPUT:-/dev/null}"
echo "mockstatus healthy at $url"
