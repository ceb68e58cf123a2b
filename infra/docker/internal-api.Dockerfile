# MicroBima internal API, built from the applications' pnpm workspace. Generic: the build args name
# the workspace (relative to the build context), the app's folder and its package, e.g.
#   --build-arg WORKSPACE=examples/microbima --build-arg APP_DIR=apps/api --build-arg APP_PACKAGE=@microbima/api
# One image serves every environment: NODE_ENV, DATABASE_URL and the rest come from fly.toml
# [env] and secrets, so the image tested first is the very image promoted.

FROM node:26.10.0-bookworm-slim@sha256:662933cf47f013bc8e4beb31a6116448427a82057ba7c42c97e4c5ba766504c2 AS build
ARG WORKSPACE=.
ARG APP_DIR
ARG APP_PACKAGE
RUN test -n "$APP_DIR" && test -n "$APP_PACKAGE" || { echo "build args APP_DIR and APP_PACKAGE are required" >&2; exit 1; }
# Prisma picks its schema engine for the OpenSSL it finds (debian-openssl-3.0.x).
RUN apt-get update && apt-get install -y --no-install-recommends openssl ca-certificates && rm -rf /var/lib/apt/lists/*
# Node 25 and later ship without corepack: install a pinned one; it fetches the pnpm that the
# workspace's packageManager names and checks it against the hash recorded there.
RUN npm install --global corepack@0.36.0 && corepack enable pnpm
ENV COREPACK_ENABLE_DOWNLOAD_PROMPT=0
WORKDIR /workspace
# The whole workspace: a frozen install checks the lockfile against every package's manifest.
COPY ${WORKSPACE}/ ./
RUN pnpm install --frozen-lockfile --filter "${APP_PACKAGE}..."
RUN pnpm --filter "${APP_PACKAGE}" run build
# The app with its runtime dependencies only (no devDependencies), from the workspace's lockfile.
RUN pnpm --filter "${APP_PACKAGE}" deploy --prod /out
# The release_command's `prisma migrate deploy` needs the schema engine inside the image: the app's
# user cannot download it into node_modules at release time. --version fetches it here if an install
# script did not, and fails the build if it cannot.
RUN cd /out && ./node_modules/.bin/prisma --version

FROM node:26.10.0-bookworm-slim@sha256:662933cf47f013bc8e4beb31a6116448427a82057ba7c42c97e4c5ba766504c2
ARG WORKSPACE=.
ARG APP_DIR
RUN apt-get update && apt-get install -y --no-install-recommends openssl ca-certificates && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY --from=build /out/ ./
# Schema and migrations straight from the build context (pnpm deploy copied them too): the release
# command applies exactly the migrations of the commit this image was built from.
COPY ${WORKSPACE}/${APP_DIR}/prisma.config.ts ./prisma.config.ts
COPY ${WORKSPACE}/${APP_DIR}/prisma ./prisma
# Root owns the code; the app runs as node and can change none of it.
USER node
ENV PORT=3000
EXPOSE 3000
CMD ["node", "dist/main.js"]
