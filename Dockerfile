# syntax=docker/dockerfile:1
#
# tollgate image: build stage compiles TypeScript, runtime stage holds production
# dependencies, dist/, config/ and the demo echo upstream, and runs as the non-root
# `node` user.
#
#   docker build -t tollgate:local .        # the tag docker-compose.yml and deploy/kubernetes/ use
#   docker run --rm -p 8080:8080 -e UPSTREAM_URL=http://api.internal:3000 tollgate:local
#   docker run --rm tollgate:local node dist/main.js --upstream-url http://api:3000 --port 8081
#   docker run --rm -e PORT=3000 tollgate:local node scripts/echo-upstream.js   # demo upstream

ARG NODE_IMAGE=node:20-slim

# ---- build: full dependencies, compile src/ → dist/ ---------------------------------
FROM ${NODE_IMAGE} AS build
WORKDIR /app
# Manifests first so the `npm ci` layer is reused while only sources change.
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build

# ---- runtime: production dependencies only -------------------------------------------
FROM ${NODE_IMAGE} AS runtime

# PID 1: tini, not node. The gateway installs its own SIGTERM/SIGINT handlers (graceful
# drain, SPEC §6), and the kernel delivers those to PID 1 only when a handler exists, so
# node as PID 1 would drain correctly. tini is there for the rest: it reaps zombies
# (WORKERS>1 forks worker processes), and it forwards signals to one-off commands run in
# this image that install no handler (seed-keys, a shell), which as PID 1 would ignore
# Ctrl-C and `docker stop` and be SIGKILLed after the grace period. Costs ~1 MB.
# `docker run --init` / compose `init: true` would do the same, but only when the
# operator remembers it. https://github.com/krallin/tini#why-tini
RUN apt-get update \
 && apt-get install -y --no-install-recommends tini \
 && rm -rf /var/lib/apt/lists/*

ENV NODE_ENV=production
# PORT is deliberately not set here: the echo upstream run from this image reads PORT
# too (default 3000), and the gateway's own default is already 8080 (SPEC §1).
WORKDIR /app

COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force

# Owned by root and read-only for the `node` user: the process cannot rewrite its own
# code or config. The gateway only reads config/ (tiers are hot-reloaded, never written).
COPY --from=build /app/dist ./dist
COPY config ./config
COPY scripts/echo-upstream.js ./scripts/echo-upstream.js

USER node

# Proxy port and admin port (the admin listener binds 127.0.0.1 unless ADMIN_HOST is set;
# set ADMIN_HOST=0.0.0.0 together with ADMIN_TOKEN to reach it from outside).
EXPOSE 8080 9090

# node itself, no curl in the slim image. /livez answers on loopback whatever ADMIN_HOST
# is, as long as it is 127.0.0.1 or 0.0.0.0. Shell form so ${ADMIN_PORT:-9090} expands at
# check time with the container's environment.
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
  CMD node -e "require('http').get('http://127.0.0.1:${ADMIN_PORT:-9090}/livez', {timeout: 2000}, (r) => process.exit(r.statusCode === 200 ? 0 : 1)).on('error', () => process.exit(1)).on('timeout', () => process.exit(1))"

# ENTRYPOINT is only tini so `command:` in compose (or arguments to `docker run`) can
# run another program from this image, e.g. the echo upstream. Flags for the gateway go
# after the CMD: `docker run tollgate node dist/main.js --port 8081`.
ENTRYPOINT ["/usr/bin/tini", "--"]
CMD ["node", "dist/main.js"]
