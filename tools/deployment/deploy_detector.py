"""Deploy an MMDetection detector with MMDeploy to ONNX Runtime and compare its detections with
PyTorch's at several input sizes.

Steps (MMDeploy's ``tools/deploy.py`` pipeline through ``mmdeploy.apis``, on the CPU):

1. :func:`~glmix_mm.deploy.mmdeploy_compat.apply_mmdeploy_compat` (MMDeploy 1.3.1 on torch 2.12);
2. ``mmdeploy.apis.torch2onnx``: the whole detector (backbone, neck, RPN, RoI heads, NMS) to
   ``<work-dir>/end2end.onnx`` with the deploy config's dynamic axes, at the export size (the
   config's test pipeline, or ``--export-size``);
3. for the export size and each ``--sizes`` entry (the test pipeline resizing the image to that
   size), the PyTorch model and MMDeploy's ONNX Runtime model run on the same image; their
   detections are paired and compared (:mod:`glmix_mm.deploy.detections`).

Without a checkpoint the detector gets random weights (``--seed``), saved to the work dir so that
both sides load the same file. The exit status is 1 if any size has other detections than
PyTorch (``--box-tol`` pixels, ``--score-tol``, ``--mask-tol`` fraction of mask pixels).

Example (docs/deployment.md)::

    python tools/deployment/deploy_detector.py configs/demo/maskrcnn_glnet_4g_demo.py \
        work_dirs/maskrcnn_glnet_4g_demo/epoch_4.pth \
        --image data/demo/coco/val/val_00029.png --sizes 160x224 256x352
"""
import argparse
import os
import os.path as osp
import sys
from typing import List, Optional, Sequence, Tuple

import torch

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
import glmix_mm  # noqa: F401  (registers the models)
from glmix_mm.deploy.detections import DetectionComparison, compare_detections
from glmix_mm.deploy.onnx_export import sizes_verdict
from glmix_mm.checkpoint import CheckpointNotFoundError
from glmix_mm.errors import UsageError
from glmix_mm.utils import ConfigOptionsAction, tool_main
from glmix_mm.utils.config_checks import merge_options

DEFAULT_DEPLOY_CFG = osp.join(ROOT, 'configs/deploy/instance-seg_onnxruntime_dynamic.py')


def parse_size(text: str) -> Tuple[int, int]:
    """``'160x224'`` -> ``(160, 224)`` (height, width)."""
    try:
        height, width = (int(v) for v in text.lower().split('x'))
    except ValueError:
        height = width = 0
    if height < 1 or width < 1:
        raise UsageError(f'bad size {text!r}: expected HEIGHTxWIDTH such as 160x224.')
    return height, width


def load_configs(config: str, deploy_config: str, cfg_options: Optional[dict],
                 export_size: Optional[Tuple[int, int]]):
    from mmdeploy.utils import load_config
    for path, what in ((config, 'config'), (deploy_config, 'deploy config')):
        if not osp.isfile(path):
            raise UsageError(f'{what} {path!r} does not exist.')
    deploy_cfg, model_cfg = load_config(deploy_config, config)
    if cfg_options:
        merge_options(model_cfg, cfg_options)
    if model_cfg.get('default_scope') != 'mmdet':
        raise UsageError(f'{config} is not an MMDetection config (default_scope '
                         f'{model_cfg.get("default_scope")!r}).')
    if export_size is not None:
        deploy_cfg.onnx_config.input_shape = [export_size[1], export_size[0]]  # (w, h)
    return deploy_cfg, model_cfg


def random_checkpoint(model_cfg, path: str, seed: int) -> str:
    """Save the detector with random weights (``seed``; backbone, neck and heads initialised as
    by ``init_weights()``) to ``path``."""
    from glmix_mm.runner import build_model_from_cfg
    model_cfg = model_cfg.copy()
    model_cfg.model.backbone.init_cfg = None
    torch.manual_seed(seed)
    model = build_model_from_cfg(model_cfg)
    model.init_weights()
    torch.save({'state_dict': model.state_dict(), 'meta': {'seed': seed}}, path)
    return path


def export(image: str, work_dir: str, deploy_cfg, model_cfg, checkpoint: str) -> str:
    """``mmdeploy.apis.torch2onnx`` of the detector; returns the ONNX file."""
    from mmdeploy.apis import torch2onnx
    save_file = deploy_cfg.onnx_config.save_file
    torch2onnx(image, work_dir, save_file, deploy_cfg, model_cfg, checkpoint, device='cpu')
    return osp.join(work_dir, save_file)


