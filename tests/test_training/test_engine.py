"""The paper's optimisation pieces, weights_only-safe values, trained-key
selection, the freeze hook."""

import math

import numpy as np
import pytest
import torch
from mmengine.logging import HistoryBuffer
from torch import nn

from unirestore_mm.engine import (
    OneCycleCosineLR,
    SqrtScaledOptimWrapperConstructor,
    sqrt_scaled_lr,
    trained_keys,
)
from unirestore_mm.engine.checkpoint import restore_history_buffers, to_plain


def test_sqrt_lr_scaling_matches_the_paper():
    assert sqrt_scaled_lr(1e-4, 64) == pytest.approx(1e-4)
    # 8 GPUs x 6
    assert sqrt_scaled_lr(1e-4, 48) == pytest.approx(1e-4 * math.sqrt(0.75))
    with pytest.raises(ValueError):
        sqrt_scaled_lr(1e-4, 0)


def two_part_model():
    m = nn.Module()
    m.restorer = nn.Linear(4, 4)
    m.recognizer = nn.Sequential(nn.Linear(4, 4), nn.BatchNorm1d(4))
    m.recognizer.requires_grad_(False)
    return m


def test_constructor_scales_lr_keeps_only_trainable_params_and_per_part_lrs():
    m = two_part_model()
    ctor = SqrtScaledOptimWrapperConstructor(
        dict(
            optimizer=dict(type='AdamW', lr=1e-4, weight_decay=0.01),
            accumulative_counts=2,
            lr_scaling=dict(batch_size=8, base_batch_size=64),
        )
    )
    wrapper = ctor(m)
    groups = wrapper.optimizer.param_groups
    params = [p for g in groups for p in g['params']]
    # the frozen recognizer is not there
    assert len(params) == 2 and all(p.requires_grad for p in params)
    # batch 8 x accumulation 2
    assert groups[0]['lr'] == pytest.approx(1e-4 * math.sqrt(16 / 64))
    # joint training: the recognizer learns too, at its own rate
    m.recognizer.requires_grad_(True)
    ctor = SqrtScaledOptimWrapperConstructor(
        dict(
            optimizer=dict(type='AdamW', lr=1e-4),
            lr_scaling=dict(batch_size=64),
        ),
        paramwise_cfg=dict(custom_keys={'recognizer': dict(lr_mult=0.1)}),
    )
    lrs = {id(g['params'][0]): g['lr'] for g in ctor(m).optimizer.param_groups}
    assert lrs[id(m.restorer.weight)] == pytest.approx(1e-4)
    assert lrs[id(m.recognizer[0].weight)] == pytest.approx(1e-5)
    m.requires_grad_(False)
    with pytest.raises(ValueError, match='no trainable parameters'):
        SqrtScaledOptimWrapperConstructor(
            dict(optimizer=dict(type='AdamW', lr=1e-4))
        )(m)


def test_one_cycle_cosine_shape():
    p = nn.Parameter(torch.zeros(1))
    opt = torch.optim.AdamW([p], lr=1e-3)
    sched = OneCycleCosineLR(
        opt,
        total_steps=100,
        pct_start=0.1,
        div_factor=10.0,
        final_div_factor=1e4,
    )
    lrs = []
    for _ in range(100):
        lrs.append(opt.param_groups[0]['lr'])
        opt.step()
        sched.step()
    assert lrs[0] == pytest.approx(1e-4)  # peak / div_factor
    # 10 % warm-up
    assert max(lrs) == pytest.approx(1e-3) and int(np.argmax(lrs)) == 10
    assert all(a <= b for a, b in zip(lrs[:10], lrs[1:11]))  # rising
    assert all(a >= b for a, b in zip(lrs[10:], lrs[11:]))  # then falling
    assert lrs[-1] == pytest.approx(1e-8)  # peak / 10 / 1e4
    # values depend on the step alone: a scheduler restored from its state
    # continues identically
    opt2 = torch.optim.AdamW([nn.Parameter(torch.zeros(1))], lr=1e-3)
    s2 = OneCycleCosineLR(opt2, total_steps=100)
    s2.load_state_dict(sched.state_dict())
    assert s2.value_at(1e-3, 37) == sched.value_at(1e-3, 37)


def test_to_plain_makes_weights_only_loadable(tmp_path):
    hb = HistoryBuffer([1.0, 2.0], [1, 1], max_length=10)
    obj = dict(
        a=np.float64(1.5),
        b=np.arange(3),
        c=hb,
        d=(np.int64(2), 'x'),
        e=object(),
        f=torch.ones(2),
    )
    plain = to_plain(obj)
    assert (
        'e' not in plain
        and isinstance(plain['a'], float)
        and type(plain['a']) is float
    )
    torch.save(plain, tmp_path / 'x.pth')
    back = torch.load(tmp_path / 'x.pth', weights_only=True)
    hb2 = restore_history_buffers(back)['c']
    assert isinstance(hb2, HistoryBuffer) and hb2.mean() == hb.mean()


def test_trained_keys_include_buffers_of_trained_modules_only():
    m = two_part_model()
    assert trained_keys(m) == ['restorer.weight', 'restorer.bias']
    m.recognizer.requires_grad_(True)
    keys = trained_keys(m)
    assert (
        'recognizer.1.running_mean' in keys
        and 'recognizer.1.num_batches_tracked' in keys
    )


def test_freeze_hook_freezes_keeps_eval_and_detects_changes():
    from types import SimpleNamespace

    from unirestore_mm.engine import FreezeHook

    m = two_part_model()
    m.recognizer.requires_grad_(True)
    runner = SimpleNamespace(model=m, iter=0)
    hook = FreezeHook(['recognizer'], check_interval=1)
    hook.before_run(runner)
    assert not any(p.requires_grad for p in m.recognizer.parameters())
    m.train()
    hook.before_train_iter(runner, 0)
    assert not m.recognizer.training and m.restorer.training
    hook.after_train_iter(runner, 0)  # unchanged: fine
    with torch.no_grad():
        m.recognizer[0].weight.add_(1)
    with pytest.raises(
        RuntimeError, match='frozen recognizer.0.weight changed'
    ):
        hook.after_train_iter(runner, 0)
    with pytest.raises(ValueError, match="no module 'recognizer.9'"):
        FreezeHook(['recognizer.9']).before_run(runner)
