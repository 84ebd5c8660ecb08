# The two set-up commands: `make run` and `make test` (fresh machine -> works).
PY ?= python3
VENV := .venv
VPY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
SAMPLE := resources/samples/harbour.jpg

.PHONY: run test install data bench clean

$(VPY):
	$(PY) -m venv $(VENV)
	$(VPY) -m pip install -q --upgrade pip

# torch is installed first with an exact pin so pip takes the local CPU wheel
# instead of pulling a multi-GB CUDA build.
$(STAMP): $(VPY) pyproject.toml
	$(VPY) -m pip install -q "torch==2.13.0" || $(VPY) -m pip install -q "torch>=2.1,<2.15"
	$(VPY) -m pip install -q -e ".[test]"
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(VPY) main.py $(SAMPLE)

test: $(STAMP)
	QT_QPA_PLATFORM=offscreen $(VPY) -m pytest -q tests

data: $(STAMP)
	$(VPY) -m inpaint_gui.cli data collect data/train_pool

bench: $(STAMP)
	$(VPY) -m inpaint_gui.cli bench --suite all --json bench_out/bench.json

clean:
	rm -rf $(VENV) build *.egg-info
