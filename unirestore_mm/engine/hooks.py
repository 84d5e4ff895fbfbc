"""Hooks that keep frozen parts frozen.

:class:`FreezeHook` freezes named sub-modules (``requires_grad_(False)``)
before the run and keeps them in eval mode at every iteration (mmengine's loops
call ``model.train()`` on the whole model each iteration, which would otherwise
switch a frozen recognizer's BatchNorm back to batch statistics).  With
``check=True`` it also verifies, after every ``check_interval`` iterations,
that no frozen parameter changed.

Freeze in the model where you can (UniRestore's ``set_trainable``,
TaskRestorer's ``trainable``): under ``torchrun`` DDP registers its parameters
when the model is wrapped, before any hook runs, so a part frozen only by this
hook needs ``model_wrapper_cfg=dict(type='MMDistributedDataParallel',
find_unused_parameters=True)``.
"""

from typing import Dict, Optional, Sequence

import torch
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from ..registry import HOOKS


def _get_module(model, path: str):
    module = model
    for name in path.split('.') if path else []:
        if not hasattr(module, name):
            children = [n for n, _ in module.named_children()]
            raise ValueError(
                f'FreezeHook: no module {path!r} in {type(model).__name__} '
                f'(at {name!r}; children there: {children})'
            )
        module = getattr(module, name)
    return module


@HOOKS.register_module()
class FreezeHook(Hook):
    """Freeze ``modules`` (dotted paths in the model) and keep them in eval
    mode.

    Args:
        modules: e.g.
            ``['backbone.restorer.cfrm', 'backbone.restorer.controller']``.
        eval_mode: keep them in eval mode at every iteration.
        check_interval: every this many iterations assert that the frozen
            parameters did not change (``0``: never; a debugging aid, it keeps
            a copy of the frozen weights).
    """

    priority = 'HIGH'

    def __init__(
        self,
        modules: Sequence[str],
        eval_mode: bool = True,
        check_interval: int = 0,
    ):
        if isinstance(modules, str):
            modules = [modules]
        self.paths = list(modules)
        self.eval_mode, self.check_interval = eval_mode, check_interval
        self._reference: Optional[Dict[str, torch.Tensor]] = None

    def _modules(self, runner):
        model = (
            runner.model.module
            if is_model_wrapper(runner.model)
            else runner.model
        )
        return [(p, _get_module(model, p)) for p in self.paths]

    def before_run(self, runner) -> None:
        for _, module in self._modules(runner):
            module.requires_grad_(False)
            if self.eval_mode:
                module.eval()
        if self.check_interval:
            self._reference = {
                f'{p}.{n}': t.detach().clone()
                for p, m in self._modules(runner)
                for n, t in m.state_dict().items()
            }

    def before_train_iter(
        self, runner, batch_idx: int, data_batch=None
    ) -> None:
        if self.eval_mode:
            for _, module in self._modules(runner):
                module.eval()

    def after_train_iter(
        self, runner, batch_idx: int, data_batch=None, outputs=None
    ) -> None:
        if self._reference is None or not self.every_n_train_iters(
            runner, self.check_interval
        ):
            return
        for p, m in self._modules(runner):
            for n, t in m.state_dict().items():
                if not torch.equal(
                    t.detach().cpu(), self._reference[f'{p}.{n}'].cpu()
                ):
                    raise RuntimeError(
                        f'FreezeHook: frozen {p}.{n} changed at iteration '
                        f'{runner.iter + 1}'
                    )


