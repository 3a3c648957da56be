"""fastroute: route and serialize whole batches of messages exactly as the brokers would.

Public names are loaded on first use, so ``import fastroute`` stays cheap (numba and the
compiled kernels load only when a router or codec is first touched).
"""

from __future__ import annotations

import importlib
import os as _os

__version__ = "0.1.0"


def _checkout_subpackages() -> None:
    """Make ``fastroute.kernels`` and ``fastroute.plugins`` importable from a source checkout.

    pyproject.toml maps the top-level ``kernels/`` and ``plugins/`` into the package; an
    installed (or editable) copy resolves them that way. A checkout put on PYTHONPATH without
    installing (a GPU machine that cannot build the ring extension, say) finds them through
    the checkout's root instead.
    """
    here = _os.path.dirname(_os.path.abspath(__file__))
    root = _os.path.dirname(here)
    if _os.path.isdir(_os.path.join(here, "kernels")):
        return
    if _os.path.isfile(_os.path.join(root, "kernels", "__init__.py")) and \
            _os.path.isfile(_os.path.join(root, "pyproject.toml")):
        __path__.append(root)


_checkout_subpackages()

# name -> module that defines it (relative to this package)
_EXPORTS = {
    "BackendUnavailable": "._errors",
    "BatchError": "._errors",
    "BinaryColumn": "._batch",
    "ConsistentHashRouter": "._consistent_hash",
    "DirectRouter": "._direct",
    "FanoutRouter": "._direct",
    "FastrouteError": "._errors",
    "FrameError": "._errors",
    "HeaderTable": "._headers",
    "HeadersRouter": "._headers_router",
    "Message": "._batch",
    "MessageBatch": "._batch",
    "Partitioner": "._partitioner",
    "consistent_partition": "._partitioner",
    "fnv1a": "._partitioner",
    "fnv1a_partition": "._partitioner",
    "murmur2": "._partitioner",
    "murmur2_partition": "._partitioner",
    "PatternError": "._errors",
    "QueueClosed": "._errors",
    "QueueEmpty": "._errors",
    "QueueFull": "._errors",
    "RandomRouter": "._spread",
    "Ring": ".ring",
    "RoundRobinRouter": "._spread",
    "Router": "._router",
    "Routes": "._routes",
    "TopicRouter": "._topic",
}

#: submodules that are public as modules (``fastroute.codec.encode_frames``)
_MODULES = ("codec",)

__all__ = sorted(list(_EXPORTS) + list(_MODULES)) + ["__version__"]


def __getattr__(name: str):
    if name in _MODULES:
        value = importlib.import_module(f".{name}", __name__)
        globals()[name] = value
        return value
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'fastroute' has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__():
    return __all__
