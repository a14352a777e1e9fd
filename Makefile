# floor: two commands for a newcomer: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
HOST   ?= 127.0.0.1
PORT   ?= 5000
export FLOOR_INSTANCE_PATH ?= $(CURDIR)/instance

.PHONY: demo test test-unit test-integration test-e2e fuzz bench faults bench-durability install translations i18n-update system-deps clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip > $(VENV)/install.log 2>&1
	$(BIN)/pip install -q -e '.[test]' >> $(VENV)/install.log 2>&1 || { cat $(VENV)/install.log; exit 1; }
	touch $(STAMP)

install: $(STAMP) translations

translations: $(STAMP)
	@if [ -d floor/translations ]; then $(BIN)/pybabel compile --use-fuzzy -d floor/translations 2>&1 | grep -v "^compiling" || true; fi

# After changing UI text: refresh the catalogue, translate the new msgids in zh, then `make translations`.
i18n-update: $(STAMP)
	$(BIN)/pybabel extract -F babel.cfg -k N_ -k _l --add-location=file --sort-output \
	  --project floor --version 0.1.0 --copyright-holder "floor contributors" -o floor/translations/messages.pot .
	$(BIN)/pybabel update -i floor/translations/messages.pot -d floor/translations -N -w 100 --ignore-obsolete

# Browser tests need Debian's chromium; image decoding needs libzbar. Installed when missing
# and we are root (as on CI); otherwise the tests that need them say so and skip.
system-deps:
	@missing=""; \
	[ -x /usr/bin/chromium ] || missing="$$missing chromium"; \
	ldconfig -p 2>/dev/null | grep -q libzbar.so.0 || missing="$$missing libzbar0"; \
	fc-list 2>/dev/null | grep -qi 'noto.*cjk' || missing="$$missing fonts-noto-cjk"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing:$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else echo "not root: missing$$missing (browser tests will skip)"; fi; \
	fi

demo: install
	$(BIN)/floor db upgrade
	$(BIN)/floor seed-demo
	@echo
	@echo "floor demo: http://$(HOST):$(PORT)/  (pack screen: /pack, printable barcode sheet: http://$(HOST):$(PORT)/sheet)"
	@echo
	$(BIN)/floor serve --host $(HOST) --port $(PORT)

test: install system-deps
	$(BIN)/pytest -q -p no:cacheprovider tests

test-unit: install
	$(BIN)/pytest -q tests/unit

test-integration: install
	$(BIN)/pytest -q tests/integration

test-e2e: install system-deps
	$(BIN)/pytest -q tests/e2e

# Longer fuzzing than `make test` runs: many generated requests per endpoint and role, and many
# generated inputs per domain rule.
fuzz: install
	FLOOR_FUZZ_EXAMPLES=$${FLOOR_FUZZ_EXAMPLES:-200} $(BIN)/pytest -q -p no:cacheprovider \
	  --hypothesis-profile=fuzz tests/integration/test_api_fuzz.py tests/unit

bench: install
	$(BIN)/python bench/run.py

# The README's fault table: short shifts against real servers under each fault (about 4
# minutes on SQLite; FAULTS_BACKEND=sqlite,postgresql with FLOOR_TEST_POSTGRES_URL set).
FAULTS_BACKEND ?= sqlite
faults: install
	@mkdir -p bench/results
	$(BIN)/floor-sim faults-table --backend $(FAULTS_BACKEND) > bench/results/faults.md; \
	  status=$$?; cat bench/results/faults.md; exit $$status

# What SQLite's synchronous level costs (NORMAL, FULL, EXTRA): docs/durability.md.
bench-durability: install
	$(BIN)/python bench/durability.py

clean:
	rm -rf $(VENV) instance .pytest_cache .hypothesis
