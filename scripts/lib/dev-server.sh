# Sourced by the scripts that test a running server from outside (the API fuzzer, the
# browser tests): starts `hookline serve --dev` on the embedded store in a temp dir, on
# a free port, with an org whose API key it sets. Sets BASE, KEY and DATA; stops the
# server and removes the temp dir when the calling script exits.
# Usage: start_dev_server <path to the hookline binary>
start_dev_server() {
  local bin="$1" port
  DATA="$(mktemp -d)"
  port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
  KEY="$("$bin" org create tests --data-dir "$DATA" --json |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["api_key"])')"
  "$bin" serve --dev --listen "127.0.0.1:$port" --data-dir "$DATA" >"$DATA/server.log" 2>&1 &
  DEV_SERVER_PID=$!
  trap 'kill $DEV_SERVER_PID 2>/dev/null || true; wait $DEV_SERVER_PID 2>/dev/null || true; rm -rf "$DATA"' EXIT
  BASE="http://127.0.0.1:$port"
  for _ in $(seq 1 50); do
    curl -fs "$BASE/healthz" >/dev/null && return 0
    sleep 0.2
  done
  echo "the server did not start; its log:" >&2
  cat "$DATA/server.log" >&2
  return 1
}
