"""glmix_mm.analysis (tools/analysis/benchmark.py): tables of alternated runs, reference ratios,
upstream weight sharing, AMP, synthetic full-model steps, peak memory, compiled twins
(``--compile``, with the capture-only ``eager`` backend) and the error messages.

Tiny inputs (64x64 or less, one or two timed rounds); the whole file takes about 30 s on 2 CPU
cores, a fourth of it in the fresh process of the memory test (which imports the OpenMMLab
stack again: peak memory cannot be measured in a process that has run other models before).
"""
import mmap
import os.path as osp
import types

import pytest
import torch

from glmix_mm.analysis import (benchmark, inputs, profiling, report, steps, timing, upstream,
                               zoo)
from helpers import ROOT

TINY = ['--shape', '1x3x64x64', '--warmup', '0', '--repeats', '2']


@pytest.fixture(scope='module', autouse=True)
def single_thread():
    """One thread: faster than two on a shared 2-core machine, and steadier."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.parametrize('mode', ['infer', 'train'])
def test_table_row_per_model_and_reference_ratio(mode, capsys):
    rows = benchmark.main(['glnet-stl', 'r50', '--mode', mode, '--markdown'] + TINY)
    assert [r.label for r in rows] == ['glnet-stl', 'r50']
    assert all(0 < r.min_ms <= r.median_ms and r.images_per_s > 0 for r in rows)
    assert rows[0].speed_vs_ref == 1.0
    assert rows[1].speed_vs_ref == pytest.approx(rows[0].median_ms / rows[1].median_ms)
    assert all(r.peak_mib is None for r in rows)  # CPU without --memory
    out = capsys.readouterr().out
    assert f'Run: {mode}, input 1x3x64x64, fp32, cpu' in out
    assert 'above 1: faster than the reference' in out and '1.00x (ref)' in out
    assert '| glnet-stl | 29.5 |' in out and '| r50 | 23.5 |' in out  # markdown rows
    assert 'Machine: CPU: ' in out and f'torch: {torch.__version__}' in out


def test_ref_option_and_ratio_text():
    entries = [steps.Benchmarked(zoo.ModelSpec(label, 'r50'), None, None, 10**6)
               for label in ('a', 'b')]
    rows = timing.summarize(entries, {'a': [0.1, 0.3, 0.2], 'b': [0.4, 0.4]}, 2, ref='b')
    assert [r.speed_vs_ref for r in rows] == [2.0, 1.0]
    assert rows[0].median_ms == pytest.approx(200) and rows[0].min_ms == pytest.approx(100)
    assert rows[0].images_per_s == pytest.approx(10)
    assert report.speed_text(2.0, False) == '2.00x faster'
    assert report.speed_text(0.5, False) == '2.00x slower'
    config = osp.join(ROOT, 'configs', 'glnet_stl_in1k.py')
    args = benchmark.parse_args(['glnet-stl', config, '--ref', config])
    assert args.ref == 'glnet_stl_in1k.py'  # a config's label is its file name


def test_rounds_alternate_in_rotated_order():
    calls = []

    def entry(label):
        spec = zoo.ModelSpec(label, 'r50')
        return steps.Benchmarked(spec, torch.nn.Identity(), lambda: calls.append(label), 0)

    rounds = timing.run_rounds([entry('a'), entry('b'), entry('c')], 'cpu', warmup=1,
                                  repeats=2)
    assert calls == ['a', 'b', 'c', 'b', 'c', 'a', 'c', 'a', 'b']
    assert {k: len(v) for k, v in rounds.times.items()} == {'a': 2, 'b': 2, 'c': 2}
    assert {k: len(v) for k, v in rounds.page_faults.items()} == {'a': 2, 'b': 2, 'c': 2}


def touch_fresh_memory(size: int = 2**26) -> None:
    """Map ``size`` bytes fresh from the OS and write one byte per 4 KiB page."""
    with mmap.mmap(-1, size) as memory:
        for offset in range(0, size, 4096):
            memory[offset] = 1


def test_page_faults_count_first_touches_of_fresh_memory():
    # 64 MiB of fresh pages per step: 16384 faults with 4 KiB pages, at least 32 with 2 MiB
    # transparent huge pages.
    entries = [
        steps.Benchmarked(zoo.ModelSpec('touch', 'r50'), torch.nn.Identity(),
                              touch_fresh_memory, 0),
        steps.Benchmarked(zoo.ModelSpec('noop', 'r50'), torch.nn.Identity(),
                              lambda: None, 0)
    ]
    rounds = timing.run_rounds(entries, 'cpu', warmup=1, repeats=3)
    assert min(rounds.page_faults['touch']) >= 32
    rows = timing.summarize(entries, rounds.times, 1, 'noop', rounds.peaks, rounds.page_faults)
    assert rows[0].faults_per_step >= 32 > rows[1].faults_per_step


@pytest.mark.parametrize('mode', ['infer', 'train'])
def test_bf16_autocast_on_cpu(mode):
    torch.manual_seed(0)
    model = zoo.build_backbone(zoo.parse_model('glnet-4g')).train(mode == 'train')
    x = inputs.make_input((1, 3, 64, 64), 'cpu')
    outputs = steps._tensors(steps.backbone_step(model, x, mode, 'bf16')())
    assert outputs and all(torch.isfinite(t.float()).all() for t in outputs)
    if mode == 'infer':
        assert outputs[0].dtype == torch.bfloat16


def test_upstream_weights_are_shared(monkeypatch):
    """A stand-in for the authors' module: a GLNet-STL of ours with other random weights."""
    def glnet_stl():
        torch.manual_seed(1)
        return zoo.build_backbone(zoo.parse_model('glnet-stl'))

    monkeypatch.setattr(upstream, 'import_upstream_glnet',
                        lambda repo, tklb=False: types.SimpleNamespace(glnet_stl=glnet_stl))
    args = benchmark.parse_args(['glnet-stl', 'upstream-glnet-stl', '--glmix-repo', 'x'] + TINY)
    x = inputs.make_input(args.shape_tuple, 'cpu')
    entries = [steps.build_benchmarked(spec, args, x) for spec in args.specs]
    ours, theirs = (e.model for e in entries)
    pairs = list(zip(ours.state_dict().values(), theirs.state_dict().values()))
    assert not all(torch.equal(a, b) for a, b in pairs)
    diffs = steps.share_upstream_weights(entries, x)
    assert list(diffs) == [('glnet-stl', 'upstream-glnet-stl')]
    assert diffs[('glnet-stl', 'upstream-glnet-stl')] < 1e-5
    for (name, a), b in zip(ours.state_dict().items(), theirs.state_dict().values()):
        assert torch.equal(a, b), name


