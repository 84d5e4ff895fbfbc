"""Checkpoints: trained parts only, weights_only-loadable, atomic; --resume
continues exactly (after SIGKILL: test_fault_injection.py)."""

import json
import os
import os.path as osp
import signal
import subprocess
import sys
import time

import pytest
import torch
from mmengine.runner import Runner

from unirestore_mm.engine import load_training_checkpoint, trained_keys

from . import killpoint  # noqa: F401  (registers the test hooks)
from .helpers import (
    CONFIGS,
    REPO,
    ir_dataset,
    load_cfg,
    tiny_runtime,
    write_task_data,
)

RECIPE = osp.join(
    CONFIGS, 'unirestore', 'stage1_unirestore-tiny_1xb4-20it_embedded.py'
)


def stage1_cfg(tmp_path, work, max_iters=6, interval=2, extra_hooks=()):
    data = write_task_data(str(tmp_path / 'data'))
    cfg = tiny_runtime(load_cfg(RECIPE), work, max_iters, interval)
    cfg.train_dataloader.dataset = ir_dataset(data)
    cfg.train_dataloader.batch_size = 2
    cfg.optim_wrapper.lr_scaling.batch_size = 2
    # 'tests' is taken by a package in site-packages (model-index installs
    # one): import the hooks as test_training.*
    cfg.custom_imports = dict(
        imports=['unirestore_mm', 'test_training.killpoint'],
        allow_failed_imports=False,
    )
    cfg.custom_hooks = [
        dict(type='RecordLossHook', path=str(work / 'losses.jsonl'))
    ] + list(extra_hooks)
    return cfg


def losses(work):
    with open(work / 'losses.jsonl') as f:
        return [json.loads(line) for line in f]


@pytest.fixture(scope='module')
def reference(tmp_path_factory):
    """An uninterrupted 6-iteration run, checkpoints every 2 iterations."""
    tmp = tmp_path_factory.mktemp('ref')
    Runner.from_cfg(stage1_cfg(tmp, tmp / 'full')).train()
    return tmp / 'full'


def test_resume_continues_exactly_and_checkpoints_hold_trained_parts_only(
    tmp_path, reference
):
    full = reference
    part = tmp_path / 'part'
    Runner.from_cfg(
        stage1_cfg(tmp_path, part, extra_hooks=[dict(type='StopAtHook', at=4)])
    ).train()
    assert [r['iter'] for r in losses(part)] == [1, 2, 3, 4]
    resumed = stage1_cfg(tmp_path, part)
    resumed.resume = True
    runner = Runner.from_cfg(resumed)
    runner.train()

    ref, got = losses(full), losses(part)
    assert [r['iter'] for r in got] == [1, 2, 3, 4, 5, 6]
    # every loss and lr, bit for bit: same data order, noise, timesteps,
    # optimizer, schedule
    assert got == ref

    # weights_only=True
    ckpt_full = load_training_checkpoint(str(full / 'iter_6.pth'))
    ckpt_part = load_training_checkpoint(str(part / 'iter_6.pth'))
    for k, v in ckpt_full['state_dict'].items():
        assert torch.equal(v, ckpt_part['state_dict'][k]), k
    # trained parts only: CFRM, Controller, skip adapters -- not the prior, the
    # TFAs or the prompts
    keys = set(ckpt_full['state_dict'])
    assert keys == set(trained_keys(runner.model))
    assert {k.split('.')[1] for k in keys} == {
        'cfrm',
        'controller',
        'skip_adapters',
    }
    assert not any('.prior.' in k or k.startswith('prior') for k in keys)
    assert ckpt_full['meta']['iter'] == 6 and len(ckpt_full['rng_state']) == 1
    # the safetensors sidecar and the exported restorer
    from safetensors.torch import load_file

    side = load_file(str(full / 'iter_6.safetensors'))
    assert set(side) == keys
    from unirestore_mm.models import UniRestore

    restorer = UniRestore(preset='tiny')
    restorer.load_weights(str(full / 'unirestore.safetensors'))
    assert torch.equal(
        restorer.cfrm.stages[0][0].conv1.weight,
        ckpt_full['state_dict']['restorer.cfrm.stages.0.0.conv1.weight'],
    )
    with open(full / 'last_checkpoint') as f:
        assert f.read() == str(full / 'iter_6.pth')
    # the resumed run went on pruning the files of the run it continued
    # (max_keep_ckpts=2)
    assert sorted(p for p in os.listdir(part) if p.endswith('.pth')) == [
        'iter_4.pth',
        'iter_6.pth',
    ]
    # max_keep_ckpts=2 in the recipe: iter_4 and iter_6 remain
    assert sorted(p for p in os.listdir(full) if p.startswith('iter_')) == [
        'iter_4.pth',
        'iter_4.safetensors',
        'iter_6.pth',
        'iter_6.safetensors',
    ]