def compare_at_sizes(image: str, onnx_file: str, deploy_cfg, model_cfg, checkpoint: str,
                     sizes: Sequence[Optional[Tuple[int, int]]],
                     score_thr: float) -> List[Tuple[tuple, DetectionComparison]]:
    """Run PyTorch and ONNX Runtime at each size (None: the export size) and compare."""
    from mmdeploy.apis import build_task_processor
    task = build_task_processor(model_cfg, deploy_cfg, 'cpu')
    torch_model = task.build_pytorch_model(checkpoint)
    ort_model = task.build_backend_model(
        [onnx_file], data_preprocessor_updater=task.update_data_preprocessor)
    export_shape = deploy_cfg.onnx_config.get('input_shape')
    results = []
    for size in sizes:
        shape = export_shape if size is None else [size[1], size[0]]  # (w, h)
        data, _ = task.create_input(image, shape)
        with torch.no_grad():
            inputs = torch_model.data_preprocessor(data, False)['inputs']
            reference = torch_model.test_step(data)[0].pred_instances
            deployed = ort_model.test_step(data)[0].pred_instances
        reference = reference[reference.scores >= score_thr]
        deployed = deployed[deployed.scores >= score_thr]
        results.append((tuple(inputs.shape), compare_detections(reference, deployed)))
    return results


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Deploy a detector with MMDeploy to ONNX Runtime and compare detections.')
    parser.add_argument('config', help='MMDetection config')
    parser.add_argument('checkpoint', nargs='?', help='trained checkpoint (default: random '
                        'weights from --seed)')
    parser.add_argument('--image', required=True, help='image to export with and compare on')
    parser.add_argument('--deploy-cfg', default=DEFAULT_DEPLOY_CFG, help='MMDeploy deploy config')
    parser.add_argument('--work-dir', default='work_dirs/deploy', help='where end2end.onnx goes')
    parser.add_argument('--export-size', help='HxW the image is resized to for the export '
                        "(default: the config's test pipeline)")
    parser.add_argument('--sizes', nargs='*', default=['160x224', '256x352'],
                        help='other HxW sizes to compare at')
    parser.add_argument('--score-thr', type=float, default=0.,
                        help='compare the detections scoring at least this')
    parser.add_argument('--box-tol', type=float, default=1e-2, help='box corner tolerance, px')
    parser.add_argument('--score-tol', type=float, default=1e-4, help='score tolerance')
    parser.add_argument('--mask-tol', type=float, default=1e-3,
                        help='tolerated fraction of differing mask pixels')
    parser.add_argument('--seed', type=int, default=0, help='random weights without checkpoint')
    parser.add_argument('--cfg-options', nargs='+', action=ConfigOptionsAction,
                        help='override entries of the model config')
    return parser.parse_args(argv)


def deploy_and_compare(args: argparse.Namespace) -> int:
    from glmix_mm.deploy.mmdeploy_compat import apply_mmdeploy_compat
    if not osp.isfile(args.image):
        raise UsageError(f'image {args.image!r} does not exist.')
    if args.checkpoint is not None and not osp.isfile(args.checkpoint):
        raise CheckpointNotFoundError(f'checkpoint {args.checkpoint!r} does not exist.')
    export_size = parse_size(args.export_size) if args.export_size else None
    sizes = [parse_size(s) for s in args.sizes]
    applied = apply_mmdeploy_compat()
    print('MMDeploy compatibility fixes: ' + '; '.join(applied))
    deploy_cfg, model_cfg = load_configs(args.config, args.deploy_cfg, args.cfg_options,
                                         export_size)
    os.makedirs(args.work_dir, exist_ok=True)
    checkpoint = args.checkpoint or random_checkpoint(
        model_cfg, osp.join(args.work_dir, 'random_weights.pth'), args.seed)
    onnx_file = export(args.image, args.work_dir, deploy_cfg, model_cfg, checkpoint)
    print(f'Exported {args.config} with {args.deploy_cfg} to {onnx_file} '
          f'({osp.getsize(onnx_file) / 2**20:.1f} MiB)')
    results = compare_at_sizes(args.image, onnx_file, deploy_cfg, model_cfg, checkpoint,
                               [None] + sizes, args.score_thr)
    tolerances = (args.box_tol, args.score_tol, args.mask_tol)
    print(f'ONNX Runtime vs PyTorch detections (score >= {args.score_thr}; equal: box '
          f'<= {args.box_tol} px, score <= {args.score_tol}, mask pixels <= {args.mask_tol}):')
    failed = 0
    for (shape, comparison), name in zip(results, ['export size'] + args.sizes):
        equal = comparison.equal(*tolerances)
        failed += not equal
        padded = name != 'export size' and tuple(shape[2:]) != parse_size(name)
        print(f'  {name:>11} (input {"x".join(map(str, shape))}): {comparison.summary()} -> '
              f'{"equal" if equal else "DIFFERENT"}' +
              (' (padded input: the exported graph clips boxes at the padded border, PyTorch '
               'at the image border)' if padded else ''))
    return sizes_verdict(failed, len(results))


@tool_main(install_hint='install MMDeploy and the deployment extra (docs/deployment.md)')
def main(argv=None) -> int:
    return deploy_and_compare(parse_args(argv))


if __name__ == '__main__':
    sys.exit(main())
