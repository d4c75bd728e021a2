# The two commands a newcomer needs: `make run` and `make test`.
VENV := .venv/bin
DEV := dev

.PHONY: bootstrap run test lint unit e2e pane

bootstrap:
	@./scripts/bootstrap.sh

# Start milter, sidecar and sandbox processor on the development config (written on first run).
run: bootstrap
	DEV=$(DEV) ./scripts/run-dev.sh

lint: bootstrap
	$(VENV)/ruff check inboxpay tests bench
	$(VENV)/ruff format --check inboxpay
	$(VENV)/mypy

unit: bootstrap
	$(VENV)/pytest -q tests/unit

# The pane's validators, in node's built-in test runner (no build step, no packages).
pane: bootstrap
	node --test tests/pane/

e2e: bootstrap
	$(VENV)/pytest -q tests/e2e

# Everything CI runs: lint, types, the pane's validators, unit and end-to-end tests.
test: lint pane
	$(VENV)/pytest -q
