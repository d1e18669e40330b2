# Two commands on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test lint unit integration clean tools

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/cartwatch demo

lint: $(STAMP)
	$(BIN)/ruff check streams models alerts tests
	$(BIN)/ruff format --check streams models alerts tests

test: $(STAMP) lint tools
	$(BIN)/pytest

# Prometheus and Alertmanager (Debian packages) for the deploy/ tests: promtool, amtool;
# Chromium (Debian's) for the safety desk's browser test, driven by playwright;
# poppler-utils (pdftotext, pdftoppm) to read back the DMC report's PDF in its tests.
tools:
	@command -v promtool >/dev/null && command -v prometheus-alertmanager >/dev/null || \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq prometheus prometheus-alertmanager; }
	@command -v chromium >/dev/null || \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; }
	@command -v pdftotext >/dev/null && command -v pdftoppm >/dev/null || \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq poppler-utils; }

unit: $(STAMP)
	$(BIN)/pytest tests/unit

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache .ruff_cache
