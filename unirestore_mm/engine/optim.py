"""The paper's optimisation (DESIGN §3): AdamW, lr scaled by sqrt(batch / 64),
a one-cycle cosine schedule with 10 % warm-up.

* :class:`SqrtScaledOptimWrapperConstructor`: builds the optimizer over the
  *trainable* parameters only (the frozen prior and recognizers stay out of the
  optimizer state), with
  ``lr = base_lr * sqrt(batch_size * world_size * accumulative_counts / base_batch_size)``;
  per-part learning rates come from mmengine's ``paramwise_cfg.custom_keys``
  (``lr_mult``), relative to the scaled lr.
* :class:`BF16OptimWrapper`: bf16 autocast mixed precision on CPU and GPU (no
  loss scaling needed).
* :class:`OneCycleCosineLR`: cosine warm-up from ``peak / div_factor`` to each
  group's own peak (its scaled lr) over ``pct_start`` of the run, then cosine
  annealing to ``peak / div_factor / final_div_factor``; the values follow from
  the step alone, so a resumed run continues exactly.

Config::

    optim_wrapper = dict(
        constructor='unirestore_mm.SqrtScaledOptimWrapperConstructor',
        lr_scaling=dict(base_batch_size=64, batch_size=6),      # the per-process batch
        optimizer=dict(type='AdamW', lr=1e-4, weight_decay=0.01))
    param_scheduler = [dict(type='unirestore_mm.OneCycleCosineLR', pct_start=0.1, by_epoch=False)]
"""

import copy
import math
from contextlib import contextmanager
from typing import List, Optional

import torch
from mmengine.dist import get_world_size
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper
from mmengine.optim import DefaultOptimWrapperConstructor, OptimWrapper
from mmengine.optim.scheduler.lr_scheduler import LRSchedulerMixin
from mmengine.optim.scheduler.param_scheduler import _ParamScheduler
from mmengine.registry import OPTIM_WRAPPERS, OPTIMIZERS
from torch import nn

from ..registry import OPTIM_WRAPPER_CONSTRUCTORS, PARAM_SCHEDULERS
from ..registry import OPTIM_WRAPPERS as OPTIM_WRAPPERS_LOCAL

PAPER_BASE_BATCH = 64
PAPER_BASE_LR = 1e-4


def sqrt_scaled_lr(
    base_lr: float, batch_size: int, base_batch_size: int = PAPER_BASE_BATCH
) -> float:
    """``base_lr * sqrt(batch_size / base_batch_size)``: the paper's rule (1e-4
    at 64; 8.66e-5 at 48)."""
    if batch_size < 1 or base_batch_size < 1:
        raise ValueError(
            f'batch sizes must be positive; got batch_size={batch_size}, '
            f'base={base_batch_size}'
        )
    return base_lr * math.sqrt(batch_size / base_batch_size)


@OPTIM_WRAPPER_CONSTRUCTORS.register_module()
class SqrtScaledOptimWrapperConstructor(DefaultOptimWrapperConstructor):
    """mmengine's default constructor, plus sqrt batch scaling of the lr and
    trainable-parameters-only groups.

    ``optim_wrapper_cfg['lr_scaling'] = dict(batch_size=B, base_batch_size=64)``:
    ``B`` is the per-process batch; the effective batch multiplies it by the
    world size and ``accumulative_counts``.  Without ``lr_scaling`` the lr is
    used as given.
    """

    def __init__(
        self, optim_wrapper_cfg: dict, paramwise_cfg: Optional[dict] = None
    ):
        optim_wrapper_cfg = copy.deepcopy(optim_wrapper_cfg)
        self.lr_scaling = optim_wrapper_cfg.pop('lr_scaling', None)
        if self.lr_scaling is not None and 'batch_size' not in self.lr_scaling:
            raise ValueError(
                "lr_scaling needs 'batch_size' (the per-process batch), e.g. "
                'lr_scaling=dict(batch_size=6, base_batch_size=64)'
            )
        super().__init__(optim_wrapper_cfg, paramwise_cfg)

    def effective_batch_size(self) -> int:
        return (
            int(self.lr_scaling['batch_size'])
            * get_world_size()
            * int(self.optim_wrapper_cfg.get('accumulative_counts', 1))
        )

    def __call__(self, model: nn.Module):
        if is_model_wrapper(model):
            model = model.module
        optim_wrapper_cfg = copy.deepcopy(self.optim_wrapper_cfg)
        optim_wrapper_cfg.setdefault('type', 'OptimWrapper')
        optimizer_cfg = copy.deepcopy(self.optimizer_cfg)
        if self.lr_scaling is not None:
            eff = self.effective_batch_size()
            base = int(
                self.lr_scaling.get('base_batch_size', PAPER_BASE_BATCH)
            )
            scaled = sqrt_scaled_lr(self.base_lr, eff, base)
            print_log(
                f'lr {self.base_lr:.3g} at batch {base} -> {scaled:.3g} at '
                f'effective batch {eff} '
                '(sqrt scaling)',
                logger='current',
            )
            self.base_lr = optimizer_cfg['lr'] = scaled
        if self.paramwise_cfg:
            params: List[dict] = []
            self.add_params(params, model)
            params = [g for g in params if g['params'][0].requires_grad]
        else:
            params = [p for p in model.parameters() if p.requires_grad]
        if not params:
            raise ValueError(
                'the model has no trainable parameters; check its trainable '
                'parts (e.g. '
                "trainable=['tfa', 'prompts']) and frozen recognizers"
            )
        optimizer_cfg['params'] = params
        optimizer = OPTIMIZERS.build(optimizer_cfg)
        return OPTIM_WRAPPERS.build(
            optim_wrapper_cfg, default_args=dict(optimizer=optimizer)
        )


