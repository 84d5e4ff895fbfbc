"""Safe, small, exactly-resumable training checkpoints.

:class:`TrainedPartsCheckpointHook` replaces mmengine's ``CheckpointHook`` (put
it in ``default_hooks.checkpoint``).  Its files

* hold the **trained parts only**: parameters that require grad, plus the
  buffers of modules that own such parameters (e.g. BatchNorm statistics of a
  recognizer trained jointly); the frozen prior stays in its diffusers folder,
  frozen recognizers in their checkpoints, and frozen stage-1 parts in the file
  they were loaded from;
* hold only tensors and plain Python values, so they load with
  ``torch.load(weights_only=True)`` (mmengine's own files pickle
  ``HistoryBuffer`` and numpy objects); the trained weights also go to a
  ``.safetensors`` sidecar;
* are written atomically (a temporary file in the same folder, flushed and
  fsync'ed, then ``os.replace``), as is ``last_checkpoint``, so a run killed at
  any moment leaves the previous checkpoint intact and readable;
* carry what an exact ``--resume`` needs: iteration, optimizer, schedulers,
  message hub, and the random state of every process (Python, NumPy, torch CPU
  and CUDA), restored after the data loader has been advanced (see
  :class:`~unirestore_mm.engine.loops.ExactResumeIterBasedTrainLoop`).
"""

import os
import os.path as osp
import random
import re
import time
from typing import Any, Callable, Dict, List, Optional, Sequence

import numpy as np
import torch
from mmengine.dist import (
    all_gather_object,
    get_rank,
    get_world_size,
    is_main_process,
)
from mmengine.hooks import Hook
from mmengine.logging import HistoryBuffer, print_log
from mmengine.model import is_model_wrapper
from torch import nn

from ..registry import HOOKS

# re-exported
from ..utils.fileio import (
    atomic_save_safetensors,  # noqa: F401
    atomic_torch_save,  # noqa: F401
    atomic_write_bytes,  # noqa: F401
)

LAST_CHECKPOINT = 'last_checkpoint'
_HB_TAG = '__history_buffer__'
_PENDING_RNG = '_unirestore_pending_rng_state'


# -- what is trained ----------------------------------------------------------
def trained_keys(
    model: nn.Module, extra_keys: Sequence[str] = ()
) -> List[str]:
    """State-dict keys of trainable parameters and of the buffers of modules
    that own trainable parameters."""
    keys = []
    for mod_name, module in model.named_modules():
        prefix = mod_name + '.' if mod_name else ''
        own = list(module.named_parameters(recurse=False))
        if not any(p.requires_grad for _, p in own):
            continue
        keys += [prefix + n for n, p in own if p.requires_grad]
        keys += [
            prefix + n
            for n, b in module.named_buffers(recurse=False)
            if b is not None and n not in module._non_persistent_buffers_set
        ]
    state_keys = set(model.state_dict(keep_vars=True))
    keys = [k for k in keys if k in state_keys]
    keys += [k for k in extra_keys if k in state_keys and k not in keys]
    return keys


def trained_state_dict(
    model: nn.Module, extra_keys: Sequence[str] = ()
) -> Dict[str, torch.Tensor]:
    """The trained part of ``model.state_dict()`` (see :func:`trained_keys`),
    detached, on the CPU."""
    if is_model_wrapper(model):
        model = model.module
    keep = set(trained_keys(model, extra_keys))
    return {
        k: v.detach().cpu() for k, v in model.state_dict().items() if k in keep
    }


# -- weights_only-safe values -------------------------------------------------
def to_plain(obj: Any, where: str = 'checkpoint') -> Any:
    """Convert ``obj`` to tensors, containers and plain Python values that
    ``weights_only`` loading accepts.

    NumPy arrays become tensors, NumPy scalars Python numbers,
    ``HistoryBuffer`` a tagged dict; anything else is dropped with a warning
    (it could not be loaded safely)."""
    # before the Python types: np.float64 subclasses float
    if isinstance(obj, np.generic):
        return obj.item()
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    if isinstance(obj, torch.Tensor):
        return obj.detach().cpu()
    if isinstance(obj, np.ndarray):
        return (
            torch.from_numpy(np.ascontiguousarray(obj))
            if obj.dtype != object
            else [to_plain(v, where) for v in obj.tolist()]
        )
    if isinstance(obj, HistoryBuffer):
        data, counts = obj.data
        return {
            _HB_TAG: True,
            'data': [float(x) for x in data],
            'counts': [int(c) for c in counts],
            'max_length': int(obj.max_length),
        }
    if isinstance(obj, dict):
        out = {}
        for k, v in obj.items():
            v = to_plain(v, f'{where}.{k}')
            if v is not _DROP:
                out[k if isinstance(k, (str, int)) else str(k)] = v
        return out
    if isinstance(obj, (list, tuple)):
        items = [to_plain(v, f'{where}[{i}]') for i, v in enumerate(obj)]
        items = [v for v in items if v is not _DROP]
        return items if isinstance(obj, list) else tuple(items)
    if isinstance(obj, torch.dtype):
        return str(obj)
    print_log(
        f'checkpoint: dropped {where} of type {type(obj).__name__} (not '
        'loadable with weights_only)',
        logger='current',
        level=30,
    )
    return _DROP


