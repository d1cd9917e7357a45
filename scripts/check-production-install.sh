#!/usr/bin/env bash
# Proves the production dependency set boots the gateway: what `src/` imports at run time must be
# in "dependencies", since the Docker image installs with `npm ci --omit=dev`. Installs that set
# alone into a temporary copy of the build, starts `node dist/main.js` and waits for /health,
# once on plain http and once with native TLS (a throwaway self-signed certificate) on https.
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

# boot_and_probe SCHEME [VAR=value...]: starts the build with the variables given and waits
# until /health answers on SCHEME.
boot_and_probe() {
  local scheme="$1"
  shift
  local port=$((20000 + RANDOM % 20000))
  # REPLAY_WINDOW_S=0: the replay log is a durable stream, which would outlive this check on
  # the machine's broker; the dependency set is the same with it on.
  (cd "$work" && env PORT="$port" HOST=127.0.0.1 LOG_LEVEL=warn REPLAY_WINDOW_S=0 "$@" node dist/main.js) &
  pid=$!
  for _ in $(seq 1 60); do
    # Any answer will do (503 while the broker is unreachable): the process booted. -k: the
    # certificate is the throwaway one below.
    if status="$(curl -sk -o /dev/null -w '%{http_code}' "$scheme://127.0.0.1:$port/health")" &&
      [ "$status" != 000 ]; then
      echo "production install answers $scheme /health with $status"
      kill "$pid"
      wait "$pid" 2>/dev/null || true
      pid=
      return 0
    fi
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "the gateway exited under the production install ($scheme)" >&2
      exit 1
    fi
    sleep 0.5
  done
  echo "the gateway did not answer $scheme /health within 30 s under the production install" >&2
  exit 1
}

boot_and_probe http

openssl req -x509 -newkey rsa:2048 -nodes -sha256 -days 1 -subj /CN=localhost \
  -addext subjectAltName=IP:127.0.0.1 -keyout "$work/key.pem" -out "$work/cert.pem" 2>/dev/null
boot_and_probe https TLS_CERT_FILE="$work/cert.pem" TLS_KEY_FILE="$work/key.pem"
