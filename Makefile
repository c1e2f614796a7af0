# relcal developer tasks.  `make help` lists them.
PYTHON ?= python

.PHONY: help test lint golden gold bench ci

help:  ## list the tasks
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-8s %s\n", $$1, $$2}'

test:  ## run the test suite (the README's test command)
	pytest

lint:  ## ruff on the package and the tests
	ruff check relcal tests scripts benchmarks

golden:  ## regenerate tests/golden/ from the reference libraries (needs '.[bench]')
	$(PYTHON) scripts/make_golden.py

bench:  ## time relcal beside numpy and the reference tools (needs '.[bench]')
	$(PYTHON) benchmarks/bench_metrics.py
	$(PYTHON) benchmarks/bench_temperature.py
	$(PYTHON) benchmarks/bench_report.py
	$(PYTHON) benchmarks/bench_check.py

gold:  ## rewrite the report's gold file (review the diff after)
	RELCAL_UPDATE_GOLD=1 pytest tests/test_report.py

ci:  ## what CI runs: fresh venv, wheel install, tests, smoke run
	bash .ci/run