class _Drop:
    pass


_DROP = _Drop()


def restore_history_buffers(obj: Any) -> Any:
    """Inverse of :func:`to_plain` for message-hub scalars."""
    if isinstance(obj, dict):
        if obj.get(_HB_TAG):
            return HistoryBuffer(obj['data'], obj['counts'], obj['max_length'])
        return {k: restore_history_buffers(v) for k, v in obj.items()}
    return obj


# -- random state -------------------------------------------------------------
def get_rng_state() -> Dict[str, Any]:
    np_state = np.random.get_state()
    state = {
        'python': [
            list(x) if isinstance(x, tuple) else x for x in random.getstate()
        ],
        'numpy': {
            'name': np_state[0],
            'keys': torch.from_numpy(np_state[1].astype(np.int64)),
            'pos': int(np_state[2]),
            'has_gauss': int(np_state[3]),
            'cached_gaussian': float(np_state[4]),
        },
        'torch': torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state['cuda'] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: Dict[str, Any]) -> None:
    """Inverse of :func:`get_rng_state` (``--resume`` loads checkpoints onto
    the GPU: states go back to the CPU)."""
    py = state['python']
    random.setstate((py[0], tuple(py[1]), py[2]))
    n = state['numpy']
    np.random.set_state(
        (
            n['name'],
            n['keys'].cpu().numpy().astype(np.uint32),
            n['pos'],
            n['has_gauss'],
            n['cached_gaussian'],
        )
    )
    torch.set_rng_state(state['torch'].cpu())
    if 'cuda' in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state['cuda']])


def restore_pending_rng(runner) -> bool:
    """Apply the random state stashed by
    :meth:`TrainedPartsCheckpointHook.after_load_checkpoint` (once)."""
    state = getattr(runner, _PENDING_RNG, None)
    if state is None:
        return False
    set_rng_state(state)
    setattr(runner, _PENDING_RNG, None)
    return True


# -- what a killed writer leaves ----------------------------------------------
_TEMPORARY = re.compile(
    r'^\.(?P<name>.+?)\.(?P<pid>\d+)(?:\.[0-9a-f]+)?\.tmp$'
)


def remove_stale_temporaries(
    folder: str, is_ours: Callable[[str], bool]
) -> List[str]:
    """Remove the temporary files (``.<name>.<pid>[.<random>].tmp``) that the
    atomic writer of a process that no longer runs left in ``folder`` for a
    destination ``<name>`` with ``is_ours(name)``; return their paths.

    A SIGKILL cannot run clean-up code, so a run killed while writing leaves
    its partial temporary file behind; the next run removes it.  Files of a
    live process other than this one (another run writing into the same folder)
    are kept."""
    removed = []
    for entry in sorted(os.listdir(folder)) if osp.isdir(folder) else []:
        m = _TEMPORARY.match(entry)
        if m is None or not is_ours(m['name']):
            continue
        pid = int(m['pid'])
        if pid != os.getpid():
            try:
                os.kill(pid, 0)
                # alive (a PermissionError means alive too, under another user)
                continue
            except ProcessLookupError:
                pass
            except PermissionError:
                continue
        path = osp.join(folder, entry)
        try:
            os.remove(path)
            removed.append(path)
        except FileNotFoundError:
            pass
    return removed


