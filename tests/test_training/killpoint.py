"""Test-only hooks, imported by configs the training tests write
(``custom_imports``)."""

import json
import os
import os.path as osp
import signal
import time

import torch
from mmengine.dist import get_rank
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from unirestore_mm.registry import HOOKS


@HOOKS.register_module(force=True)
class RecordLossHook(Hook):
    """Append ``{"iter": n, "loss": ..., "lr": ...}`` lines to ``path`` after
    every iteration."""

    priority = 'LOWEST'

    def __init__(self, path):
        self.path = path

    def after_train_iter(
        self, runner, batch_idx, data_batch=None, outputs=None
    ):
        lr = runner.optim_wrapper.get_lr()['lr'][0]
        with open(self.path, 'a') as f:
            f.write(
                json.dumps(
                    dict(
                        iter=runner.iter + 1,
                        loss=float(outputs['loss'].detach()),
                        lr=lr,
                    )
                )
                + '\n'
            )


@HOOKS.register_module(force=True)
class StopAtHook(Hook):
    """Stop training after iteration ``at`` (as if interrupted cleanly)."""

    def __init__(self, at):
        self.at = at

    def after_train_iter(
        self, runner, batch_idx, data_batch=None, outputs=None
    ):
        if runner.iter + 1 >= self.at:
            runner.train_loop.stop_training = True


# -- fault injection (tests/test_training/test_fault_injection.py) ------------
# The point is chosen by the environment of the training process, so the same
# dumped config runs killed and then resumed (``tools/train.py --resume``, as a
# user would) without the variable:
#   UNIRESTORE_KILL_AT=<point>@<iteration>[:<file name>]
#       UNIRESTORE_KILL_MARKER=<file the victim writes>
# points: ``optimizer_step`` (half of the parameters updated in memory, then
# killed), ``backward`` (killed once half of the trainable parameters'
# gradients have been computed), ``checkpoint_write`` (the file named <file
# name>, or a temporary file for it, is killed with part of its bytes on disk:
# after the temporary file is partly written and before any rename; see
# _PartialWriteFile).  The write is caught at ``open`` / ``os.fdopen`` and
# ``file.write``, so it does not depend on which module of the package writes,
# nor on whether the writer is atomic (a writer that is not leaves the partial
# file under the real name).
KILL_ENV = 'UNIRESTORE_KILL_AT'
MARKER_ENV = 'UNIRESTORE_KILL_MARKER'
KILL_POINTS = ('optimizer_step', 'backward', 'checkpoint_write')


def parse_kill_spec(spec):
    """``'backward@5'`` -> ``('backward', 5, None)``;
    ``'checkpoint_write@6:iter_6.pth'`` -> (..., 'iter_6.pth')."""
    point, _, rest = spec.partition('@')
    at, _, name = rest.partition(':')
    if (
        point not in KILL_POINTS
        or not at.isdigit()
        or (point == 'checkpoint_write') != bool(name)
    ):
        raise ValueError(
            f'{KILL_ENV}={spec!r}: expected <point>@<iteration>[:<file '
            f'name>] with point one of {KILL_POINTS} (a file name for '
            'checkpoint_write only)'
        )
    return point, int(at), name or None


def die(what):
    """Record where we are (the test checks it: the kill hit the intended
    point) and SIGKILL this process."""
    marker = os.environ.get(MARKER_ENV)
    if marker:
        with open(marker, 'w') as f:
            f.write(what)
            f.flush()
            os.fsync(f.fileno())
    os.kill(os.getpid(), signal.SIGKILL)
    time.sleep(60)  # never reached


def _trainable(runner):
    model = (
        runner.model.module if is_model_wrapper(runner.model) else runner.model
    )
    return [p for p in model.parameters() if p.requires_grad]


