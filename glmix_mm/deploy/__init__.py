"""Deployment helpers: ONNX / ``torch.export`` with dynamic sizes, and MMDeploy on torch 2.12.

Nothing here is imported by ``import glmix_mm``: onnx, onnxruntime (``pip install -e .[deploy]``)
and mmdeploy are optional, and :func:`~glmix_mm.deploy.mmdeploy_compat.apply_mmdeploy_compat`
changes torch / mmdeploy functions, which only a deployment run should do.
"""
