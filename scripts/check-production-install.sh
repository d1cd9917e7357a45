#!/usr/bin/env bash
# Proves the production dependency set boots the gateway: what `src/` imports at run time must be
# in "dependencies", since the Docker image installs with `npm ci --omit=dev`. Installs that set
# alone into a temporary copy of the build, starts `node dist/main.js` and waits for /health.
set -euo pipefail
cd "$(dirname "$0")/.."

work="$(mktemp -d)"
cleanup() {
  if [ -n "${pid:-}" ]; then kill "$pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

cp -r package.json package-lock.json dist public "$work/"
(cd "$work" && npm ci --omit=dev --no-audit --no-fund --loglevel=error)

port=$((20000 + RANDOM % 20000))
(cd "$work" && PORT="$port" HOST=127.0.0.1 LOG_LEVEL=warn node dist/main.js) &
pid=$!
for _ in $(seq 1 60); do
  # Any answer will do (503 while the broker is unreachable): the process booted.
  if status="$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/health")" &&
    [ "$status" != 000 ]; then
    echo "production install answers /health with $status"
    exit 0
  fi
  if ! kill -0 "$pid" 2>/dev/null; then
    echo "the gateway exited under the production install" >&2
    exit 1
  fi
  sleep 0.5
done
echo "the gateway did not answer /health within 30 s under the production install" >&2
exit 1
