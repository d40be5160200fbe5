# Two commands on a fresh machine:  `make demo`  and  `make test`.
# Each bootstraps .venv with the local CPU torch wheel first (an unpinned torch pulls a CUDA build).
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp
PYTEST := $(PY) -m pytest -n 2 --dist loadfile

.PHONY: venv demo test test-slow lint docs dups clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt torch==2.13.0
	$(PY) -m pip install --quiet -c constraints.txt -e '.[test,plot,lm,whestbench,tl,dev,docs]'
	touch $(STAMP)

venv: $(STAMP)

## The main job on embedded defaults: kernel-vs-sampling curves on the 4x16 halfspace toy.
demo: $(STAMP)
	$(VENV)/bin/lowprob curves --out results

## The whole default test suite (fast tier; < 10 min on 2 cores).
test: $(STAMP)
	$(PYTEST) -m "not slow"

## Long statistical tests (CI runs these too).
test-slow: $(STAMP)
	$(PYTEST) -m slow

lint: $(STAMP)
	$(VENV)/bin/ruff check lowprob tests benchmarks

## Reference pages generated from the docstrings (mkdocs + mkdocstrings); warnings are errors.
docs: $(STAMP)
	$(VENV)/bin/mkdocs build --strict

clean:
	rm -rf $(VENV) build *.egg-info
