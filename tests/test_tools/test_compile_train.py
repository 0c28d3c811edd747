"""MMEngine's ``compile`` option with our configs: tools/train.py trains the demo Mask R-CNN
(GLNet-STL backbone, tiny generated data) with ``--cfg-options compile.backend=eager``.

MMEngine's Runner then wraps ``model.train_step`` in ``torch.compile``: dynamo captures the data
preprocessor, the detector's forward and losses; mmdet's heads (data-dependent box counts,
``.item()``, mmcv ops) break the graph and recompile, GLNet must neither break nor recompile. The
``eager`` backend runs what dynamo captured without generating code (inductor would add minutes
of C++ compilation; docs/benchmarks.md measures it). Two iterations (8 images, batch 4).

MMEngine compiles all of ``train_step``, the optimizer update included, where dynamo fails on
the ConfigDict parameter groups of ``paramwise_cfg``; the configs' EagerOptimizerStepHook keeps
the update eager (the second test shows the failure without it).
"""
import os
import os.path as osp
import re

import pytest

from glmix_mm.compat import has_torch
from glmix_mm.engine.hooks.eager_optimizer_step_hook import MMENGINE_COMPILE_MIN
from helpers import DEMO, run_tool_process


@pytest.mark.slow
@pytest.mark.skipif(not has_torch(MMENGINE_COMPILE_MIN),
                    reason=f"MMEngine's compile option needs PyTorch >= {MMENGINE_COMPILE_MIN}: "
                    "torch 2.1's dynamo fails on mmdet's detector (refused in one line there)")
def test_demo_detector_trains_with_mmengine_compile(demo_options, tmp_path):
    work = str(tmp_path / 'work')
    options = demo_options + [
        'train_dataloader.batch_size=4', 'train_cfg.max_epochs=1',
        'default_hooks.logger.interval=1', 'compile.backend=eager', 'val_cfg=None',
        'val_dataloader=None', 'val_evaluator=None'
    ]
    env = dict(os.environ, TORCH_LOGS='recompiles,graph_breaks')
    result = run_tool_process('tools/train.py', DEMO, '--work-dir', work, '--cfg-options',
                              *options, env=env, timeout=1500)
    log = result.stdout + result.stderr
    assert result.returncode == 0, log[-4000:]
    assert 'Model has been "compiled"' in log
    losses = [float(v) for v in re.findall(r'Epoch\(train\) \[1\]\[\d/2\].*? loss: ([\d.]+)', log)]
    assert len(losses) == 2, log[-4000:]
    assert osp.isfile(osp.join(work, 'epoch_1.pth'))
    # Dynamo logs where each graph break and recompilation happens ("Graph break ... in user code
    # at FILE:LINE", "Recompiling function F in FILE:LINE"; the user-code tracebacks that follow
    # also pass through the tools' wrapper, glmix_mm/utils/cli.py): none in our package.
    where = re.findall(r'(?:Graph break\b.*? in user code at|Recompiling function \S+ in) (\S+)',
                       log)
    assert where, 'no graph break in the whole detector: did TORCH_LOGS change? ' + log[-2000:]
    ours = [path for path in where if f'{osp.sep}glmix_mm{osp.sep}' in path]
    assert not ours, ours[:10]
