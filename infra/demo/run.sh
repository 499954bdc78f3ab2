#!/usr/bin/env bash
# make demo: start the emulator on 127.0.0.1, play the lifecycle with `ami-sim demo`, stop it.
set -euo pipefail
cd "$(dirname "$0")/../.."
port="${EMULATOR_PORT:-5000}"
if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
  echo "port $port is taken: set EMULATOR_PORT to a free port" >&2
  exit 2
fi
log="$(mktemp)"
.venv/emulator/bin/python infra/emulator/launcher.py --host 127.0.0.1 --port "$port" >"$log" 2>&1 &
emulator=$!
trap 'kill "$emulator" 2>/dev/null; wait "$emulator" 2>/dev/null; rm -f "$log"' EXIT
for _ in $(seq 1 200); do
  grep -q "emulator ready" "$log" && break
  kill -0 "$emulator" 2>/dev/null || { cat "$log" >&2; exit 1; }
  sleep 0.1
done
grep -q "emulator ready" "$log" || { echo "emulator did not start" >&2; cat "$log" >&2; exit 1; }
export AWS_ENDPOINT_URL="http://127.0.0.1:$port" AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_REGION=us-east-1
"${CARGO_TARGET_DIR:-target}/debug/ami-sim" demo "$@"
