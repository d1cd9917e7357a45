#!/usr/bin/env bash
# Re-extracts the socket.io 0.9.6 browser client that Kazoo 3.x's documented example page loads.
# The file is committed (public/vendor/) because the npm package socket.io-client@0.9.6 drags in
# Node-0.x-era dependencies (ws 0.4 with a native build, uglify-js 1.2) that have no place in a
# production install; only its dist/socket.io.min.js is served.
# sha256 of dist/socket.io.min.js in socket.io-client-0.9.6.tgz (checked by the e2e suite):
# 491c2fb399fe361c7b7a3b3a38db971536b9ed6b1826230181b7f77389ce6542
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack --silent socket.io-client@0.9.6 >/dev/null && tar xzf socket.io-client-0.9.6.tgz)
cp "$work/package/dist/socket.io.min.js" public/vendor/socket.io-0.9.6.min.js
echo "$(sha256sum public/vendor/socket.io-0.9.6.min.js)"
