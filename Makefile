# Shortcuts; each target calls a script in scripts/ that can also be run directly.
.PHONY: help up down test lint unit deps testenv-up testenv-down

help: ## list the targets
	@grep -E '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

up: ## deploy desired-state/ to a local single-node Swarm via the reconciler
	./scripts/up.sh

down: ## remove everything `up` made
	./scripts/down.sh

test: ## every test, as CI runs it
	./scripts/test.sh

lint: ## ruff, mypy, shellcheck, hadolint
	. .venv/bin/activate && ./scripts/lint.sh

unit: ## unit tests only (no servers)
	. .venv/bin/activate && pytest tests/unit

deps: ## install distribution packages and the virtual environment
	./scripts/deps.sh

testenv-up: ## start PostgreSQL, Redis, Docker/Swarm and the registry for tests
	./scripts/testenv.sh up

testenv-down: ## stop them
	./scripts/testenv.sh down
