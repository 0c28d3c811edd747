"""Whether a model is being captured into a graph rather than run eagerly.

A captured graph (``torch.compile`` / dynamo, ``torch.export``, both ONNX exporters,
``torch.jit.trace`` / ``script``, FX) must serve every input size, so code that makes Python
decisions on a tensor's size (which a tracer freezes at the example size) asks this first.
"""
import torch


def graph_capture() -> bool:
    """Whether the caller runs under a graph capture rather than eagerly."""
    return (torch.compiler.is_compiling() or torch.jit.is_tracing() or torch.jit.is_scripting()
            or torch.onnx.is_in_onnx_export()
            or torch.fx._symbolic_trace.is_fx_symbolic_tracing())
