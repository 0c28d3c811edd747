"""dev/gpu_report.sh / gpu_report.py: the dry run end to end on the CPU, the time
budget, and the mmcv-lite stand-in that lets mmdet's and mmpretrain's backbones import without
mmcv's compiled ops (what a GPU machine with torch alone gets from fetch_gpu_wheels.sh)."""
import importlib.util
import os.path as osp
import subprocess
import textwrap

import pytest
import torch

from glmix_mm.compat import has_torch
from helpers import ROOT, run_tool_process

SCRIPT = osp.join(ROOT, 'dev', 'gpu_report.py')
_spec = importlib.util.spec_from_file_location('gpu_report', SCRIPT)
gpu_report = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(gpu_report)


@pytest.mark.slow
@pytest.mark.skipif(not has_torch('2.2'), reason='the GPU report is a script for the lent GPU '
                    "machines' torch; on torch 2.1.2 its dry run (compiled training twins) "
                    'had not ended after 20 minutes (2026-12-05)')
def test_dry_run_writes_one_table(tmp_path):
    """Through the shell script, as on a GPU machine, but tiny and on the CPU: the eager rows,
    the fp16 check and the compiled twins (eager backend) of two models in one case."""
    out = tmp_path / 'report.md'
    result = subprocess.run(
        ['bash', osp.join(ROOT, 'dev/gpu_report.sh'), '--dry-run', '--models', 'r50',
         'swin-t', '--cases', 'train-224', '--out', str(out)],
        cwd=str(tmp_path), capture_output=True, text=True, timeout=1200)
    assert result.returncode == 0, result.stderr[-3000:]
    report = out.read_text()
    assert report in result.stdout
    assert 'DRY RUN on the CPU' in report
    rows = [line.split(' | ') for line in report.splitlines() if line.startswith('| train ')]
    assert [(r[2], r[3]) for r in rows] == [('r50', 'eager'), ('r50', 'compiled'),
                                            ('swin-t', 'eager'), ('swin-t', 'compiled')]
    assert all(r[1] == '2x3x64x64' and float(r[4]) > 0 for r in rows)
    assert rows[2][6] == '1.00x (ref)'
    assert rows[0][11].rstrip(' |') == 'yes' and rows[2][11].rstrip(' |') == 'yes'  # fp16
    for compiled in (rows[1], rows[3]):  # compile seconds, graph breaks, vs eager
        assert float(compiled[8]) > 0 and compiled[9] == '0'
        assert compiled[10].endswith(('x faster', 'x slower'))


def test_compiled_runs_beyond_the_budget_are_listed_not_run(monkeypatch, tmp_path):
    calls = []
    monkeypatch.setattr(gpu_report, 'run_eager', lambda case, args: {})
    monkeypatch.setattr(gpu_report, 'run_compiled',
                        lambda case, model, args: calls.append(model))
    rows = gpu_report.main(['--dry-run', '--models', 'glnet-4g', '--cases', 'infer-224',
                            '--budget-s', '30', '--out', str(tmp_path / 'r.md')])
    assert calls == [] and rows == []
    report = (tmp_path / 'r.md').read_text()
    assert 'Not run: glnet-4g infer 2x3x64x64 compiled (time budget: about 60 s needed' in report
    assert '| infer | 2x3x64x64 | glnet-4g | compiled | not run |' in report


def test_estimates_follow_measured_compile_times():
    estimates = gpu_report.Estimates()
    assert estimates.get('r50', 'train') == gpu_report.DEFAULT_COMPILE_S['train']
    estimates.add('r50', 'train', 20.)
    estimates.add('glnet-4g', 'train', 90.)
    assert estimates.get('r50', 'train') == 20.
    assert estimates.get('swin-t', 'train') == 90.  # the longest of the mode so far
    assert estimates.get('swin-t', 'infer') == gpu_report.DEFAULT_COMPILE_S['infer']


@pytest.mark.slow
def test_backbones_build_with_mmcv_lite():
    """``mmcv._ext`` made unimportable, as with mmcv-lite: with the stand-in, mmdet's Swin-T and
    ResNet, mmpretrain's ConvNeXt and GLNet import, build and run; a compiled op says what is
    missing."""
    code = textwrap.dedent(f'''
        import importlib.abc, sys
        class NoCompiledOps(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path, target=None):
                if name == 'mmcv._ext':
                    raise ImportError('no compiled ops (mmcv-lite)')
        sys.meta_path.insert(0, NoCompiledOps())
        import importlib.util
        spec = importlib.util.spec_from_file_location('gpu_report', {SCRIPT!r})
        gpu_report = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(gpu_report)
        assert gpu_report.allow_mmcv_lite()
        import torch
        from glmix_mm.analysis import zoo
        x = torch.randn(1, 3, 64, 64)
        for name in ('glnet-4g', 'swin-t', 'r50', 'convnext-t'):
            model = zoo.build_backbone(zoo.parse_model(name))
            model.eval()  # (mmdet's Swin-T.train returns None)
            with torch.no_grad():
                assert len(model(x)) == 4, name
        import mmcv.ops
        try:
            mmcv.ops.nms(torch.rand(2, 4), torch.rand(2), 0.5)
        except RuntimeError as error:
            assert 'mmcv-lite' in str(error), error
        else:
            raise AssertionError('the stand-in op ran')
        print('ok')
    ''')
    result = run_tool_process('-c', code, cwd=None)  # glmix_mm from PYTHONPATH (conftest)
    assert result.returncode == 0 and result.stdout.strip() == 'ok', result.stderr[-3000:]


def test_no_stand_in_where_compiled_ops_exist():
    import importlib.util
    if importlib.util.find_spec('mmcv._ext') is None:
        pytest.skip('mmcv without compiled ops here')
    assert not gpu_report.allow_mmcv_lite()


@pytest.mark.skipif(torch.cuda.is_available(), reason='needs a machine without a GPU')
def test_without_gpu_names_the_dry_run():
    with pytest.raises(SystemExit) as exit_:
        gpu_report.main(['--models', 'r50', '--cases', 'infer-224'])
    assert 'no CUDA GPU visible' in str(exit_.value) and '--dry-run' in str(exit_.value)
