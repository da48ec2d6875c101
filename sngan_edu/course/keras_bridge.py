"""Keras 3 for the appendix notebook on ``keras.layers.SpectralNormalization``.

Keras is an optional extra of the course (``pip install "sngan-edu[keras]"``). The appendix runs
it on the **torch** backend, so Keras tensors are torch tensors and no TensorFlow is needed.
:func:`require_keras` is the notebook's first line: it selects the torch backend (unless the
environment already chose one), imports Keras and returns the module, or stops with a short
message that says how to install it.
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType

#: What a reader without Keras should run.
INSTALL_HINT = 'pip install "sngan-edu[keras]"   (or simply: pip install keras)'
BACKEND = "torch"


class KerasUnavailable(ImportError):
    """Keras 3 on the torch backend cannot be used here; the message says why and what to do.

    In Jupyter the error is shown as its message alone, without a traceback (IPython calls
    ``_render_traceback_`` when an exception has one).
    """

    def _render_traceback_(self) -> list[str]:
        return [f"{type(self).__name__}: {self}"]


def require_keras(backend: str = BACKEND) -> ModuleType:
    """Import Keras 3 on ``backend`` (torch) and return the ``keras`` module.

    Sets ``KERAS_BACKEND`` to ``backend`` if it is unset. Raises :class:`KerasUnavailable`
    (an ImportError) with an install hint if Keras is missing or older than 3, or if Keras is
    (or would be) running on another backend.
    """
    chosen = os.environ.setdefault("KERAS_BACKEND", backend)
    if chosen != backend:
        raise KerasUnavailable(
            f"this notebook runs Keras on the {backend} backend, but KERAS_BACKEND={chosen!r} "
            f"is set. Unset it (or set KERAS_BACKEND={backend}) and restart the kernel."
        )
    try:
        keras = importlib.import_module("keras")
    except ImportError:
        raise KerasUnavailable(
            f"this notebook needs Keras 3, which is not installed. Install it with\n"
            f"    {INSTALL_HINT}\nthen restart the kernel."
        ) from None
    version = getattr(keras, "__version__", "0")
    if int(version.split(".")[0]) < 3:
        raise KerasUnavailable(
            f"this notebook needs Keras 3; found Keras {version}. Upgrade with\n"
            f"    {INSTALL_HINT}\nthen restart the kernel."
        )
    running = keras.backend.backend()
    if running != backend:
        raise KerasUnavailable(
            f"Keras was already imported on the {running!r} backend in this kernel; restart "
            f"the kernel and run this cell first (it selects the {backend} backend)."
        )
    return keras
