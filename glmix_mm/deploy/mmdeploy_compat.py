"""What MMDeploy 1.3.1 needs to export MMDetection models with torch 2.12 and Python 3.13, exactly.

MMDeploy 1.3.1 (December 2023) was written for torch <= 2.1. Exporting Mask R-CNN to ONNX
Runtime with it on torch 2.12 fails in two places, each fixed here with the smallest change:

1. ``torch.onnx.export`` switched to the dynamo exporter by default (torch 2.9). MMDeploy's
   ``mmdeploy.apis.onnx.export`` calls it without ``dynamo`` and relies on the TorchScript
   exporter (its symbolic rewriters, ``dynamic_axes``, autograd-function symbolics). The fix is a
   function rewriter of ``torch.onnx.export``, registered with MMDeploy's own
   ``FUNCTION_REWRITER``: it is active only inside MMDeploy's export context and passes
   ``dynamo=False`` unless the caller chose.
2. MMDeploy's RoIAlign symbolic for ONNX Runtime (``mmdeploy/mmcv/ops/roi_align.py``) imports
   ``_cast_Long`` from ``torch.onnx.symbolic_opset9``; torch removed those ``_cast_<Type>``
   helpers (torch 2.1). The fix adds ``_cast_Long`` back to that module: a ``Cast`` to int64, what
   the removed helper emitted.

One more fix makes the exported R-CNN detectors give MMDetection's detections:

3. MMDeploy's ``BBoxHead.predict_by_feat`` rewrite (``mmdeploy/codebase/mmdet/models/roi_heads/
   bbox_head.py``) keeps, for every RoI, only the box regressed for its highest-scoring class and
   gives that box to every class, where MMDetection decodes one box per class. A detection of a
   RoI's second class then comes out with another class's box (docs/deployment.md has the
   measurement on the demo Mask R-CNN). The fix is a rewriter of that function for the
   ONNX Runtime backend (MMDeploy prefers backend-specific rewriters to its default one) that
   keeps every class's own box: the ``N x C`` class boxes go to MMDeploy's ``multiclass_nms``
   as ``N * C`` boxes, each scored for its class only, which is MMDetection's per-class NMS.
4. MMDeploy's ``RPNHead.predict_by_feat`` rewrite runs one NMS over the proposals of all
   pyramid levels and drops proposals scoring under the deploy config's ``score_threshold``
   (0.05), where MMDetection runs NMS within each level (``batched_nms`` with level ids), has no
   score threshold and drops empty boxes (``min_bbox_size``); other proposals give other
   detections. The fix is an ONNX Runtime rewriter of that function doing what MMDetection does:
   per level the ``nms_pre`` best anchors, decoded, empty boxes scored 0, then MMDeploy's
   ``multiclass_nms`` with the level as the class (NMS within each level) and the
   ``max_per_img`` best kept.

And one makes MMDeploy's rewriters work on Python 3.13:

5. MMDeploy finds each function it rewrites from its dotted path (``eval_with_import``,
   ``import_function``, ``_set_func``, ``_del_func`` in ``mmdeploy/core/rewriters``) by running
   ``import <module>`` with ``exec`` inside the function and reading the name back with
   ``eval``. From Python 3.13 (PEP 667) ``exec`` there writes to a snapshot of the function's
   locals, the name is gone for ``eval``, and every export ends in ``NameError: name
   'mmdeploy' is not defined``. The fix, on Python >= 3.13 only, gives those modules functions
   of ours that do the same with ``importlib`` and attribute access.

Nothing happens at ``import glmix_mm`` or at import of this module: a deployment tool calls
:func:`apply_mmdeploy_compat` once (later calls do nothing). Both fixes leave working setups
alone (``dynamo`` given by the caller is kept; an existing ``_cast_Long`` is kept).
"""
import importlib
import inspect
import sys
from typing import Any, Callable, List, Optional, Tuple

import torch

_applied: List[str] = []


def _cast_long(g, input, non_blocking=False):
    """``Cast(input, to=INT64)``: torch < 2.1's ``symbolic_opset9._cast_Long``."""
    return g.op('Cast', input, to_i=torch.onnx.TensorProtoDataType.INT64)


def _add_cast_long() -> None:
    import torch.onnx.symbolic_opset9 as opset9
    if not hasattr(opset9, '_cast_Long'):
        opset9._cast_Long = _cast_long


def _register_torchscript_export() -> None:
    from mmdeploy.core import FUNCTION_REWRITER

    @FUNCTION_REWRITER.register_rewriter('torch.onnx.export')
    def onnx_export__torchscript(*args, **kwargs):
        """MMDeploy's ``torch.onnx.export`` call, with the TorchScript exporter it was written
        for."""
        kwargs.setdefault('dynamo', False)
        return FUNCTION_REWRITER.get_context().origin_func(*args, **kwargs)


