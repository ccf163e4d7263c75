# Two commands for a fresh machine (README): `make run` and `make test`.
# `make run` installs only what serving needs (pip install .); `make test`
# the test extra, editable.  Both check the Python first and rebuild a venv
# that a wrong Python made.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
NEEDS := 3.11
# Exit 0 when the interpreter given is at least $(NEEDS).
PY_CHECK := -c 'import sys; sys.exit(sys.version_info < tuple(map(int, "$(NEEDS)".split("."))))'
SOURCES := $(shell find mockstatus config -name '*.py' -o -name '*.yaml' -o -name '*.css' -o -name '*.js')

.PHONY: run test lint bench docs clean python

python:
	@$(PYTHON) $(PY_CHECK) 2>/dev/null || { echo "mockstatus needs Python $(NEEDS) or newer; $(PYTHON) is $$($(PYTHON) -V 2>/dev/null || echo missing): run make PYTHON=python3.12 $(MAKECMDGOALS)" >&2; exit 2; }
	@if [ -e $(VENV) ] && ! $(BIN)/python $(PY_CHECK) 2>/dev/null; then echo "rebuilding $(VENV): it was made by another Python"; rm -rf $(VENV); fi
	@[ -x $(BIN)/python ] || $(PYTHON) -m venv $(VENV)

$(VENV)/.serve: pyproject.toml $(SOURCES) | python
	$(BIN)/python -m pip install --quiet --disable-pip-version-check .
	touch $@

$(VENV)/.test: pyproject.toml | python
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[test]'
	rm -rf mockstatus.egg-info
	touch $@ $(VENV)/.serve

# After `make test`, the editable install serves the checkout as it is.
run: python $(if $(wildcard $(VENV)/.test),$(VENV)/.test,$(VENV)/.serve)
	$(BIN)/mockstatus serve $(ARGS)

test: python $(VENV)/.test
	$(BIN)/python -m pytest -n 2 $(PYTEST_ARGS)

lint: python $(VENV)/.test
	$(BIN)/ruff check mockstatus tests benchmarks
	$(BIN)/ruff format --check mockstatus tests benchmarks

# The site in site/; --strict fails on a broken link or anchor.
docs: python $(VENV)/.test
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[docs]'
	rm -rf mockstatus.egg-info
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --site-dir site

bench: python $(VENV)/.test
	$(BIN)/python benchmarks/run.py $(ARGS)

clean:
	rm -rf $(VENV) .venv-floor build dist site *.egg-info
