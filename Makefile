# `make demo` and `make test` set themselves up: they create .venv and install ecogen into it
# with the versions pinned in constraints.txt.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.ecogen-installed

.PHONY: demo test test-slow lint format bench bench-smoke clean

$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[dev]'
	@touch $(STAMP)

# A real architecture search on the bundled digits data: 12 random genomes evolved for up to 10
# generations (8 epochs per candidate, at most 210 s of search), then the best trained for 30
# epochs and measured on the test split. Writes runs/digits-TIME/.
demo: $(STAMP)
	$(BIN)/ecogen evolve --dataset digits --population 12 --generations 10 --epochs 8 \
		--time-budget 210 --final-epochs 30 --seed 0

test: $(STAMP)
	$(BIN)/python -m pytest

# The slow tests, tests/test_bench.py's smoke runs of every bench script among them.
test-slow: $(STAMP)
	$(BIN)/python -m pytest -m slow

lint: $(STAMP)
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: $(STAMP)
	$(BIN)/python bench/trainer_overhead.py
	$(BIN)/python bench/mutation_speed.py

# Every bench script at a tiny size (--smoke, seconds each): checks that they run, measures nothing.
bench-smoke: $(STAMP)
	$(BIN)/python -m pytest -m slow tests/test_bench.py

clean:
	rm -rf $(VENV) runs .pytest_cache .hypothesis
