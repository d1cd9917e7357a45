# syntax=docker/dockerfile:1

# --- build: compile TypeScript with the Nest CLI (needs devDependencies) ---------------------
FROM node:20-bookworm-slim AS build
WORKDIR /app
# No dependency of this project needs an install script (the one that has one, @parcel/watcher,
# is a dev-only file watcher with prebuilt binaries), so skip them all.
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY nest-cli.json tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build

# --- runtime: production dependencies and the compiled output only --------------------------
FROM node:20-bookworm-slim AS runtime
ENV NODE_ENV=production
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force
COPY --from=build /app/dist ./dist
COPY public ./public

# The image's unprivileged user (uid 1000); files above stay root-owned and read-only to it.
USER node
EXPOSE 5555
# Slim images have no curl: probe with Node. /health answers 200 while consuming from RabbitMQ
# and 503 otherwise. With native TLS (TLS_CERT_FILE set) the port speaks only https; the probe
# follows, and skips verifying a certificate issued for a public name, not for 127.0.0.1.
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
  CMD ["node", "-e", "const tls = Boolean(process.env.TLS_CERT_FILE); require(tls ? 'node:https' : 'node:http').get({ host: '127.0.0.1', port: process.env.PORT || 5555, path: '/health', rejectUnauthorized: false, timeout: 4000 }, (r) => process.exit(r.statusCode === 200 ? 0 : 1)).on('timeout', () => process.exit(1)).on('error', () => process.exit(1))"]
# Exec form: node is PID 1 and receives SIGTERM; the app enables Nest's shutdown hooks.
CMD ["node", "dist/main.js"]
