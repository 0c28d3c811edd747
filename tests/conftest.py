"""Fixtures and markers shared by the whole suite (the plain functions shared by the tests are in
``helpers.py``: ``ROOT``, ``run_tool`` in this process, ``run_tool_process`` in a subprocess, ...;
the fake checkpoints and models in ``fakes.py``).

* ``slow``: a test that starts processes (training runs, tools in subprocesses, distributed or
  Slurm jobs) and takes tens of seconds or more. ``pytest -m "not slow" tests`` is the fast tier
  a developer runs in minutes; CI (``make test``) runs everything.
* ``demo_data``: the tiny demo dataset of ``tools/make_demo_data.py`` (8 training and 4
  validation images of 64x64 pixels, COCO and segmentation layouts), made once per session;
  ``coco_copy``: a writable copy of its COCO part for one test.
* Every test leaves the process environment as it found it: code under test that sets launcher
  variables (``MASTER_ADDR``, ``RANK``, ``LOCAL_RANK``) in this process would otherwise send
  later tests' subprocesses (torchrun, srun) elsewhere.
* The tests, and every process they start (the tools, torchrun, Slurm jobs), import glmix_mm
  from this checkout (``pythonpath`` in ``setup.cfg``, ``PYTHONPATH`` for the processes), not
  from wherever ``pip install -e .`` pointed last: ``make setup`` in a second clone repoints
  the installed package, and the tools run in subprocesses then ran that clone's code.
* Under pytest-xdist each worker, and every process it starts, computes on one thread
  (``OMP_NUM_THREADS=1`` unless set): with torch's default of one thread per core in every
  worker, the workers' threads outnumber the cores and wait on each other (docs/get_started.md
  has the suite's time both ways).
"""
import os
import shutil
import signal
import sys

import pytest
from helpers import ROOT, load_tool

SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGUSR1)


def pytest_configure(config) -> None:
    config.addinivalue_line(
        'markers', 'slow: starts processes and takes tens of seconds or more (deselect with '
        '-m "not slow" for the fast tier)')
    this_checkout_everywhere()
    if os.environ.get('PYTEST_XDIST_WORKER'):
        one_thread_per_worker()


def this_checkout_everywhere() -> None:
    """Put this checkout first on the processes' ``PYTHONPATH``; stop the session in one line
    if this process imported glmix_mm from elsewhere."""
    paths = [p for p in os.environ.get('PYTHONPATH', '').split(os.pathsep) if p]
    if ROOT not in paths:
        os.environ['PYTHONPATH'] = os.pathsep.join([ROOT, *paths])
    import glmix_mm
    imported = os.path.dirname(os.path.dirname(os.path.abspath(glmix_mm.__file__)))
    if imported != ROOT:
        pytest.exit(f'glmix_mm was imported from {imported}, not from this checkout ({ROOT}): '
                    'run pytest in the checkout, with its setup.cfg', returncode=2)


def one_thread_per_worker() -> None:
    """One compute thread in this xdist worker and in the processes it starts."""
    import torch
    os.environ.setdefault('OMP_NUM_THREADS', '1')
    torch.set_num_threads(int(os.environ['OMP_NUM_THREADS']))


@pytest.fixture(scope='session')
def demo_data(tmp_path_factory):
    """8 training and 4 validation images of 64x64 pixels."""
    make_demo_data = load_tool('make_demo_data.py')
    out = tmp_path_factory.mktemp('demo')
    make_demo_data.main(['--out', str(out), '--num-train', '8', '--num-val', '4', '--size',
                         '64'])
    return out


@pytest.fixture
def coco_copy(demo_data, tmp_path):
    """A writable copy of the demo COCO data (8 training, 4 validation images)."""
    root = tmp_path / 'coco'
    shutil.copytree(demo_data / 'coco', root)
    return str(root) + '/'


@pytest.fixture(autouse=True)
def restore_signal_handlers():
    """Each test leaves SIGINT, SIGTERM and SIGUSR1 as it found them. In a CI run (2026-12-07)
    a test left SIGINT ignored in its worker (which one was not found), and a later interrupt
    test of that worker saw the ignored handler instead of the default."""
    saved = {signum: signal.getsignal(signum) for signum in SIGNALS}
    yield
    for signum, handler in saved.items():
        if signal.getsignal(signum) is not handler:
            signal.signal(signum, handler)


@pytest.fixture(autouse=True)
def fresh_mmengine_loggers():
    """Each test logs through MMEngine loggers made in it. MMEngine keeps every logger for the
    process and logs ``'current'`` messages to the newest one, whose console handler writes to
    the ``sys.stdout`` of the test that made it: captured there (``capsys``) and closed when
    that test ended, so a later test's log line would end in a logging error."""
    yield
    logging_module = sys.modules.get('mmengine.logging')
    if logging_module is not None:
        logging_module.MMLogger._instance_dict.clear()  # MMEngine has no public reset


@pytest.fixture(autouse=True)
def restore_environment():
    saved = dict(os.environ)
    yield
    if dict(os.environ) != saved:
        os.environ.clear()
        os.environ.update(saved)
