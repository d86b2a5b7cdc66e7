# syntax=docker/dockerfile:1
# bikeshare image: `docker build -t bikeshare .` at the repository root.
# Stage 1 compiles TypeScript with the dev dependencies; stage 2 holds only
# the production dependencies, dist/ and bin/, and runs as an unprivileged user.

ARG NODE_IMAGE=node:20-slim

FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json ./
COPY scripts ./scripts
COPY src ./src
RUN npm run build

FROM ${NODE_IMAGE} AS runtime
# tini is PID 1: it forwards SIGTERM to node (which has no handler yet while
# it migrates the schema, and PID 1 ignores unhandled signals) and reaps orphans.
RUN apt-get update \
 && apt-get install -y --no-install-recommends tini \
 && rm -rf /var/lib/apt/lists/*
ENV NODE_ENV=production BIKE_LOG_LEVEL=warn
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force
COPY --from=build /app/dist ./dist
COPY bin ./bin
# `bikeshare bikes seed ...`, `bikeshare migrate`, `bikeshare audit` inside the container.
RUN chmod 0755 bin/bikeshare.js && ln -s /app/bin/bikeshare.js /usr/local/bin/bikeshare
# The image's files stay root-owned and read-only to the service: it writes
# nothing (logs go to stdout), so readOnlyRootFilesystem works.
# 1000:1000 is the `node` user of the official image; numeric so that
# Kubernetes' runAsNonRoot can verify it.
USER 1000:1000
# 7000: the binary protocol; 9464: /metrics, /healthz, /readyz (the primary).
EXPOSE 7000 9464
HEALTHCHECK --interval=15s --timeout=3s --start-period=90s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.BIKE_METRICS_PORT||9464)+'/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
ENTRYPOINT ["/usr/bin/tini", "--"]
# node itself, never npm: the primary gets SIGTERM and drains its workers.
CMD ["node", "dist/main.js", "serve"]
