"""bf16 mixed precision (CPU autocast), gradient accumulation and EMA, through
a save / resume cycle."""

import torch
from mmengine.runner import Runner

from unirestore_mm.engine import load_training_checkpoint, trained_keys

from . import killpoint  # noqa: F401
from .test_resume import losses, stage1_cfg


def cfg_with_extras(tmp_path, work, extra_hooks=()):
    cfg = stage1_cfg(
        tmp_path, work, max_iters=4, interval=2, extra_hooks=extra_hooks
    )
    cfg.optim_wrapper.type = 'unirestore_mm.BF16OptimWrapper'
    cfg.optim_wrapper.accumulative_counts = 2
    cfg.custom_hooks.append(
        dict(type='EMAHook', momentum=0.01, priority='ABOVE_NORMAL')
    )
    return cfg


def test_bf16_accumulation_and_ema_survive_resume(tmp_path):
    work = tmp_path / 'work'
    seen = {}

    runner = Runner.from_cfg(
        cfg_with_extras(tmp_path, work, [dict(type='StopAtHook', at=2)])
    )
    model = runner.model
    # the forward runs under bf16 autocast
    conv = model.restorer.cfrm.stages[0][0].conv1
    handle = conv.register_forward_hook(
        lambda m, i, o: seen.setdefault('dtype', o.dtype) and None
    )
    runner.train()
    handle.remove()
    assert seen['dtype'] == torch.bfloat16
    assert all(p.dtype == torch.float32 for p in model.parameters())
    # sqrt scaling counts the accumulated batch: 2 x 2
    assert (
        runner.optim_wrapper.optimizer.param_groups[0]['initial_lr']
        == 1e-4 * (4 / 64) ** 0.5
    )

    ckpt = load_training_checkpoint(str(work / 'iter_2.pth'))
    keys = set(trained_keys(model))
    ema = ckpt['ema_state_dict']
    # EMA of the trained parts only
    assert set(ema) == {'steps'} | {'module.' + k for k in keys}
    resumed = cfg_with_extras(tmp_path, work)
    resumed.resume = True
    r2 = Runner.from_cfg(resumed)
    r2.train()
    assert [x['iter'] for x in losses(work)] == [1, 2, 3, 4]
    final = load_training_checkpoint(str(work / 'iter_4.pth'))
    assert int(final['ema_state_dict']['steps']) == 4
    assert all(torch.isfinite(v).all() for v in final['state_dict'].values())


def test_trained_parts_ema_resumes_exactly_and_is_exported(tmp_path):
    from safetensors.torch import load_file

    def cfg(work, extra=()):
        c = stage1_cfg(
            tmp_path, work, max_iters=4, interval=2, extra_hooks=extra
        )
        c.custom_hooks.append(
            dict(type='unirestore_mm.TrainedPartsEMAHook', momentum=0.5)
        )
        return c

    Runner.from_cfg(cfg(tmp_path / 'full')).train()
    Runner.from_cfg(
        cfg(tmp_path / 'part', [dict(type='StopAtHook', at=2)])
    ).train()
    resumed = cfg(tmp_path / 'part')
    resumed.resume = True
    runner = Runner.from_cfg(resumed)
    runner.train()
    full = load_training_checkpoint(str(tmp_path / 'full' / 'iter_4.pth'))[
        'trained_ema'
    ]
    part = load_training_checkpoint(str(tmp_path / 'part' / 'iter_4.pth'))[
        'trained_ema'
    ]
    assert full['steps'] == part['steps'] == 4
    # trainable parameters only
    assert set(full['params']) == set(trained_keys(runner.model))
    for k, v in full['params'].items():
        assert torch.equal(v, part['params'][k]), k
    exported = load_file(str(tmp_path / 'full' / 'unirestore.safetensors'))
    for k, v in full['params'].items():
        # the model ends with the averaged weights
        assert torch.equal(exported[k[len('restorer.') :]], v), k
