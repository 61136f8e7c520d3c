"""Workloads: the layer IR, model builders, YAML files and importers.

``builtin(name, **kw)`` builds a named model (``resnet50``, ``mobilenet_v2``, ``bert_base``,
``bert_large``) with the builder's keyword arguments (``batch``, ``image``, ``seq_len``,
``precision``); ``load_workload`` / ``save_workload`` read and write the YAML format
(npusim/spec/workload.py).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from npusim.errors import WorkloadError
from npusim.extras import require
from npusim.workloads.cnn import mobilenet_v2, resnet50
from npusim.workloads.formats import BLOCK_FORMATS
from npusim.workloads.ir import (
    BITS,
    PRECISIONS,
    Attention,
    Conv2d,
    Elementwise,
    Embedding,
    Layer,
    Matmul,
    Norm,
    Pool,
    Softmax,
    Workload,
    bytes_of,
)
from npusim.workloads.precision import WEIGHT_CLASSES, parse_weights
from npusim.workloads.transformer import bert, bert_base, bert_large

if TYPE_CHECKING:
    # Importers added by their own modules (one line each) go below.
    from npusim.workloads.llm import from_hf_config

__all__ = [
    "BITS",
    "BLOCK_FORMATS",
    "BUILTINS",
    "PRECISIONS",
    "WEIGHT_CLASSES",
    "Attention",
    "Conv2d",
    "Elementwise",
    "Embedding",
    "Layer",
    "Matmul",
    "Norm",
    "Pool",
    "Softmax",
    "Workload",
    "bert",
    "bert_base",
    "bert_large",
    "builtin",
    "builtin_names",
    "bytes_of",
    "from_hf_config",
    "from_onnx",
    "load_workload",
    "mobilenet_v2",
    "parse_weights",
    "resnet50",
    "save_workload",
]

#: Built-in models by name; each builder takes keyword arguments such as ``batch``.
BUILTINS: dict[str, Callable[..., Workload]] = {
    "resnet50": resnet50,
    "mobilenet_v2": mobilenet_v2,
    "bert_base": bert_base,
    "bert_large": bert_large,
}


def load_workload(path: str | os.PathLike[str]) -> Workload:
    """Read a workload YAML file (see :mod:`npusim.spec.workload`)."""
    # Imported here: npusim.spec.workload imports the IR from this package.
    from npusim.spec.workload import load_workload as _load

    return _load(path)


def save_workload(workload: Workload, path: str | os.PathLike[str],
                  comment: str | None = None) -> None:
    """Write ``workload`` as YAML, atomically (see :mod:`npusim.spec.workload`)."""
    from npusim.spec.workload import save_workload as _save

    _save(workload, path, comment)


def builtin_names() -> list[str]:
    return list(BUILTINS)


def builtin(name: str, **kw: object) -> Workload:
    """Build the built-in model ``name``; unknown names and arguments are a WorkloadError."""
    key = name.strip().lower().replace("-", "_")
    if key not in BUILTINS:
        raise WorkloadError(f"unknown built-in workload {name!r} "
                            f"(known: {', '.join(BUILTINS)})")
    try:
        return BUILTINS[key](**kw)
    except (TypeError, ValueError) as exc:
        raise WorkloadError(f"workload {key}: {exc}") from None


def from_onnx(path_or_model: object, **kwargs: object) -> Workload:
    """Import an ONNX model (see :func:`npusim.workloads.onnx_import.from_onnx`).

    Imported on first use: the ``onnx`` package takes a noticeable part of a cold start.
    """
    require("onnx")
    from npusim.workloads.onnx_import import from_onnx as _from_onnx

    return _from_onnx(path_or_model, **kwargs)  # type: ignore[arg-type]


def __getattr__(name: str) -> Any:
    # The HF-config builder reads files with npusim.spec (pydantic, YAML), above this
    # package's IR: imported on first use, so importing the IR stays light.
    if name == "from_hf_config":
        from npusim.workloads.llm import from_hf_config

        return from_hf_config
    raise AttributeError(f"module 'npusim.workloads' has no attribute {name!r}")