def _arm_optimizer_step(runner):
    optimizer = runner.optim_wrapper.optimizer
    real_step = optimizer.step

    def half_step(*args, **kwargs):
        params = [
            p
            for group in optimizer.param_groups
            for p in group['params']
            if p.grad is not None
        ]
        first, held = params[: len(params) // 2], params[len(params) // 2 :]
        before = [p.detach().clone() for p in first]
        grads = [p.grad for p in held]
        for p in held:
            # the optimizer skips these: only the first half is stepped
            p.grad = None
        real_step(*args, **kwargs)
        for p, g in zip(held, grads):
            p.grad = g
        changed = sum(
            not torch.equal(b, p.detach()) for b, p in zip(before, first)
        )
        die(
            f'optimizer_step: {changed} of {len(params)} parameters updated '
            'in memory'
        )

    optimizer.step = half_step


def _arm_backward(runner):
    params = _trainable(runner)
    done = []

    def hook(grad):
        done.append(1)
        if len(done) == len(params) // 2:
            die(
                f'backward: {len(done)} of {len(params)} parameter gradients '
                'computed'
            )
        return grad

    for p in params:
        p.register_hook(hook)


class _PartialWriteFile:
    """A file that dies with part of its content on disk: at the write that
    takes it past ``KILL_AFTER`` bytes (half of that write reaches the file),
    or, for a smaller file, when the writer flushes it, asks for its descriptor
    (to ``fsync`` it) or closes it, after cutting what was written in half --
    always before a rename."""

    KILL_AFTER = 64 * 1024

    def __init__(self, f, name):
        self._f, self._name, self._written = f, name, 0

    def _die(self, cut=True):
        self._f.flush()
        if cut:
            self._written //= 2
            os.ftruncate(self._f.fileno(), self._written)
        os.fsync(self._f.fileno())
        die(f'checkpoint_write: {self._written} bytes of {self._name} on disk')

    def write(self, data):
        if not isinstance(data, str):
            data = memoryview(data).cast('B')
        if self._written + len(data) < self.KILL_AFTER:
            self._written += len(data)
            return self._f.write(data)
        part = max(1, len(data) // 2)
        self._f.write(data[:part])
        self._written += part
        self._die(cut=False)

    def flush(self):
        self._die()

    def fileno(self):
        self._die()

    def close(self):
        self._die()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._die()

    def __getattr__(self, name):
        return getattr(self._f, name)


def _arm_checkpoint_write(target):
    import builtins

    def hit(path):
        base = (
            osp.basename(os.fspath(path))
            if isinstance(path, (str, bytes, os.PathLike))
            else ''
        )
        return base == target or (
            base.startswith(f'.{target}.') and base.endswith('.tmp')
        )

    real_open, real_fdopen = builtins.open, os.fdopen

    def open_(file, mode='r', *args, **kwargs):
        f = real_open(file, mode, *args, **kwargs)
        return _PartialWriteFile(f, file) if 'w' in mode and hit(file) else f

    def fdopen(fd, mode='r', *args, **kwargs):
        f = real_fdopen(fd, mode, *args, **kwargs)
        name = (
            os.readlink(f'/proc/self/fd/{fd}')
            if osp.isdir('/proc/self/fd')
            else ''
        )
        return _PartialWriteFile(f, name) if 'w' in mode and hit(name) else f

    builtins.open, os.fdopen = open_, fdopen


@HOOKS.register_module(force=True)
class FaultInjectionHook(Hook):
    """Arm the kill point named by ``$UNIRESTORE_KILL_AT`` at the start of its
    iteration (a no-op without it)."""

    priority = 'HIGHEST'

    def __init__(self):
        spec = os.environ.get(KILL_ENV)
        self.spec = parse_kill_spec(spec) if spec else None

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        if self.spec is None or runner.iter + 1 != self.spec[1]:
            return
        point, _, name = self.spec
        if point == 'optimizer_step':
            _arm_optimizer_step(runner)
        elif point == 'backward':
            _arm_backward(runner)
        else:
            _arm_checkpoint_write(name)


def _state_of(runner):
    model = (
        runner.model.module if is_model_wrapper(runner.model) else runner.model
    )
    scheds = runner.param_schedulers
    scheds = (
        {k: [s.state_dict() for s in v] for k, v in scheds.items()}
        if isinstance(scheds, dict)
        else [s.state_dict() for s in scheds or []]
    )
    state = dict(
        iter=runner.iter,
        model=model.state_dict(),
        optimizer=runner.optim_wrapper.state_dict(),
        param_schedulers=scheds,
    )
    # an EMA of the trained parameters (TrainedPartsEMAHook)
    for hook in runner.hooks:
        if isinstance(getattr(hook, 'shadow', None), dict):
            state[f'{type(hook).__name__}'] = dict(
                steps=hook.steps, shadow=hook.shadow
            )
    return state


@HOOKS.register_module(force=True)
class DumpFinalStateHook(Hook):
    """At the end of training, save the whole model state dict (frozen parts
    included), the optimizer's and the parameter schedulers' state dicts and an
    EMA hook's averages to ``path`` (what a bit-for-bit comparison of two runs
    reads).  First of the ``after_train`` hooks: the weights as trained, before
    an EMA replaces them."""

    priority = 'HIGHEST'

    def __init__(self, path):
        self.path = path

    def after_train(self, runner):
        if get_rank() == 0:
            torch.save(_state_of(runner), self.path)


@HOOKS.register_module(force=True)
class WeightTraceHook(Hook):
    """Save each process's trainable parameters before training and after every
    iteration to ``<out_dir>/rank<r>_iter<n>.pt`` (n = 0 before the first
    step), and the gradients each optimizer step applies (after DDP's
    all-reduce) to ``<out_dir>/rank<r>_grad<n>.pt``."""

    priority = 'LOWEST'

    def __init__(self, out_dir):
        self.out_dir = out_dir

    def _save(self, runner, what, n, tensors):
        os.makedirs(self.out_dir, exist_ok=True)
        torch.save(
            tensors, osp.join(self.out_dir, f'rank{get_rank()}_{what}{n}.pt')
        )

    def before_train(self, runner):
        model = (
            runner.model.module
            if is_model_wrapper(runner.model)
            else runner.model
        )
        named = [
            (k, p) for k, p in model.named_parameters() if p.requires_grad
        ]
        self._params = lambda: {k: p.detach().clone() for k, p in named}
        self._save(runner, 'iter', runner.iter, self._params())
        optimizer = runner.optim_wrapper.optimizer
        real_step = optimizer.step

        def step(*args, **kwargs):
            self._save(
                runner,
                'grad',
                runner.iter + 1,
                {
                    k: p.grad.detach().clone()
                    for k, p in named
                    if p.grad is not None
                },
            )
            return real_step(*args, **kwargs)

        optimizer.step = step

    def after_train_iter(
        self, runner, batch_idx, data_batch=None, outputs=None
    ):
        self._save(runner, 'iter', runner.iter + 1, self._params())


def _per_sample(real, generators, size_at):
    """``real`` (``torch.randn``/``rand``/``randint``) drawing row ``i`` of a
    batch-sized draw from ``generators[i]`` (CPU generators; the result is
    moved to the requested device)."""

    def draw(*args, **kwargs):
        if kwargs.get('generator') is not None:
            return real(*args, **kwargs)
        kwargs.pop('generator', None)
        if size_at is None:  # randn(*size) / rand(*size)
            size = (
                args[0]
                if len(args) == 1
                and isinstance(args[0], (tuple, list, torch.Size))
                else args
            )
            head = ()
        else:  # randint(high, size) / randint(low, high, size)
            head, size = args[:-1], args[-1]
        size = tuple(size)
        if not size or size[0] != len(generators):
            raise RuntimeError(
                f'PerSampleNoiseHook: a random draw of size {size} is not '
                f'one row per sample (batch {len(generators)}); teach the '
                'hook this draw'
            )
        device = kwargs.pop('device', None)
        rows = [
            real(*head, (1,) + size[1:], generator=g, **kwargs)
            for g in generators
        ]
        return (
            torch.cat(rows).to(device)
            if device is not None
            else torch.cat(rows)
        )

    return draw


@HOOKS.register_module(force=True)
class PerSampleNoiseHook(Hook):
    """Make the model's random draws a function of (iteration, sample index)
    instead of the process's stream.

    The stage-1 loss draws latent-sampling noise, timesteps and diffusion noise
    for the whole batch at once, so 1 process x batch 2 and 2 processes x batch
    1 would draw different numbers for the same sample.  While the model
    computes its losses, ``torch.randn``/``rand``/``randint`` without a
    generator are replaced by draws whose row ``i`` comes from a generator
    seeded with ``1000 * iter + sample_idx`` of sample ``i`` (a draw that is
    not one row per sample raises).  The forward and backward stay batched:
    only the numbers drawn are pinned to the samples.
    """

    def before_train(self, runner):
        model = (
            runner.model.module
            if is_model_wrapper(runner.model)
            else runner.model
        )
        real = model.compute_losses
        hook = self

        def compute_losses(inputs, gt, data_samples=None):
            gens = [
                torch.Generator().manual_seed(
                    1000 * hook.iter + int(s.metainfo['sample_idx'])
                )
                for s in data_samples
            ]
            saved = torch.randn, torch.rand, torch.randint
            torch.randn = _per_sample(saved[0], gens, None)
            torch.rand = _per_sample(saved[1], gens, None)
            torch.randint = _per_sample(saved[2], gens, -1)
            try:
                return real(inputs, gt, data_samples)
            finally:
                torch.randn, torch.rand, torch.randint = saved

        model.compute_losses = compute_losses

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        self.iter = runner.iter
