#!/usr/bin/env bash
# A self-signed certificate for the docker-compose stack's HAProxy (deploy/haproxy/certs/),
# valid for localhost and 127.0.0.1, or for the names given: scripts/make-self-signed-cert.sh
# blackhole.example.com. HAProxy wants the certificate and its key in one PEM file.
set -euo pipefail
cd "$(dirname "$0")/.."

names=("${@:-localhost}")
san="IP:127.0.0.1"
for name in "${names[@]}"; do san="$san,DNS:$name"; done

dir=deploy/haproxy/certs
mkdir -p "$dir"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
openssl req -x509 -newkey rsa:2048 -nodes -sha256 -days 365 \
  -subj "/CN=${names[0]}" -addext "subjectAltName=$san" \
  -keyout "$work/key.pem" -out "$work/cert.pem" 2>/dev/null
cat "$work/cert.pem" "$work/key.pem" >"$dir/blackhole.pem"
# HAProxy's image reads it as its own unprivileged user.
chmod 644 "$dir/blackhole.pem"
echo "wrote $dir/blackhole.pem for ${names[*]} (self-signed, 365 days)"