class OneCycleCosineParamScheduler(_ParamScheduler):
    """One cycle: cosine warm-up to each group's initial value, then cosine
    decay (the authors' OneCycleLR with ``anneal_strategy='cos'``,
    ``div_factor=10``, ``pct_start=0.1``; no momentum cycling)."""

    def __init__(
        self,
        optimizer,
        param_name: str,
        total_steps: Optional[int] = None,
        pct_start: float = 0.1,
        div_factor: float = 10.0,
        final_div_factor: float = 1e4,
        begin: int = 0,
        end: Optional[int] = None,
        last_step: int = -1,
        by_epoch: bool = False,
        verbose: bool = False,
    ):
        if total_steps is None:
            if end is None:
                raise ValueError(
                    'OneCycleCosine needs total_steps or end (the runner '
                    'sets end to max_iters)'
                )
            total_steps = end - begin
        if total_steps < 1 or not 0 <= pct_start < 1:
            raise ValueError(
                f'OneCycleCosine: total_steps={total_steps} must be >= 1 and '
                f'pct_start={pct_start} '
                'in [0, 1)'
            )
        self.total_steps = int(total_steps)
        self.pct_start, self.div_factor, self.final_div_factor = (
            pct_start,
            div_factor,
            final_div_factor,
        )
        super().__init__(
            optimizer,
            param_name,
            begin=begin,
            end=begin + self.total_steps,
            last_step=last_step,
            by_epoch=by_epoch,
            verbose=verbose,
        )

    def value_at(self, peak: float, step: int) -> float:
        start = peak / self.div_factor
        final = start / self.final_div_factor
        warm = int(round(self.pct_start * self.total_steps))
        step = min(max(step, 0), self.total_steps - 1)
        if step < warm:
            frac = step / warm
            return start + (peak - start) * (1 - math.cos(math.pi * frac)) / 2
        span = max(self.total_steps - 1 - warm, 1)
        frac = (step - warm) / span
        return final + (peak - final) * (1 + math.cos(math.pi * frac)) / 2

    def _get_value(self):
        return [
            self.value_at(base, self.last_step - self.begin)
            for base in self.base_values
        ]


@PARAM_SCHEDULERS.register_module()
class OneCycleCosineLR(LRSchedulerMixin, OneCycleCosineParamScheduler):
    """:class:`OneCycleCosineParamScheduler` for the learning rate."""


@OPTIM_WRAPPERS_LOCAL.register_module()
class BF16OptimWrapper(OptimWrapper):
    """Mixed precision with bfloat16 autocast, on CPU or GPU (mmengine's
    ``AmpOptimWrapper`` needs a GPU).

    bf16 keeps fp32's exponent range, so no loss scaling is needed; weights,
    gradients and optimizer state stay fp32.  Where bf16 is not supported
    (older GPUs) it trains in fp32 and says so.  Config::

        optim_wrapper = dict(type='unirestore_mm.BF16OptimWrapper', optimizer=dict(type='AdamW', lr=1e-4))
    """  # noqa: E501

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._warned = False

    @contextmanager
    def optim_context(self, model: nn.Module):
        with super().optim_context(model):
            param = next(model.parameters(), None)
            device = param.device.type if param is not None else 'cpu'
            enabled = device == 'cpu' or (
                device == 'cuda' and torch.cuda.is_bf16_supported()
            )
            if not enabled and not self._warned:
                print_log(
                    f'bf16 autocast is not supported on {device}; training '
                    'in fp32',
                    logger='current',
                    level=30,
                )
                self._warned = True
            with torch.autocast(
                device_type=device, dtype=torch.bfloat16, enabled=enabled
            ):
                yield