def test_glnet_kwargs_reach_every_glnet_of_ours():
    args = benchmark.parse_args(['glnet-stl', 'r50', '--glnet-kwargs', 'out_indices=(3,)'] +
                                TINY)
    glnet, r50 = (zoo.build_backbone(s, args.glnet_kwargs_dict) for s in args.specs)
    assert glnet.out_indices == (3, ) and r50.out_indices == (0, 1, 2, 3)
    spec = zoo.parse_model('glnet-stl:out_indices=(1,2),drop_path_rate=0.1')
    assert spec.kwargs == dict(out_indices=(1, 2), drop_path_rate=0.1)


def test_classifier_config_train_step():
    """An MMPretrain config: its data preprocessor is a top-level entry, its loss needs labels."""
    config = osp.join(ROOT, 'configs', 'glnet_stl_in1k.py')
    rows = benchmark.main([config, '--mode', 'train', '--shape', '2x3x64x64', '--warmup', '0',
                           '--repeats', '1'])
    assert [r.label for r in rows] == ['glnet_stl_in1k.py'] and rows[0].median_ms > 0


def test_detector_synthetic_ground_truth():
    """Labels below the detector's class count (3 here), masks for its mask head."""
    config = osp.join(ROOT, 'configs', 'demo', 'maskrcnn_glnet_4g_demo.py')
    args = benchmark.parse_args([config + ':model.backbone.arch=stl,model.neck.in_channels='
                                 '[96,192,384,768]', '--mode', 'train'] + TINY)
    entry = steps.build_benchmarked(args.specs[0], args, None)
    assert torch.isfinite(entry.step())


def test_cpu_peak_memory_in_a_fresh_process():
    args = benchmark.parse_args(['glnet-stl', '--mode', 'train', '--shape', '1x3x32x32',
                                 '--threads', '1'])
    peak = timing.memory_in_subprocess(args, 'glnet-stl')
    # At least the gradients of GLNet-STL's 29.5M parameters (113 MiB in fp32).
    assert peak is not None and 100 < peak < 1000


@pytest.mark.parametrize('argv, message', [
    (['glnet-5g'], "Unknown model 'glnet-5g'. Choose from glnet-stl, glnet-stl-paramslot"),
    (['upstream-glnet-4g'], '--glmix-repo'),
    (['r50', '--shape', '1x3x64'], 'Bad shape'),
    (['glnet-4g:no_such_arg=1'], 'GLNet has no argument no_such_arg'),
    (['r50', '--ref', 'swin-t'], 'not among the models'),
    (['r50', 'r50'], 'listed twice'),
    (['r50', '--dynamic'], 'add --compile'),
    (['r50', '--compile', '--compile-mode', 'fast'], "invalid choice: 'fast'"),
    ([], 'Name at least one model'),
])
def test_clear_errors(argv, message, capsys):
    with pytest.raises(SystemExit) as exc:
        benchmark.main(argv)
    assert exc.value.code == 2
    assert message in capsys.readouterr().err