def _register_class_boxes() -> None:
    import torch.nn.functional as F
    from mmdeploy.codebase.mmdet.deploy import get_post_processing_params
    from mmdeploy.core import FUNCTION_REWRITER
    from mmdeploy.mmcv.ops import multiclass_nms
    from mmdet.structures.bbox import get_box_tensor

    @FUNCTION_REWRITER.register_rewriter(
        'mmdet.models.roi_heads.bbox_heads.bbox_head.BBoxHead.predict_by_feat',
        backend='onnxruntime')
    def bbox_head__predict_by_feat__class_boxes(self, rois, cls_scores, bbox_preds,
                                                batch_img_metas, rcnn_test_cfg=None,
                                                rescale=False):
        """Batched R-CNN detections with one box per class, as MMDetection's
        ``BBoxHead.predict_by_feat``: rois (B, N, 5), cls_scores (B, N, C + 1), bbox_preds
        (B, N, 4 C) or (B, N, 4) -> dets (B, K, 5), labels (B, K)."""
        ctx = FUNCTION_REWRITER.get_context()
        num_classes = self.num_classes
        if self.custom_cls_channels:
            scores = self.loss_cls.get_activation(cls_scores)
        else:
            scores = F.softmax(cls_scores, dim=-1)
        scores = scores[..., :num_classes]  # (B, N, C)
        boxes = get_box_tensor(self.bbox_coder.decode(
            rois[..., 1:], bbox_preds, max_shape=batch_img_metas[0]['img_shape']))
        batch, num_rois = scores.shape[:2]
        boxes = boxes.reshape(batch, num_rois, -1, 4).expand(batch, num_rois, num_classes, 4)
        # Box (n, c) is scored for class c only: per-class NMS over the N * C boxes.
        one_class = torch.eye(num_classes, dtype=scores.dtype, device=scores.device)
        class_scores = scores.unsqueeze(-1) * one_class  # (B, N, C, C)
        post = get_post_processing_params(ctx.cfg)
        return multiclass_nms(
            boxes.reshape(batch, num_rois * num_classes, 4),
            class_scores.reshape(batch, num_rois * num_classes, num_classes),
            post.max_output_boxes_per_class,
            nms_type=rcnn_test_cfg.nms.get('type'),
            iou_threshold=rcnn_test_cfg.nms.get('iou_threshold', post.iou_threshold),
            score_threshold=rcnn_test_cfg.get('score_thr', post.score_threshold),
            pre_top_k=post.pre_top_k,
            keep_top_k=rcnn_test_cfg.get('max_per_img', post.keep_top_k))


def _register_level_nms() -> None:
    from mmdeploy.core import FUNCTION_REWRITER
    from mmdeploy.mmcv.ops import multiclass_nms
    from mmdet.structures.bbox import get_box_tensor

    @FUNCTION_REWRITER.register_rewriter(
        'mmdet.models.dense_heads.rpn_head.RPNHead.predict_by_feat', backend='onnxruntime')
    def rpn_head__predict_by_feat__level_nms(self, cls_scores, bbox_preds, score_factors=None,
                                             batch_img_metas=None, cfg=None, rescale=False,
                                             with_nms=True, **kwargs):
        """Batched RPN proposals as MMDetection's ``RPNHead.predict_by_feat``: per-level maps
        (B, A, H, W) and (B, 4 A, H, W) -> dets (B, K, 5), labels (B, K) (the level)."""
        cfg = self.test_cfg if cfg is None else cfg
        batch = cls_scores[0].shape[0]
        priors = self.prior_generator.grid_priors(
            [s.shape[-2:] for s in cls_scores], device=cls_scores[0].device)
        nms_pre = cfg.get('nms_pre', -1)
        level_scores, level_deltas, level_priors, level_ids = [], [], [], []
        for level, (score, delta, prior) in enumerate(zip(cls_scores, bbox_preds, priors)):
            score = score.permute(0, 2, 3, 1)
            if self.use_sigmoid_cls:
                score = score.reshape(batch, -1).sigmoid()
            else:
                score = score.reshape(batch, -1, 2).softmax(-1)[..., 0]
            delta = delta.permute(0, 2, 3, 1).reshape(batch, -1, self.bbox_coder.encode_size)
            prior = get_box_tensor(prior).unsqueeze(0).expand(batch, -1, -1)
            if nms_pre > 0:  # MMDeploy's topk rewrite caps nms_pre at the number of anchors
                score, index = score.topk(nms_pre)
                delta = delta.gather(1, index.unsqueeze(-1).expand(-1, -1, delta.shape[-1]))
                prior = prior.gather(1, index.unsqueeze(-1).expand(-1, -1, prior.shape[-1]))
            level_scores.append(score)
            level_deltas.append(delta)
            level_priors.append(prior)
            level_ids.append(torch.full_like(score, level, dtype=torch.long))
        scores = torch.cat(level_scores, 1)
        boxes = get_box_tensor(self.bbox_coder.decode(
            torch.cat(level_priors, 1), torch.cat(level_deltas, 1),
            max_shape=batch_img_metas[0]['img_shape']))
        if cfg.get('min_bbox_size', -1) >= 0:
            size = boxes[..., 2:] - boxes[..., :2]
            scores = scores * (size > cfg.min_bbox_size).all(-1).to(scores.dtype)
        # The level as the class: NMS within each level, the best max_per_img overall.
        one_level = torch.eye(len(cls_scores), dtype=scores.dtype, device=scores.device)
        scores = scores.unsqueeze(-1) * one_level[torch.cat(level_ids, 1)]
        return multiclass_nms(
            boxes, scores, cfg.max_per_img,
            nms_type=cfg.nms.get('type'),
            iou_threshold=cfg.nms.iou_threshold,
            score_threshold=0.,
            pre_top_k=-1,
            keep_top_k=cfg.max_per_img)


