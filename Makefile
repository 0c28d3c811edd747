# Each target does all the set-up it needs (tools/setup_env.sh is idempotent: seconds when
# everything is installed, minutes on a fresh machine because mmcv builds from source;
# docs/get_started.md has the times).
PYTHON ?= python

.PHONY: setup test demo

setup:
	PYTHON=$(PYTHON) bash tools/setup_env.sh

test: setup
	$(PYTHON) -m pytest tests -q

demo: setup
	$(PYTHON) tools/run_demo.py
