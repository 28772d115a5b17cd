# The pgplay image, for Kubernetes CronJobs (`pgplay schedule ... --kubernetes --image IMAGE`) or any
# container scheduler: Debian bookworm with Node.js 20, the PostgreSQL 15 client tools, pgBackRest and
# pgplay. Its entrypoint is the pgplay CLI:
#   docker build -t pgplay:0.1.0 .
#   docker run --rm pgplay:0.1.0 run nightly-backup -i /etc/pgplay/inventory/inventory.yml
# The inventory comes from a ConfigMap and the secrets (SSH key, known_hosts, the inventory's {env}
# variables) from a Secret, as the printed CronJob says; nothing secret is baked into the image.

# ---- build: TypeScript to dist/ and the precompiled validators ----------------------------------------
FROM node:20-bookworm-slim AS build
WORKDIR /src
COPY package.json package-lock.json tsconfig.json ./
COPY src ./src
COPY schemas ./schemas
COPY templates ./templates
COPY playbooks ./playbooks
# npm ci runs the package's prepare script (npm run build): tsc, the validators and the CLI bundle.
RUN npm ci --no-audit --no-fund && npm prune --omit=dev --no-audit --no-fund

# ---- runtime -----------------------------------------------------------------------------------------
FROM node:20-bookworm-slim
# The tools pgplay runs where it runs (the local transport, a drill in the pod); over SSH the hosts' own are used.
RUN apt-get update \
 && apt-get install -y --no-install-recommends postgresql-client-15 pgbackrest openssh-client ca-certificates \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /opt/pgplay
COPY --from=build /src/package.json ./package.json
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/dist ./dist
COPY --from=build /src/schemas ./schemas
COPY --from=build /src/templates ./templates
COPY --from=build /src/playbooks ./playbooks
# No terminal in a scheduled pod: a step that needs a human's yes refuses (exit 3) instead of waiting.
# The run journal and locks: mount a volume here to keep history and --resume across pods.
ENV CI=true PGPLAY_STATE_DIR=/var/lib/pgplay
RUN mkdir -p /var/lib/pgplay && chmod 0700 /var/lib/pgplay
ENTRYPOINT ["node", "/opt/pgplay/dist/bundle/main.js"]
CMD ["--help"]
