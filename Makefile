# Each target does all the set-up it needs (tools/setup_env.sh is idempotent: seconds when
# everything is installed, minutes on a fresh machine because mmcv builds from source;
# docs/get_started.md has the times).
PYTHON ?= python

.PHONY: setup test demo finetune-demo setup-oldest test-oldest test-oldest-fast setup-py313 \
	test-py313 test-py313-fast

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

# The other tested stacks, each in a virtual environment of its own (tools/setup_venv.sh):
# oldest = Python 3.8, torch 2.1.2, numpy 1 (.venv-oldest); py313 = Python 3.13, torch 2.12.1,
# numpy 2 (.venv-py313); mmcv 2.1.0 compiled for each. test-STACK runs the whole suite there,
# test-STACK-fast the fast tier (-m "not slow": everything but the tests that start training
# runs, tools in subprocesses and Slurm jobs). The venv's bin comes first on PATH, as activating
# it would, so that the tools and scripts the tests start run on that stack too.

setup-oldest setup-py313: setup-%:
	bash tools/setup_venv.sh $*

IN_VENV = PATH=$(CURDIR)/.venv-$*/bin:$$PATH $(CURDIR)/.venv-$*/bin/python -m pytest tests -q

test-oldest test-py313: test-%: setup-%
	$(IN_VENV) $(PYTEST_PARALLEL)

test-oldest-fast test-py313-fast: test-%-fast: setup-%
	$(IN_VENV) $(PYTEST_PARALLEL) -m "not slow"
