"""Refuse to restore with a restorer that was never given trained weights.

A UniRestore built from a preset or a config dict has random CFRM, Controller,
skip adapters and TFAs: its "restored" images are the input pushed through
untrained layers, i.e. degraded.  The user-facing entry points
(``tools/restore.py``, :class:`~unirestore_mm.apis.UniRestoreInferencer`, the
``RestoreImage`` transform) call :func:`require_trained_weights` before
building, so such a run fails at once with a message saying how to pass
weights; ``allow_random_weights=True`` (``--random-weights``) lets it run
anyway, e.g. to time the model.

Trained weights are: a ``checkpoint`` (``.safetensors``, a ``save_pretrained``
folder, a ``.pth`` of this package), or a ``UniRestore.save_pretrained`` folder
given as the restorer itself.
"""

from typing import Any, Optional

__all__ = [
    'RandomWeightsError',
    'has_trained_weights',
    'require_trained_weights',
]


class RandomWeightsError(ValueError):
    """A restorer with random weights was about to restore images."""


def has_trained_weights(
    restorer: Any, checkpoint: Optional[str] = None
) -> bool:
    """Whether ``restorer`` (a config dict, a preset name, a
    ``save_pretrained`` folder or a built model) with ``checkpoint`` comes with
    trained weights.

    A built :class:`~unirestore_mm.models.UniRestore` counts as trained:
    whoever built it chose its weights.
    """
    if checkpoint:
        return True
    if isinstance(restorer, str):
        from .presets import PRESETS

        # a folder (build_restorer checks it is a save_pretrained one)
        return restorer not in PRESETS
    return not isinstance(restorer, dict)


def _describe(restorer: Any) -> str:
    if isinstance(restorer, dict):
        return (
            'dict('
            + ', '.join(f'{k}={v!r}' for k, v in restorer.items())
            + ')'
        )
    return repr(restorer)


def require_trained_weights(
    restorer: Any,
    checkpoint: Optional[str] = None,
    allow_random_weights: bool = False,
    where: str = 'UniRestore',
    cli: bool = False,
) -> None:
    """Raise :class:`RandomWeightsError` unless ``restorer``/``checkpoint``
    carry trained weights or ``allow_random_weights`` is set.  ``where`` starts
    the message (``''``: nothing); ``cli``: phrase the remedy as
    ``tools/restore.py`` options."""
    if allow_random_weights or has_trained_weights(restorer, checkpoint):
        return
    if cli:
        how = (
            'pass --checkpoint FILE (.safetensors, .pth or a save_pretrained '
            'folder) or --restorer FOLDER (a UniRestore.save_pretrained '
            'folder); --random-weights runs it anyway, for timing only'
        )
    else:
        how = (
            "pass checkpoint='restorer.safetensors' (or a .pth, or a "
            "save_pretrained folder), or a "
            'UniRestore.save_pretrained folder as the restorer; '
            'allow_random_weights=True runs it anyway, for timing only'
        )
    prefix = f'{where}: ' if where else ''
    raise RandomWeightsError(
        f'{prefix}the restorer {_describe(restorer)} has no trained weights '
        '(its CFRM, Controller and TFAs would be random), and a '
        f'random-weight restorer only degrades images; {how}'
    )