def _resolve(path: str) -> Any:
    """The object a dotted path names (``pkg.module.Class.method``): the longest prefix that
    imports as a module, then attributes."""
    parts = path.split('.')
    for end in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module('.'.join(parts[:end]))
        except Exception:  # as MMDeploy: a prefix that does not import is not the module
            continue
        for name in parts[end:]:
            obj = getattr(obj, name)
        return obj
    raise ImportError(f'MMDeploy rewrites {path}, which does not import')


def _import_function(path: str) -> Tuple[Callable, Optional[type]]:
    """``rewriter_utils.import_function``: the function and the class it is defined in."""
    owner = _resolve(path.rpartition('.')[0]) if '.' in path else None
    return _resolve(path), owner if inspect.isclass(owner) else None


def _set_func(path: str, rewrite_func: Callable, ignore_refs: Tuple[Any, ...] = (),
              ignore_keys: Tuple[str, ...] = ('origin_func', )) -> None:
    """``function_rewriter._set_func``: put ``rewrite_func`` where ``path`` points (and, for a
    module function, in place of every reference MMDeploy finds to it)."""
    from mmdeploy.core.rewriters import function_rewriter
    origin, owner_path, name = _resolve(path), *path.rpartition('.')[::2]
    owner = _resolve(owner_path) if owner_path else None
    if not isinstance(owner, type):
        function_rewriter._replace_all_obj(
            origin, rewrite_func, ignore_refs=ignore_refs, ignore_keys=ignore_keys)
    if owner is not None:
        setattr(owner, name, rewrite_func)


def _del_func(path: str) -> None:
    """``function_rewriter._del_func``: remove what ``path`` points to, if it is there."""
    owner_path, _, name = path.rpartition('.')
    try:
        delattr(_resolve(owner_path), name)
    except Exception:  # as MMDeploy: nothing to remove
        pass


def _resolve_paths_without_exec() -> None:
    from mmdeploy.core.rewriters import function_rewriter, rewriter_utils, symbolic_rewriter
    for module in (rewriter_utils, symbolic_rewriter):
        module.eval_with_import = _resolve
    for module in (rewriter_utils, function_rewriter):
        module.import_function = _import_function
    function_rewriter._set_func = _set_func
    function_rewriter._del_func = _del_func


def apply_mmdeploy_compat() -> List[str]:
    """Apply the fixes above (once per process) and return their names.

    Raises:
        ImportError: if mmdeploy is not installed.
    """
    if not _applied:
        import mmdeploy  # noqa: F401  (a clear ImportError before anything changes)
        _add_cast_long()
        _register_torchscript_export()
        _register_class_boxes()
        _register_level_nms()
        _applied.extend(['torch.onnx.symbolic_opset9._cast_Long',
                         'torch.onnx.export(dynamo=False) in MMDeploy exports',
                         'R-CNN boxes per class (BBoxHead.predict_by_feat, onnxruntime)',
                         'RPN NMS per level (RPNHead.predict_by_feat, onnxruntime)'])
        if sys.version_info >= (3, 13):
            _resolve_paths_without_exec()
            _applied.append("rewritten functions found without exec (Python 3.13's locals)")
    return list(_applied)
