# MicroBima deploy toolkit. Every target is one line that runs one script in scripts/ (compiled
# once into dist/); `make` alone lists them. The README states the interface (targets, variables,
# exit codes, flyctl command lines).

SHELL := bash
# --norc: a recipe's bash -c whose stdin is a socket (a Node parent's pipe) and whose environment has
# no SHLVL would otherwise run ~/.bashrc first, as for an ssh session.
.SHELLFLAGS := --norc -eu -o pipefail -c
.DEFAULT_GOAL := help
# No built-in rules: make would otherwise look for a way to remake each of the ~150 sources $(BUILT)
# depends on (RCS, SCCS, …) at every run: 20 ms of each target's start.
MAKEFLAGS += --no-print-directory --no-builtin-rules

# Variables reach the scripts through the environment (MB_*), never pasted into a recipe, so no
# value can run as a shell command (APP='x;rm -rf ~' is just a wrong app name). YES, IMAGE,
# VERSION, PLAN, PLAN_OUT and CMD count only on the make command line: a YES or IMAGE left in the
# shell's environment never confirms production or picks a rollback target, nor a CMD a command. Values are taken
# unexpanded ($(value …)): REASON='$(shell cmd)' is text, not make code that runs cmd.
# A variable given but empty (PLAN=, ENV_DIR=) is passed on empty, and the scripts refuse it: it
# never means "not given". One not given is not passed at all (MB_* unexported).
cli = $(if $(filter command line,$(origin $(1))),$(value $(1)))
given = $(if $(filter undefined,$(origin $(1))),,1)
on_command_line = $(if $(filter command line,$(origin $(1))),1)
pass = $(if $(2),$(eval override export MB_$(1) := $$(value $(1))),$(eval unexport MB_$(1)))
$(foreach v,APP ENV_DIR NAME REASON,$(call pass,$(v),$(call given,$(v))))
$(foreach v,IMAGE VERSION PLAN PLAN_OUT CMD,$(call pass,$(v),$(call on_command_line,$(v))))
override export MB_DRY_RUN := $(value DRY_RUN)
override export MB_VERBOSE := $(value VERBOSE)
override export MB_YES := $(call cli,YES)
# Every other command-line variable (HEALTH_TIMEOUT=20, DB=1, …) reaches the scripts' environment
# the same way: as its text, unexpanded (make would otherwise expand it when exporting it).
$(foreach v,$(.VARIABLES),$(if $(filter command line,$(origin $(v))),$(eval override export $(v) := $$(value $(v)))))

