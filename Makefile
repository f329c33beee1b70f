# labral: two commands for a fresh clone.
#   make demo   create .venv, install, run the main job end to end on the synthetic default
#   make test   create .venv if needed and run the test suite
PYTHON ?= python3.11
VENV   ?= .venv
BIN    := $(VENV)/bin
# Never let the repository root shadow installed packages (a bare `datasets` folder would).
export PYTHONSAFEPATH := 1

.PHONY: demo test venv lint clean-outputs

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

venv: $(BIN)/.installed

demo: venv
	bash scripts/demo.sh

test: venv
	$(BIN)/pytest -q

lint: venv
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

clean-outputs:
	rm -rf outputs data
