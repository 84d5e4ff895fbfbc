"""Reading restorer weights: safetensors files, ``save_pretrained`` folders and
torch/MMEngine checkpoints.

Torch files are read with ``torch.load(weights_only=True)``;
:func:`mmengine_safe_globals` names the few non-tensor types MMEngine
checkpoints hold, so no arbitrary object is ever unpickled.
"""

import os.path as osp
import pickle
from typing import Dict, Union

import torch
from torch import nn

WEIGHTS_NAME = 'model.safetensors'
# Prefixes under which a restorer's weights sit in the checkpoints this package
# writes: UniRestoreModel ('restorer.'), a recognizer around RestoredBackbone
# ('backbone.restorer.'), DDP ('module.').
CHECKPOINT_PREFIXES = (
    '',
    'restorer.',
    'backbone.restorer.',
    'module.restorer.',
    'module.backbone.restorer.',
)


def _history_buffer_getattr(obj, name):
    """The one ``getattr`` MMEngine checkpoints need: a public method of
    ``HistoryBuffer`` (its statistics)."""
    from mmengine.logging.history_buffer import HistoryBuffer

    if (
        (obj is HistoryBuffer or isinstance(obj, HistoryBuffer))
        and isinstance(name, str)
        and not name.startswith('_')
        and callable(getattr(HistoryBuffer, name, None))
    ):
        return getattr(obj, name)
    raise TypeError(
        f'refusing getattr({type(obj).__name__}, {name!r}) while loading a '
        'checkpoint'
    )


def mmengine_safe_globals() -> list:
    """What MMEngine checkpoints pickle besides tensors: message-hub
    ``HistoryBuffer``s (and a ``getattr`` of their statistics methods,
    restricted to exactly that), numpy arrays, dtypes and scalars.

    ``torch.serialization.add_safe_globals(mmengine_safe_globals())`` lets
    MMEngine's own loader (``load_from``, ``--resume``) read its checkpoints
    under ``torch.load``'s ``weights_only=True`` default, which rejects them
    otherwise, without unpickling arbitrary objects.  (A param scheduler that
    stores other objects, such as ``OneCycleLR``, still needs more.)
    """
    import numpy as np

    allowed = [
        np.ndarray,
        np.dtype,
        (_history_buffer_getattr, 'builtins.getattr'),
    ]
    try:
        from mmengine.logging.history_buffer import HistoryBuffer

        allowed.append(HistoryBuffer)
    except ImportError:  # pragma: no cover
        pass
    try:
        from numpy._core.multiarray import _reconstruct, scalar
    except ImportError:  # numpy < 2
        from numpy.core.multiarray import _reconstruct, scalar
    allowed += [_reconstruct, scalar]
    allowed += [
        type(np.dtype(t))
        for t in (
            'float64',
            'float32',
            'float16',
            'int64',
            'int32',
            'uint8',
            'bool',
        )
    ]
    return allowed


def load_checkpoint_file(
    path: str,
    what: str,
    allow_pickle: bool = False,
    pickle_hint: str = '',
    map_location: Union[str, torch.device] = 'cpu',
):
    """The content of a ``.safetensors`` file (a dict of tensors) or of a torch
    file.

    Torch files are read with ``torch.load(weights_only=True)``, MMEngine's few
    non-tensor types allowed.  A file that still holds other Python objects (a
    pickle that would run code when unpickled included) raises ``ValueError``
    naming ``what``, the file and ``pickle_hint`` (how to opt in), unless
    ``allow_pickle``: then it is unpickled (only for files you trust).  A file
    that is not a readable safetensors/torch file raises ``ValueError`` naming
    it; a missing one ``FileNotFoundError``.
    """
    if not osp.isfile(path):
        raise FileNotFoundError(f'{what} not found: no file at {path!r}')
    if path.endswith('.safetensors'):
        from safetensors.torch import load_file

        try:
            return load_file(path, device=str(map_location))
        except OSError:
            raise
        # safetensors' own error types; no code runs on this path
        except Exception as err:  # noqa: BLE001
            raise ValueError(
                f'{what} {path!r} is not a valid .safetensors file '
                f'({type(err).__name__}: '
                f'{str(err).splitlines()[0][:200] if str(err) else ""})'
            ) from None
    try:
        with torch.serialization.safe_globals(mmengine_safe_globals()):
            return torch.load(
                path, map_location=map_location, weights_only=True
            )
    except pickle.UnpicklingError as err:
        if not allow_pickle and 'global' not in _first_reason(err).lower():
            # not a refused object but bytes that are no pickle at all (a
            # foreign or damaged file)
            raise ValueError(
                f'{what} {path!r} is not a readable torch checkpoint '
                f'({_first_reason(err)})'
            ) from None
        if not allow_pickle:
            raise ValueError(
                f'{what} {path!r} holds Python objects that '
                'torch.load(weights_only=True) refuses, so it was not '
                f'loaded ({_first_reason(err)}). {pickle_hint}'.rstrip()
            ) from None
    except OSError:
        raise
    # a truncated or foreign file: torch raises RuntimeError, EOFError ...
    except Exception as err:  # noqa: BLE001
        raise ValueError(
            f'{what} {path!r} is not a readable torch checkpoint '
            f'({type(err).__name__}: {_first_reason(err)})'
        ) from None
    return torch.load(path, map_location=map_location, weights_only=False)