INSTALLED := node_modules/.installed
BUILT := dist/.built
# Every .ts and .mjs under scripts/, by make itself: no find process on each of the many runs.
rwildcard = $(foreach d,$(wildcard $(1:=/*)),$(call rwildcard,$d,$2) $(filter $(subst *,%,$2),$d))
SOURCES := $(call rwildcard,scripts,*.ts *.mjs)
# No --enable-source-maps: it parses the script's source map at every start; a bug's stack is
# mapped to the TypeScript sources when it is printed (scripts/lib/core/stack.ts).
RUN := node

$(INSTALLED): package.json package-lock.json
	npm ci --no-audit --no-fund && touch $@

$(BUILT): $(INSTALLED) $(SOURCES)
	node scripts/build.mjs

.PHONY: help
help: ## list the targets (colour on a terminal, none with NO_COLOR)
	@colour=; if [ -t 1 ] && [ -z "$${NO_COLOR:-}" ]; then colour=1; fi; awk -v colour="$$colour" -f scripts/help.awk $(MAKEFILE_LIST)

.PHONY: install
install: $(INSTALLED) ## install the npm packages from the lockfile (once)

.PHONY: build
build: $(BUILT) ## compile the scripts into dist/

.PHONY: test
test: $(BUILT) ## install what is missing and run every test; last line "N passed, N failed"
	node test/run.mjs

.PHONY: check
check: $(INSTALLED) ## the edit-run loop in about 10 s: the type check and the other fast unit tests (test/unit/)
	node test/run.mjs test/unit/

.PHONY: typecheck
typecheck: $(INSTALLED) ## type-check every TypeScript file (tsc --noEmit)
	npx tsc --noEmit

.PHONY: demo
demo: $(BUILT) ## rehearse the whole runbook against the local sandbox (Fly simulator + embedded Postgres); DB_KIND=mpg for Managed Postgres
	$(RUN) dist/demo.mjs

.PHONY: sandbox
sandbox: $(BUILT) ## start a local sandbox that stays up (Fly simulator + embedded Postgres) and print the exports: eval "$$(make -s sandbox)"
	$(RUN) dist/sandbox.mjs start

.PHONY: sandbox-stop
sandbox-stop: $(BUILT) ## stop the local sandbox and remove its state
	$(RUN) dist/sandbox.mjs stop

.PHONY: bench
bench: $(BUILT) ## run the performance benchmarks; writes bench/results.md
	$(RUN) dist/bench.mjs

.PHONY: runbook
runbook: $(BUILT) ## regenerate the README runbook from the targets' dry-run output
	$(RUN) dist/runbook.mjs

.PHONY: app-test
app-test: $(BUILT) ## the applications' own tests: the "test" command of infra/fly/settings.json, in the pnpm workspace
	$(RUN) dist/app-test.cjs

.PHONY: workflow-env
workflow-env: $(BUILT) ## print the workflows' per-key secret env blocks, generated from env/*/*.env.example
	$(RUN) dist/write-env-files.mjs --print-workflow-env

.PHONY: create-apps-staging
create-apps-staging: $(BUILT) ## create the staging apps that are missing, the internal API private (DB=1: and the database)
	$(RUN) dist/create-apps.cjs staging

.PHONY: create-apps-prod
create-apps-prod: $(BUILT) ## create the production apps that are missing, the internal API private (DB=1: and the database)
	$(RUN) dist/create-apps.cjs production

.PHONY: set-secrets-staging
set-secrets-staging: $(BUILT) ## push env/staging/<app>.env plus NODE_ENV, staged (PRUNE=1 removes keys only on Fly, APPLY=1 restarts now)
	$(RUN) dist/set-secrets.cjs staging

.PHONY: set-secrets-prod
set-secrets-prod: $(BUILT) ## push env/production/<app>.env plus NODE_ENV, staged (PRUNE=1 removes keys only on Fly, APPLY=1 restarts now)
	$(RUN) dist/set-secrets.cjs production

.PHONY: deploy-staging
deploy-staging: $(BUILT) ## build and deploy the three staging apps in order, migrate, health check
	$(RUN) dist/deploy.cjs staging

.PHONY: deploy-prod
deploy-prod: $(BUILT) ## migration gate, then promote the staging images to production, migrate, health check (PLAN_OUT=/PLAN=)
	$(RUN) dist/deploy.cjs production

.PHONY: migrate-staging
migrate-staging: $(BUILT) ## apply pending migrations on staging (prisma migrate deploy on the internal API)
	$(RUN) dist/migrate.cjs staging

.PHONY: migrate-prod
migrate-prod: $(BUILT) ## migration gate, then apply pending migrations on production
	$(RUN) dist/migrate.cjs production

.PHONY: migrate-status
migrate-status: $(BUILT) ## every local migration against staging and production (JSON=1 for JSON)
	$(RUN) dist/migrate-status.cjs

.PHONY: diff
diff: $(BUILT) ## what staging runs that production does not: images, migrations, secret names
	$(RUN) dist/diff.cjs

.PHONY: health-staging
health-staging: $(BUILT) ## the fleet, Fly checks and the health probe of the three staging apps
	$(RUN) dist/health.cjs staging

.PHONY: health-prod
health-prod: $(BUILT) ## the fleet, Fly checks and the health probe of the three production apps
	$(RUN) dist/health.cjs production

.PHONY: status-staging
status-staging: $(BUILT) ## the staging fleet now: machines, states, checks, images, verdicts (WATCH=1 refreshes)
	$(RUN) dist/status.cjs staging

.PHONY: status-prod
status-prod: $(BUILT) ## the production fleet now: machines, states, checks, images, verdicts (WATCH=1 refreshes)
	$(RUN) dist/status.cjs production

.PHONY: releases-staging
releases-staging: $(BUILT) ## staging releases per app: version, status, image label, commit, who, when (LIMIT=)
	$(RUN) dist/releases.cjs staging

.PHONY: releases-prod
releases-prod: $(BUILT) ## production releases per app: version, status, image label, commit, who, when (LIMIT=)
	$(RUN) dist/releases.cjs production

.PHONY: console-staging
console-staging: $(BUILT) ## a shell on a started machine of staging app APP= (CMD= runs one command through sh -c)
	$(RUN) dist/console.cjs staging

.PHONY: console-prod
console-prod: $(BUILT) ## a shell on a started machine of production app APP= (CMD= one command; asks first, YES=1)
	$(RUN) dist/console.cjs production

.PHONY: logs-staging
logs-staging: $(BUILT) ## recent logs of the staging apps, bounded in time (FOLLOW=1 streams)
	$(RUN) dist/logs.cjs staging

.PHONY: logs-prod
logs-prod: $(BUILT) ## recent logs of the production apps, bounded in time (FOLLOW=1 streams)
	$(RUN) dist/logs.cjs production

.PHONY: rollback-staging
rollback-staging: $(BUILT) ## redeploy the previous release's image on staging (IMAGE= or VERSION= to choose)
	$(RUN) dist/rollback.cjs staging

.PHONY: rollback-prod
rollback-prod: $(BUILT) ## redeploy the previous release's image on production (IMAGE= or VERSION= to choose)
	$(RUN) dist/rollback.cjs production

.PHONY: rollback-migration-staging
rollback-migration-staging: $(BUILT) ## undo migration NAME= on staging with its down.sql
	$(RUN) dist/rollback-migration.cjs staging

.PHONY: rollback-migration-prod
rollback-migration-prod: $(BUILT) ## undo migration NAME= on production with its down.sql
	$(RUN) dist/rollback-migration.cjs production

.PHONY: restore-staging
restore-staging: $(BUILT) ## Managed Postgres: restore backup BACKUP_ID= into a new cluster (never over the live one)
	$(RUN) dist/restore.cjs staging

.PHONY: restore-prod
restore-prod: $(BUILT) ## Managed Postgres: restore backup BACKUP_ID= into a new production cluster
	$(RUN) dist/restore.cjs production

.PHONY: restore-drill-staging
restore-drill-staging: $(BUILT) ## prove a staging backup restores: a scratch copy, checked, destroyed (BACKUP_ID=)
	$(RUN) dist/restore-drill.cjs staging

.PHONY: restore-drill-prod
restore-drill-prod: $(BUILT) ## prove a production backup restores: a scratch copy, checked, destroyed (BACKUP_ID=)
	$(RUN) dist/restore-drill.cjs production

.PHONY: migration
migration: $(BUILT) ## create migration NAME= locally, with its down.sql beside it
	$(RUN) dist/migration.cjs

.PHONY: studio-staging
studio-staging: $(BUILT) ## Prisma Studio on this machine against the staging database
	$(RUN) dist/studio.cjs staging

.PHONY: studio-prod
studio-prod: $(BUILT) ## Prisma Studio on this machine against the production database (edits are live)
	$(RUN) dist/studio.cjs production

.PHONY: lock-staging
lock-staging: $(BUILT) ## hold staging during an incident (REASON=…): deploys refuse until unlock
	$(RUN) dist/lock.cjs staging

.PHONY: lock-prod
lock-prod: $(BUILT) ## hold production during an incident (REASON=…): deploys refuse until unlock
	$(RUN) dist/lock.cjs production

.PHONY: lock-status-staging
lock-status-staging: $(BUILT) ## who holds the staging deploy lock
	$(RUN) dist/lock-status.cjs staging

.PHONY: lock-status-prod
lock-status-prod: $(BUILT) ## who holds the production deploy lock
	$(RUN) dist/lock-status.cjs production

.PHONY: unlock-staging
unlock-staging: $(BUILT) ## break the staging deploy lock or end a hold (YES=1)
	$(RUN) dist/unlock.cjs staging

.PHONY: unlock-prod
unlock-prod: $(BUILT) ## break the production deploy lock or end a hold (YES=1)
	$(RUN) dist/unlock.cjs production

.PHONY: history-staging
history-staging: $(BUILT) ## the staging ledger of operations (JSON=1: one JSON object per line)
	$(RUN) dist/history.cjs staging

.PHONY: history-prod
history-prod: $(BUILT) ## the production ledger of operations (JSON=1: one JSON object per line)
	$(RUN) dist/history.cjs production

.PHONY: notify-retry
notify-retry: $(BUILT) ## send again the notifications a receiver never got (kept in .deploy-state/)
	$(RUN) dist/notify-retry.cjs
