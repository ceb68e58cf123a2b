# MicroBima deploy toolkit. Every target is one line that runs one script in scripts/
# (compiled once into dist/); `make` alone lists them. Interface: ../shared/spec/interface.md.

SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
MAKEFLAGS += --no-print-directory

# Inputs, passed to the scripts as flags (IMAGE and VERSION only from the command line,
# so a stray IMAGE or VERSION in the shell's environment can never pick a rollback target).
yes = $(filter 1 true yes,$(1))
cli = $(filter command line,$(origin $(1)))
FLAGS = $(if $(APP),--app=$(APP)) $(if $(call yes,$(DRY_RUN)),--dry-run) $(if $(call yes,$(YES)),--yes) \
        $(if $(call yes,$(VERBOSE)),--verbose) $(if $(ENV_DIR),--env-dir=$(ENV_DIR))
IMAGE_FLAGS = $(if $(call cli,IMAGE),--image=$(IMAGE)) $(if $(call cli,VERSION),--version=$(VERSION))
NAME_FLAG = $(if $(NAME),--name=$(NAME))

INSTALLED := node_modules/.installed
BUILT := dist/.built
SOURCES := $(wildcard scripts/*.ts scripts/*.mjs scripts/lib/*.ts test/fly-sim/*.ts test/fly-sim/*/*.ts)
RUN := node --enable-source-maps

$(INSTALLED): package.json package-lock.json
	npm ci --no-audit --no-fund && touch $@

$(BUILT): $(INSTALLED) $(SOURCES)
	node scripts/build.mjs