# -- the hook -----------------------------------------------------------------
@HOOKS.register_module()
class TrainedPartsCheckpointHook(Hook):
    """Atomic, ``weights_only``-loadable, trained-parts-only checkpoints every
    ``interval`` iterations.

    Args:
        interval: save every this many iterations (and after the last one when
            ``save_last``).
        max_keep_ckpts: keep this many newest checkpoints (``-1``: all).
        save_optimizer, save_param_scheduler: include their state (needed for
            ``--resume``).
        safetensors: also write the trained weights as ``iter_N.safetensors``.
        export_restorer: at the end of training, write the model's UniRestore
            (all its parts, not the prior) as
            ``<work_dir>/<export_restorer>.safetensors`` (also from inside a
            ``RestoredBackbone``); it is what the next stage's ``checkpoint=``
            reads and :meth:`UniRestore.load_weights` loads.
        extra_keys: state-dict keys to save although frozen.
        out_dir: folder (default: the work dir).
    """

    priority = 'VERY_LOW'

    def __init__(
        self,
        interval: int = 1000,
        max_keep_ckpts: int = 2,
        save_last: bool = True,
        save_optimizer: bool = True,
        save_param_scheduler: bool = True,
        safetensors: bool = True,
        export_restorer: Optional[str] = 'unirestore',
        extra_keys: Sequence[str] = (),
        out_dir: Optional[str] = None,
        filename_tmpl: str = 'iter_{}.pth',
    ):
        if interval < 1:
            raise ValueError(f'interval must be >= 1, got {interval}')
        self.interval, self.max_keep_ckpts, self.save_last = (
            interval,
            max_keep_ckpts,
            save_last,
        )
        self.save_optimizer, self.save_param_scheduler = (
            save_optimizer,
            save_param_scheduler,
        )
        self.safetensors, self.export_restorer = safetensors, export_restorer
        self.extra_keys, self.out_dir, self.filename_tmpl = (
            tuple(extra_keys),
            out_dir,
            filename_tmpl,
        )
        self._saved: List[str] = []

    def before_train(self, runner) -> None:
        self.out_dir = self.out_dir or runner.work_dir
        os.makedirs(self.out_dir, exist_ok=True)
        # a resumed run keeps pruning the files of the run it continues
        prefix, suffix = self.filename_tmpl.split('{}')
        # a run killed while writing left a temporary file (never read): remove
        # it
        if is_main_process():
            ours = (  # noqa: E731
                lambda name: name == LAST_CHECKPOINT
                or name == f'{self.export_restorer}.safetensors'
                or (
                    name.startswith(prefix)
                    and name.endswith((suffix, '.safetensors'))
                )
            )
            for folder in {self.out_dir, runner.work_dir}:
                for path in remove_stale_temporaries(folder, ours):
                    runner.logger.warning(
                        f'removed {path}, left by a run killed while writing '
                        'a checkpoint'
                    )
        found = []
        for name in os.listdir(self.out_dir):
            number = name[len(prefix) : len(name) - len(suffix)]
            if (
                name.startswith(prefix)
                and name.endswith(suffix)
                and number.isdigit()
            ):
                found.append((int(number), osp.join(self.out_dir, name)))
        self._saved = [p for _, p in sorted(found)]

    def after_train_iter(
        self, runner, batch_idx: int, data_batch=None, outputs=None
    ) -> None:
        if self.every_n_train_iters(runner, self.interval) or (
            self.save_last and self.is_last_train_iter(runner)
        ):
            self.save(runner)

    def after_train(self, runner) -> None:
        if not self.export_restorer or not is_main_process():
            return
        from ..models.unirestore import UniRestore

        model = (
            runner.model.module
            if is_model_wrapper(runner.model)
            else runner.model
        )
        restorer = next(
            (m for m in model.modules() if isinstance(m, UniRestore)), None
        )
        if restorer is None:
            return
        path = osp.join(
            self.out_dir or runner.work_dir,
            f'{self.export_restorer}.safetensors',
        )
        atomic_save_safetensors(
            restorer.state_dict(),
            path,
            metadata={'format': 'pt', 'iter': runner.iter},
        )
        print_log(f'restorer weights written to {path}', logger='current')

    # -- saving ---------------------------------------------------------------
    def build_checkpoint(self, runner) -> Dict[str, Any]:
        model = (
            runner.model.module
            if is_model_wrapper(runner.model)
            else runner.model
        )
        keys = trained_keys(model, self.extra_keys)
        meta = dict(
            epoch=runner.epoch,
            iter=runner.iter + 1,
            seed=runner.seed,
            experiment_name=runner.experiment_name,
            time=time.strftime('%Y%m%d_%H%M%S'),
            world_size=get_world_size(),
            trained_keys=keys,
        )
        dataset = getattr(runner.train_dataloader, 'dataset', None)
        if getattr(dataset, 'metainfo', None) is not None:
            meta['dataset_meta'] = dataset.metainfo
        # the full state dict first, so that hooks such as EMAHook can swap
        # their values in
        checkpoint: Dict[str, Any] = dict(
            meta=meta, state_dict=model.state_dict()
        )
        if self.save_optimizer:
            checkpoint['optimizer'] = runner.optim_wrapper.state_dict()
        if self.save_param_scheduler and runner.param_schedulers is not None:
            scheds = runner.param_schedulers
            checkpoint['param_schedulers'] = (
                {
                    name: [s.state_dict() for s in group]
                    for name, group in scheds.items()
                }
                if isinstance(scheds, dict)
                else [s.state_dict() for s in scheds]
            )
        checkpoint['message_hub'] = runner.message_hub.state_dict()
        runner.call_hook('before_save_checkpoint', checkpoint=checkpoint)
        keep = set(keys)
        checkpoint['state_dict'] = {
            k: v.detach().cpu()
            for k, v in checkpoint['state_dict'].items()
            if k in keep
        }
        # mmengine's EMAHook: "module.<key>" plus "steps"
        if 'ema_state_dict' in checkpoint:
            checkpoint['ema_state_dict'] = {
                k: v
                for k, v in checkpoint['ema_state_dict'].items()
                if not k.startswith('module.') or k[len('module.') :] in keep
            }
        return to_plain(checkpoint)

    def save(self, runner) -> None:
        # every process contributes its random state; the main process writes
        states = (
            all_gather_object(get_rng_state())
            if get_world_size() > 1
            else [get_rng_state()]
        )
        if not is_main_process():
            return
        checkpoint = self.build_checkpoint(runner)
        checkpoint['rng_state'] = to_plain(states)
        out_dir = self.out_dir or runner.work_dir
        name = self.filename_tmpl.format(runner.iter + 1)
        path = osp.join(out_dir, name)
        atomic_torch_save(checkpoint, path)
        if self.safetensors:
            atomic_save_safetensors(
                checkpoint['state_dict'],
                osp.splitext(path)[0] + '.safetensors',
                metadata={'format': 'pt', 'iter': runner.iter + 1},
            )
        # last_checkpoint names the newest complete file (what --resume reads)
        atomic_write_bytes(
            path.encode(), osp.join(runner.work_dir, LAST_CHECKPOINT)
        )
        runner.logger.info(
            'Saved checkpoint (trained parts: '
            f'{len(checkpoint["state_dict"])} tensors) to {path}'
        )
        if path not in self._saved:
            self._saved.append(path)
        if self.max_keep_ckpts > 0:
            while len(self._saved) > self.max_keep_ckpts:
                old = self._saved.pop(0)
                for p in (old, osp.splitext(old)[0] + '.safetensors'):
                    if osp.isfile(p):
                        os.remove(p)

    # -- loading --------------------------------------------------------------
    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        if 'message_hub' in checkpoint:
            checkpoint['message_hub'] = restore_history_buffers(
                checkpoint['message_hub']
            )
        states = checkpoint.get('rng_state')
        if states and getattr(runner, '_resume', False):
            rank = get_rank()
            if len(states) != get_world_size():
                runner.logger.warning(
                    f'checkpoint has random states of {len(states)} '
                    f'processes, this run has {get_world_size()}: the random '
                    'stream will not continue exactly'
                )
            setattr(runner, _PENDING_RNG, states[rank % len(states)])

    def before_train_iter(
        self, runner, batch_idx: int, data_batch=None
    ) -> None:
        # The exact-resume loop restores the random state right after advancing
        # the data loader; with another loop, restore it here (exact unless the
        # main process draws random numbers while loading data).
        if restore_pending_rng(runner):
            runner.logger.warning(
                'random state restored at the first iteration; use '
                "train_cfg=dict(type='unirestore_mm."
                "ExactResumeIterBasedTrainLoop') to also "
                'reproduce data-loading randomness in the main process'
            )


def load_training_checkpoint(path: str, map_location='cpu') -> dict:
    """Read one of this hook's files (``.pth`` with
    ``torch.load(weights_only=True)``, or its ``.safetensors``).

    A file holding other Python objects (a pickle that would run code) is
    refused with a ``ValueError`` naming it.
    """
    from ..models.checkpoint_io import load_checkpoint_file

    return load_checkpoint_file(
        path,
        'training checkpoint',
        map_location=map_location,
        pickle_hint="This package's checkpoints hold only tensors and plain "
        "values: "
        'the file was not written by TrainedPartsCheckpointHook, or it was '
        'altered.',
    )
