"""High-level entry points: :class:`UniRestoreInferencer` (restore files,
folders, arrays, tensors; behind ``tools/restore.py``) and the evaluation
behind tools/demo.py (``unirestore_mm.apis.demo_eval``)."""

from .inferencer import UniRestoreInferencer

__all__ = ['UniRestoreInferencer']
