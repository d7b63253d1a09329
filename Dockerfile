# Podflow for users who run containers (see docker-compose.yml). Node 24 runs the TypeScript
# sources directly (type stripping), so the server has no build step: one stage installs the
# production dependencies, one builds the browser dashboard (web/ with vite, a dev dependency),
# and the final one copies both with the sources and runs as `node`.
FROM node:24-bookworm-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund

FROM node:24-bookworm-slim AS web
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY web ./web
RUN npx vite build web

FROM node:24-bookworm-slim
ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    PORT=4000 \
    PODFLOW_DATA_DIR=/app/data
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY package.json ./
COPY bin ./bin
COPY src ./src
COPY --from=web /app/web/dist ./web/dist
RUN mkdir -p /app/data && chown node:node /app/data
USER node
EXPOSE 4000
# `podflow health` asks this container's Podflow, on PORT, for /readyz: the API's, or the health
# listener a worker-only process (PODFLOW_ROLES=worker) serves in its place.
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
  CMD ["node", "bin/podflow.js", "health"]
CMD ["node", "src/main.ts"]