.PHONY: help
help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "; printf "Usage: make TARGET [APP=key] [DRY_RUN=1] [YES=1] [VERBOSE=1] [ENV_DIR=dir] [IMAGE=ref] [VERSION=n] [NAME=migration]\n\n"} /^[a-zA-Z0-9_-]+:.*## / {printf "  \033[36m%-28s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: install
install: $(INSTALLED) ## install the npm packages from the lockfile (once)

.PHONY: build
build: $(BUILT) ## compile the scripts into dist/

.PHONY: test
test: $(BUILT) ## install what is missing and run every test; last line "N passed, N failed"
	node test/run.mjs

.PHONY: typecheck
typecheck: $(INSTALLED) ## type-check every TypeScript file (tsc --noEmit)
	npx tsc --noEmit

.PHONY: demo
demo: $(BUILT) ## rehearse the whole runbook against the local sandbox (Fly simulator + embedded Postgres)
	$(RUN) dist/demo.mjs $(FLAGS)

.PHONY: bench
bench: $(BUILT) ## run the performance benchmarks; writes bench/results.md
	$(RUN) dist/bench.mjs

.PHONY: runbook
runbook: $(BUILT) ## regenerate the README runbook from the targets' dry-run output
	$(RUN) dist/runbook.mjs

.PHONY: create-apps-staging
create-apps-staging: $(BUILT) ## create the three staging apps that are missing (DB=1: and the database app)
	$(RUN) dist/create-apps.mjs staging $(FLAGS)

.PHONY: create-apps-prod
create-apps-prod: $(BUILT) ## create the three production apps that are missing (DB=1: and the database app)
	$(RUN) dist/create-apps.mjs production $(FLAGS)

.PHONY: set-secrets-staging
set-secrets-staging: $(BUILT) ## push env/staging/<app>.env plus NODE_ENV, staged (PRUNE=1 removes keys only on Fly, APPLY=1 restarts now)
	$(RUN) dist/set-secrets.mjs staging $(FLAGS)

.PHONY: set-secrets-prod
set-secrets-prod: $(BUILT) ## push env/production/<app>.env plus NODE_ENV, staged (PRUNE=1 removes keys only on Fly, APPLY=1 restarts now)
	$(RUN) dist/set-secrets.mjs production $(FLAGS)

.PHONY: deploy-staging
deploy-staging: $(BUILT) ## deploy the three staging apps in order, migrate, health check
	$(RUN) dist/deploy.mjs staging $(FLAGS)

.PHONY: deploy-prod
deploy-prod: $(BUILT) ## migration gate, then promote the staging images to production, migrate, health check
	$(RUN) dist/deploy.mjs production $(FLAGS) $(IMAGE_FLAGS)

.PHONY: migrate-staging
migrate-staging: $(BUILT) ## apply pending migrations on staging (prisma migrate deploy on the internal API)
	$(RUN) dist/migrate.mjs staging $(FLAGS)

.PHONY: migrate-prod
migrate-prod: $(BUILT) ## migration gate, then apply pending migrations on production
	$(RUN) dist/migrate.mjs production $(FLAGS)

.PHONY: migrate-status
migrate-status: $(BUILT) ## every local migration against staging and production (JSON=1 for JSON)
	$(RUN) dist/migrate-status.mjs $(FLAGS)

.PHONY: health-staging
health-staging: $(BUILT) ## machines, checks and the /health probe of the three staging apps
	$(RUN) dist/health.mjs staging $(FLAGS)

.PHONY: health-prod
health-prod: $(BUILT) ## machines, checks and the /health probe of the three production apps
	$(RUN) dist/health.mjs production $(FLAGS)

.PHONY: logs-staging
logs-staging: $(BUILT) ## recent logs of the staging apps (flyctl logs --no-tail, bounded in time)
	$(RUN) dist/logs.mjs staging $(FLAGS)

.PHONY: logs-prod
logs-prod: $(BUILT) ## recent logs of the production apps (flyctl logs --no-tail, bounded in time)
	$(RUN) dist/logs.mjs production $(FLAGS)

.PHONY: rollback-staging
rollback-staging: $(BUILT) ## redeploy the previous release's image on staging (IMAGE= or VERSION= to choose)
	$(RUN) dist/rollback.mjs staging $(FLAGS) $(IMAGE_FLAGS)

.PHONY: rollback-prod
rollback-prod: $(BUILT) ## redeploy the previous release's image on production (IMAGE= or VERSION= to choose)
	$(RUN) dist/rollback.mjs production $(FLAGS) $(IMAGE_FLAGS)

.PHONY: rollback-migration-staging
rollback-migration-staging: $(BUILT) ## undo migration NAME= on staging with its down.sql
	$(RUN) dist/rollback-migration.mjs staging $(FLAGS) $(NAME_FLAG)

.PHONY: rollback-migration-prod
rollback-migration-prod: $(BUILT) ## undo migration NAME= on production with its down.sql
	$(RUN) dist/rollback-migration.mjs production $(FLAGS) $(NAME_FLAG)

.PHONY: migration
migration: $(BUILT) ## create migration NAME= locally, with its down.sql beside it
	$(RUN) dist/migration.mjs $(FLAGS) $(NAME_FLAG)

.PHONY: studio-staging
studio-staging: $(BUILT) ## Prisma Studio on this machine against the staging database
	$(RUN) dist/studio.mjs staging $(FLAGS)

.PHONY: studio-prod
studio-prod: $(BUILT) ## Prisma Studio on this machine against the production database (edits are live)
	$(RUN) dist/studio.mjs production $(FLAGS)

.PHONY: lock-status-staging
lock-status-staging: $(BUILT) ## who holds the staging deploy lock
	$(RUN) dist/lock-status.mjs staging $(FLAGS)

.PHONY: lock-status-prod
lock-status-prod: $(BUILT) ## who holds the production deploy lock
	$(RUN) dist/lock-status.mjs production $(FLAGS)

.PHONY: unlock-staging
unlock-staging: $(BUILT) ## break the staging deploy lock (YES=1)
	$(RUN) dist/unlock.mjs staging $(FLAGS)

.PHONY: unlock-prod
unlock-prod: $(BUILT) ## break the production deploy lock (YES=1)
	$(RUN) dist/unlock.mjs production $(FLAGS)

.PHONY: history-staging
history-staging: $(BUILT) ## the staging ledger of operations
	$(RUN) dist/history.mjs staging $(FLAGS)

.PHONY: history-prod
history-prod: $(BUILT) ## the production ledger of operations
	$(RUN) dist/history.mjs production $(FLAGS)
