# The README's two commands: `make run` and `make test`. Both set up .venv themselves.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint typecheck bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	@for book in examples/*.yaml examples/*.json; do \
	  [ -f "$$book" ] || continue; \
	  echo "== $$book"; \
	  $(BIN)/marginkit compare "$$book" || exit $$?; \
	done

lint: $(STAMP)
	$(BIN)/ruff check src tests $(wildcard benchmarks)

typecheck: $(STAMP)
	$(BIN)/mypy src

test: lint typecheck
	$(BIN)/python -m pytest -q

bench: $(STAMP)
	@for script in benchmarks/*.py; do \
	  case "$$script" in */_*|*/synthetic_*) continue;; esac; \
	  echo "== $$script"; $(BIN)/python "$$script" || exit $$?; \
	done

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