def test_compiled_twins_run_in_the_same_rounds(capsys):
    """``--compile``: each model and its compiled twin (same module), the first call of the
    twin apart (its compile time), its speed relative to eager."""
    rows = benchmark.main(['glnet-stl', 'r50', '--compile', '--compile-backend', 'eager',
                           '--markdown'] + TINY)
    assert [r.label for r in rows] == ['glnet-stl', 'glnet-stl (compiled)', 'r50',
                                       'r50 (compiled)']
    for eager, compiled in (rows[:2], rows[2:]):
        assert eager.compile_s is None and eager.vs_eager is None
        assert compiled.compile_s > 0 and compiled.graph_breaks == 0
        assert compiled.params_m == eager.params_m
        assert compiled.vs_eager == pytest.approx(eager.median_ms / compiled.median_ms)
    assert rows[0].speed_vs_ref == 1.0  # the reference stays the first eager model
    out = capsys.readouterr().out
    assert "compiled twins: torch.compile(backend='eager')" in out
    assert 'compile (s) = the first call of the compiled twin' in out
    line = next(row for row in out.splitlines() if row.startswith('| glnet-stl (compiled) |'))
    assert line.split(' | ')[-2] == '0'  # graph breaks column


def test_compile_options_and_graph_break_count():
    args = benchmark.parse_args(['r50', '--compile', '--compile-backend', 'aot_eager',
                                 '--compile-mode', 'max-autotune-no-cudagraphs', '--dynamic'])
    assert steps.compile_options(args) == dict(
        backend='aot_eager', mode='max-autotune-no-cudagraphs', dynamic=True)
    assert [s.label for s in args.specs] == ['r50', 'r50 (compiled)']

    class OneBreak(torch.nn.Module):
        def forward(self, x):
            x = x + 1
            torch._dynamo.graph_break()
            return x * 2

    torch._dynamo.reset()
    args = benchmark.parse_args(['r50', '--compile', '--compile-backend', 'eager'])
    eager = steps.Benchmarked(zoo.ModelSpec('one-break', 'r50'), OneBreak(), None, 0)
    twin = steps.compiled_twin(eager, args, torch.zeros(3))
    calls = timing.first_calls([eager, twin], 'cpu')
    assert list(calls) == ['one-break (compiled)']
    assert calls['one-break (compiled)'].graph_breaks == 1
    assert torch.equal(twin.step(), torch.full((3, ), 2.))


@pytest.mark.skipif(torch.cuda.is_available(), reason='needs a machine without a GPU')
def test_cuda_without_gpu(capsys):
    with pytest.raises(SystemExit):
        benchmark.main(['r50', '--device', 'cuda'])
    assert 'torch.cuda.is_available() is False' in capsys.readouterr().err


def test_kernel_classes_of_operators():
    cls = profiling.kernel_class
    assert cls('aten::mkldnn_convolution', [[2, 8, 5, 5], [8, 1, 3, 3], [8]]) == \
        'depth-wise convolution'
    assert cls('aten::mkldnn_convolution', [[2, 8, 5, 5], [16, 8, 1, 1], [16]]) == \
        'dense convolution'
    assert cls('aten::mkldnn_convolution', [[2, 1, 5, 5], [4, 1, 3, 3], [4]]) == \
        'dense convolution'  # one input channel: an ordinary convolution
    assert cls('aten::addmm', [[4], [3, 2], [2, 4]]) == 'matmul'
    assert cls('aten::_scaled_dot_product_flash_attention_for_cpu', []) == 'fused attention'
    assert cls('aten::scaled_dot_product_attention', []) == 'everything else'  # a dispatcher
    assert cls('aten::gelu', [[2, 3]]) == 'everything else'


def test_profile_splits_the_time_by_kernel_class(capsys):
    benchmark.main(['glnet-stl', '--profile', '2', '--top', '3'] + TINY)
    out = capsys.readouterr().out
    report = out[out.index('Profile of glnet-stl (2 steps'):]
    shares = {}
    for kind in profiling.KERNEL_CLASSES:
        line = next(row for row in report.splitlines() if row.strip().startswith(kind))
        shares[kind] = float(line.split()[-1].rstrip('%'))
    assert sum(shares.values()) == pytest.approx(100, abs=0.5)
    # GLNet-STL runs dense and depth-wise convolutions, matmuls and SDPA on CPU.
    assert all(shares[k] > 0 for k in profiling.KERNEL_CLASSES)
    top = report.split('top 3 operators')[1].splitlines()[1:4]
    assert all(line.split()[2].startswith('aten::') for line in top)
    times = [float(line.split()[0]) for line in top]
    assert times == sorted(times, reverse=True)


def test_profile_rows_are_per_step():
    model = torch.nn.Linear(16, 16)
    x = torch.randn(4, 16)
    entry = steps.Benchmarked(zoo.ModelSpec('lin', 'r50'), model, lambda: model(x), 0)
    rows = profiling.profile_entry(entry, 'cpu', steps=3)
    addmm = next(r for r in rows if r.name == 'aten::addmm')
    assert addmm.calls == 1 and addmm.kind == 'matmul' and addmm.ms > 0
    assert rows == sorted(rows, key=lambda r: -r.ms)


def test_upstream_import_names_the_clone_it_needs(tmp_path):
    with pytest.raises(ValueError, match=r'has no models/glnet\.py.*rayleizhu/GLMix'):
        upstream.import_upstream_glnet(str(tmp_path))
    with pytest.raises(ValueError, match=r'has no models/glnet_tklb\.py'):
        upstream.upstream_glnet_factory(str(tmp_path), '4g_tklb')
