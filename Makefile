# Each target does all the set-up it needs (tools/setup_env.sh is idempotent: seconds when
# everything is installed, minutes on a fresh machine because mmcv builds from source;
# docs/get_started.md has the times).
PYTHON ?= python

.PHONY: setup test demo finetune-demo setup-oldest test-oldest test-oldest-fast

setup:
	PYTHON=$(PYTHON) bash tools/setup_env.sh

# The suite runs in TEST_JOBS worker processes (pytest-xdist), each test module on one worker
# (its module fixtures built once); most tests use one core.
TEST_JOBS ?= 2
PYTEST_PARALLEL = -n $(TEST_JOBS) --dist loadscope

test: setup
	$(PYTHON) -m pytest tests -q $(PYTEST_PARALLEL)

demo: setup
	$(PYTHON) tools/run_demo.py

# Pretrain GLNet-4G and ResNet-50 on generated shapes, then fine-tune Mask R-CNN and UperNet
# from them and from scratch (docs/classification.md, "Pretrain-then-fine-tune demo").
finetune-demo: setup
	$(PYTHON) tools/analysis/pretrain_finetune.py --jobs 2

# The oldest supported stack (Python 3.8, torch 2.1.2, mmcv 2.1.0 built for it) in .venv-oldest
# (tools/setup_oldest.sh), and the whole suite on it (the venv's bin first on PATH, as activating
# it would, so that the tools and scripts the tests start run on that stack too).
OLDEST = $(CURDIR)/.venv-oldest

setup-oldest:
	VENV=$(OLDEST) bash tools/setup_oldest.sh

# CI (.ci/run) runs the whole suite there after the main suite; test-oldest-fast runs the fast
# tier (-m "not slow": everything but the tests that start training runs, tools in
# subprocesses and Slurm jobs).
test-oldest: setup-oldest
	PATH=$(OLDEST)/bin:$$PATH $(OLDEST)/bin/python -m pytest tests -q $(PYTEST_PARALLEL)

test-oldest-fast: setup-oldest
	PATH=$(OLDEST)/bin:$$PATH $(OLDEST)/bin/python -m pytest tests -q $(PYTEST_PARALLEL) -m "not slow"
