# The README's two commands: `make run` and `make test`. Both install what they need.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PORT   ?= 8501
ADDRESS ?= 127.0.0.1
STAMP  := $(VENV)/.installed

.PHONY: run test test-fast install system-deps bench clean

$(PY):
	$(PYTHON) -m venv $(VENV)

# Re-install only when requirements or the package metadata change.
$(STAMP): requirements.txt pyproject.toml | $(PY)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $(STAMP)

install: $(STAMP)

# Debian's chromium for the browser tests (never `playwright install`), Orthanc (a real PACS for
# the DICOM node's test) and poppler-utils (pdftotext/pdftoppm read the PDF report back).
# orthanc's postinst may fail to start its service in a container: fine once the binary is there.
system-deps:
	@if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/sbin/Orthanc ] || ! command -v pdftotext >/dev/null; then \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q \
			chromium orthanc poppler-utils || [ -x /usr/sbin/Orthanc ]; \
	fi

run: install
	$(VENV)/bin/streamlit run serve.py --server.address $(ADDRESS) --server.port $(PORT) --server.headless true

test: system-deps install
	$(PY) -m pytest -q --durations=25 tests

# For development: no browser, none of the tests marked slow (training, whole-split checks).
test-fast: install
	$(PY) -m pytest -q -m "not slow and not e2e" tests

bench: install
	$(PY) -m pneumo bench

clean:
	rm -rf $(VENV) .pytest_cache tests/e2e/artifacts