def _first_reason(err: BaseException) -> str:
    """What torch's (long) weights_only message says is wrong, e.g.
    "Unsupported global: GLOBAL posix.system"."""
    text = ' '.join(str(err).split())
    key = 'WeightsUnpickler error:'
    # drop torch's advice to allowlist the offending global, which is the very
    # thing to avoid
    if key in text:
        reason = text.split(key, 1)[1]
        for stop in (
            ' was not an allowed global',
            ' Check the documentation',
            '. Please use',
        ):
            reason = reason.split(stop, 1)[0]
        if reason.strip():
            return reason.strip()[:300]
    return text[:300] or type(err).__name__


def load_checkpoint_state(
    path: str, map_location: Union[str, torch.device] = 'cpu'
) -> Dict[str, torch.Tensor]:
    """The state dict of a ``.safetensors`` file or a torch/MMEngine checkpoint
    (``{'state_dict': ...}``)."""
    state = load_checkpoint_file(path, 'checkpoint', map_location=map_location)
    if isinstance(state, dict) and isinstance(state.get('state_dict'), dict):
        state = state['state_dict']
    if not isinstance(state, dict):
        raise ValueError(
            f'checkpoint {path!r} holds a {type(state).__name__}, not a '
            'state dict'
        )
    return state


def load_restorer_state(
    model: nn.Module,
    path: str,
    map_location: Union[str, torch.device] = 'cpu',
    strict: bool = True,
) -> None:
    """Load a restorer's weights from a folder (``model.safetensors``), a
    ``.safetensors`` file or a checkpoint of the restorer, of
    :class:`UniRestoreModel` or of a recognizer around
    :class:`RestoredBackbone` (the prefix is found).  Keys of the frozen prior
    are ignored (it stays in its own folder).

    Raises ``ValueError`` naming the missing/unexpected/mis-shaped keys when
    the file does not match ``model`` (with ``strict=False`` only mis-shaped
    keys are an error; the matching keys are loaded).
    """
    if osp.isdir(path):
        path = osp.join(path, WEIGHTS_NAME)
    state = load_checkpoint_state(path, map_location)
    own = model.state_dict()
    best, best_hits = '', -1
    for prefix in CHECKPOINT_PREFIXES:
        hits = sum(1 for k in own if prefix + k in state)
        if hits > best_hits:
            best, best_hits = prefix, hits
    sub = {k[len(best) :]: v for k, v in state.items() if k.startswith(best)}
    unexpected = sorted(
        k for k in sub if k not in own and not k.startswith('prior.')
    )
    missing = sorted(k for k in own if k not in sub)
    if strict and (missing or unexpected):
        config = getattr(model, 'config', {})
        raise ValueError(
            f'restorer weights {path!r} do not match this model (preset '
            f'{config.get("preset")!r}, tasks '
            f'{getattr(model, "tasks", None)}): {len(missing)} missing keys '
            f'{missing[:5]}, {len(unexpected)} unexpected keys '
            f'{unexpected[:5]} (keys looked up under prefix {best!r})'
        )
    shapes = [
        (k, tuple(sub[k].shape), tuple(v.shape))
        for k, v in own.items()
        if k in sub and sub[k].shape != v.shape
    ]
    if shapes:
        raise ValueError(
            f'restorer weights {path!r}: shape mismatch (key, file, model): '
            f'{shapes[:5]}'
        )
    model.load_state_dict({k: sub[k] for k in own if k in sub}, strict=False)


__all__ = [
    'CHECKPOINT_PREFIXES',
    'load_checkpoint_file',
    'load_checkpoint_state',
    'load_restorer_state',
    'mmengine_safe_globals',
]