@HOOKS.register_module()
class TaskDataCheckHook(Hook):
    """Before the first iteration, check every task's data against the model
    (``TaskRestorer.check_dataset``): a dataset for a task with no loss, or
    whose classes do not match its recognizer's, fails here with a clear
    message instead of at some later batch."""

    priority = 'VERY_HIGH'

    def before_train(self, runner) -> None:
        from .multitask_data import MultiTaskDataset

        model = (
            runner.model.module
            if is_model_wrapper(runner.model)
            else runner.model
        )
        check = getattr(model, 'check_dataset', None)
        if check is None:
            return
        dataset = runner.train_dataloader.dataset
        if isinstance(dataset, MultiTaskDataset):
            for task in dataset.tasks:
                check(task, getattr(dataset.datasets[task], 'metainfo', None))
            missing = set(getattr(model, 'task_specs', {})) - set(
                dataset.tasks
            )
            if missing:
                runner.logger.warning(
                    f'tasks {sorted(missing)} have a loss but no data; they '
                    'will not train'
                )
        else:
            tasks = list(getattr(model, 'task_specs', {}))
            if len(tasks) != 1:
                raise ValueError(
                    f'the model trains tasks {tasks} but the data is one '
                    f'{type(dataset).__name__}; '
                    'use unirestore_mm.MultiTaskDataset(datasets=dict(<task>=...)) '
                    'to say which data serves which task'
                )
            check(tasks[0], getattr(dataset, 'metainfo', None))


@HOOKS.register_module()
class TrainedPartsEMAHook(Hook):
    """Exponential moving average of the *trainable* parameters only.

    mmengine's ``EMAHook`` deep-copies the whole model, i.e. also the frozen SD
    prior and any frozen recognizer (gigabytes at SD scale); this hook keeps
    one shadow tensor per trainable parameter instead:
    ``ema = (1 - momentum) * ema + momentum * param`` every ``interval``
    iterations from ``begin_iter`` on.  Validation and testing run with the
    averaged weights; checkpoints carry them (``trained_ema``) and ``--resume``
    restores them; with ``apply_at_end`` the model ends training with the
    averaged weights (so the exported restorer is the EMA one).
    """

    priority = 'ABOVE_NORMAL'

    def __init__(
        self,
        momentum: float = 1e-4,
        interval: int = 1,
        begin_iter: int = 0,
        apply_at_end: bool = True,
    ):
        if not 0 < momentum < 1:
            raise ValueError(f'momentum must be in (0, 1), got {momentum}')
        self.momentum, self.interval, self.begin_iter, self.apply_at_end = (
            momentum,
            interval,
            begin_iter,
            apply_at_end,
        )
        self.shadow: Optional[Dict[str, torch.Tensor]] = None
        self.steps = 0

    def _params(self, runner):
        model = (
            runner.model.module
            if is_model_wrapper(runner.model)
            else runner.model
        )
        return {n: p for n, p in model.named_parameters() if p.requires_grad}

    def before_run(self, runner) -> None:
        if self.shadow is None:
            self.shadow = {
                n: p.detach().clone() for n, p in self._params(runner).items()
            }

    def after_train_iter(
        self, runner, batch_idx: int, data_batch=None, outputs=None
    ) -> None:
        if runner.iter + 1 < self.begin_iter or not self.every_n_train_iters(
            runner, self.interval
        ):
            return
        with torch.no_grad():
            for n, p in self._params(runner).items():
                if runner.iter + 1 == self.begin_iter or self.steps == 0:
                    self.shadow[n].copy_(p)
                else:
                    self.shadow[n].lerp_(p.detach(), self.momentum)
        self.steps += 1

    def _swap(self, runner) -> None:
        with torch.no_grad():
            for n, p in self._params(runner).items():
                tmp = p.detach().clone()
                p.copy_(self.shadow[n])
                self.shadow[n].copy_(tmp)

    def before_val_epoch(self, runner) -> None:
        self._swap(runner)

    def after_val_epoch(self, runner, metrics=None) -> None:
        self._swap(runner)

    def before_test_epoch(self, runner) -> None:
        if self.shadow is not None:
            self._swap(runner)

    def after_test_epoch(self, runner, metrics=None) -> None:
        if self.shadow is not None:
            self._swap(runner)

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        checkpoint['trained_ema'] = dict(
            steps=self.steps,
            params={k: v.detach().cpu() for k, v in self.shadow.items()},
        )

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        ema = checkpoint.get('trained_ema')
        if ema is None:
            return
        params = self._params(runner)
        self.shadow = {
            n: ema['params'][n].to(p.device).clone()
            if n in ema['params']
            else p.detach().clone()
            for n, p in params.items()
        }
        self.steps = int(ema['steps'])

    def after_train(self, runner) -> None:
        if self.apply_at_end and self.shadow is not None:
            with torch.no_grad():
                for n, p in self._params(runner).items():
                    p.copy_(self.shadow[n])