def _train_cmd(cfg_path, work, resume=False):
    cmd = [
        sys.executable,
        osp.join(REPO, 'tools', 'train.py'),
        str(cfg_path),
        '--work-dir',
        str(work),
    ]
    return cmd + (['--resume'] if resume else [])


# SIGKILL inside the optimizer step, inside backward and inside the checkpoint
# write, each followed by tools/train.py --resume and a bit-for-bit comparison
# of the final model, optimizer and schedulers with an uninterrupted run:
# test_fault_injection.py.


def test_atomic_writes_survive_sigkill(tmp_path):
    """Readers never see a half-written checkpoint, and a writer killed
    mid-write leaves the last whole one."""
    path = tmp_path / 'ckpt.pth'
    script = (
        'import torch, sys\nfrom unirestore_mm.engine.checkpoint import '
        'atomic_torch_save\ni = 0\nwhile True:\n    '
        'atomic_torch_save({"i": i, "w": torch.full((1_000_000,), float(i))},'
        ' sys.argv[1])\n    i += 1\n'
    )
    env = dict(os.environ, PYTHONPATH=REPO)
    proc = subprocess.Popen(
        [sys.executable, '-c', script, str(path)], env=env, cwd=REPO
    )
    try:
        deadline = time.time() + 120
        while not path.exists():
            assert proc.poll() is None and time.time() < deadline, (
                'the writer did not start'
            )
            time.sleep(0.01)
        seen = set()
        for _ in range(40):  # read while it is being rewritten
            ckpt = torch.load(path, weights_only=True)
            assert bool((ckpt['w'] == ckpt['i']).all())
            seen.add(ckpt['i'])
        time.sleep(0.13)
        # most likely in the middle of a write
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
    assert len(seen) > 1  # it really was rewriting
    ckpt = torch.load(path, weights_only=True)
    assert ckpt['w'].numel() == 1_000_000 and bool(
        (ckpt['w'] == ckpt['i']).all()
    )


def test_torchrun_two_processes_gloo(tmp_path):
    """The same recipe under torchrun (2 CPU processes, gloo): every process's
    random state is saved."""
    work = tmp_path / 'dist'
    cfg = stage1_cfg(tmp_path, work, max_iters=2, interval=2)
    cfg.train_dataloader.batch_size = 1
    cfg.optim_wrapper.lr_scaling.batch_size = 1
    cfg_path = tmp_path / 'dist.py'
    cfg.dump(str(cfg_path))
    env = dict(
        os.environ, PYTHONPATH=os.pathsep.join([REPO, osp.join(REPO, 'tests')])
    )
    cmd = [
        sys.executable,
        '-m',
        'torch.distributed.run',
        '--nproc_per_node=2',
        '--master_port=29533',
        osp.join(REPO, 'tools', 'train.py'),
        str(cfg_path),
        '--work-dir',
        str(work),
        '--launcher',
        'pytorch',
    ]
    out = subprocess.run(
        cmd, cwd=REPO, env=env, capture_output=True, timeout=400
    )
    assert out.returncode == 0, out.stderr.decode()[-3000:]
    ckpt = load_training_checkpoint(str(work / 'iter_2.pth'))
    assert ckpt['meta']['world_size'] == 2 and len(ckpt['rng_state']) == 2
    # diff_rank_seed: each process its own noise stream
    assert not torch.equal(
        ckpt['rng_state'][0]['torch'], ckpt['rng_state'][1]['torch']
    )
    # lr scaled for the global batch: 1 per process x 2 processes
    assert ckpt['optimizer']['param_groups'][0]['initial_lr'] == pytest.approx(
        1e-4 * (2 / 64) ** 0.5
    )
