"""SIGKILL where it hurts, then ``tools/train.py --resume``: the result is bit
for bit the uninterrupted run's.

Each case runs the tiny stage-1 recipe (6 iterations, a checkpoint every 2) as
a subprocess of ``tools/train.py`` and kills it with a real ``SIGKILL`` from
inside (``killpoint.FaultInjectionHook``, chosen by ``$UNIRESTORE_KILL_AT``):

* ``optimizer_step@5``: half of the parameters stepped in memory, then killed
  -- the half-applied step must not reach disk;
* ``backward@5``: killed with half of the parameter gradients computed;
* ``checkpoint_write@6:iter_6.pth``: killed with half of the checkpoint's
  temporary file on disk, before the rename;
* ``checkpoint_write@6:last_checkpoint``: ``iter_6.pth`` complete, killed half
  way through updating the pointer ``--resume`` reads;
* ``checkpoint_write@6:unirestore.safetensors``: all iterations trained and
  checkpointed, killed while exporting the restorer at the end (``--resume``
  then trains nothing and exports it).

Right after the kill the last complete checkpoint is intact, loadable
(``weights_only``) and equal to the uninterrupted run's file of the same
iteration, and no partial checkpoint stands under a checkpoint's name.  After
``--resume`` runs to the end, the whole model state dict (frozen prior
included), every optimizer state tensor and step count, the parameter
schedulers' state, the EMA of the trained parts (``TrainedPartsEMAHook``, the
recipes' optional EMA), the exported restorer and every logged loss and
learning rate equal the uninterrupted run's (``torch.equal`` / ``==``), and no
temporary or partial file is left in the work dir.
"""

import json
import os
import os.path as osp
import signal
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file

from unirestore_mm.engine import load_training_checkpoint

from .helpers import (
    CONFIGS,
    REPO,
    ir_dataset,
    load_cfg,
    tiny_runtime,
    write_task_data,
)
from .killpoint import KILL_ENV, MARKER_ENV

RECIPE = osp.join(
    CONFIGS, 'unirestore', 'stage1_unirestore-tiny_1xb4-20it_embedded.py'
)
MAX_ITERS, INTERVAL = 6, 2
TIMEOUT = 300


def write_config(root, work):
    """The recipe, shrunk: 6 iterations of batch 2 on 8 tiny images,
    deterministic, checkpoints every 2."""
    cfg = tiny_runtime(load_cfg(RECIPE), work, MAX_ITERS, INTERVAL)
    cfg.train_dataloader.dataset = ir_dataset(
        write_task_data(str(root / 'data'))
    )
    cfg.train_dataloader.batch_size = 2
    cfg.optim_wrapper.lr_scaling.batch_size = 2
    cfg.randomness = dict(seed=0, diff_rank_seed=True, deterministic=True)
    # the recipe's one-cycle schedule over 4x the run: the learning rate is
    # still high at the kills (the recipe's own schedule, compressed into 6
    # iterations, is down to 1e-10 by iteration 5, where a lost or doubled step
    # would hardly move a weight) and changes every step (a scheduler not
    # restored shows)
    cfg.param_scheduler = [
        dict(
            type='unirestore_mm.OneCycleCosineLR',
            pct_start=0.1,
            div_factor=10.0,
            by_epoch=False,
            total_steps=4 * MAX_ITERS,
        )
    ]
    # 'tests' is taken by a package in site-packages: the hooks are imported as
    # test_training.* (PYTHONPATH)
    cfg.custom_imports = dict(
        imports=['unirestore_mm', 'test_training.killpoint'],
        allow_failed_imports=False,
    )
    cfg.custom_hooks = [
        dict(type='RecordLossHook', path=str(work / 'losses.jsonl')),
        dict(type='FaultInjectionHook'),
        # the optional EMA of the trained parts (stage_runtime.py), with a
        # momentum that shows
        dict(type='unirestore_mm.TrainedPartsEMAHook', momentum=0.5),
        dict(type='DumpFinalStateHook', path=str(work / 'final_state.pt')),
    ]
    path = root / f'{work.name}.py'
    cfg.dump(str(path))
    return path


def train(cfg_path, work, resume=False, kill=None, marker=None):
    env = dict(
        os.environ,
        PYTHONPATH=os.pathsep.join([REPO, osp.join(REPO, 'tests')]),
        OMP_NUM_THREADS='1',
        MKL_NUM_THREADS='1',
    )
    env.pop(KILL_ENV, None)
    if kill:
        env[KILL_ENV], env[MARKER_ENV] = kill, str(marker)
    cmd = [
        sys.executable,
        osp.join(REPO, 'tools', 'train.py'),
        str(cfg_path),
        '--work-dir',
        str(work),
    ]
    return subprocess.run(
        cmd + (['--resume'] if resume else []),
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )


def losses(work):
    with open(work / 'losses.jsonl') as f:
        return [json.loads(line) for line in f]


def assert_same(a, b, where='state'):
    """``a`` and ``b`` equal bit for bit: tensors by ``torch.equal`` (dtype and
    shape too), the rest by ``==``."""
    if isinstance(a, torch.Tensor):
        assert (
            isinstance(b, torch.Tensor)
            and a.dtype == b.dtype
            and a.shape == b.shape
        ), where
        assert torch.equal(a, b), (
            f'{where}: max difference '
            f'{(a.double() - b.double()).abs().max().item()}'
        )
    elif isinstance(a, dict):
        assert isinstance(b, dict) and set(a) == set(b), (
            where,
            set(a) ^ set(b),
        )
        for k in a:
            assert_same(a[k], b[k], f'{where}.{k}')
    elif isinstance(a, (list, tuple)):
        assert isinstance(b, (list, tuple)) and len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same(x, y, f'{where}[{i}]')
    else:
        assert a == b, (where, a, b)


def assert_same_checkpoint(path, ref_path):
    """What ``--resume`` restores from two checkpoint files is the same (not
    the save time, not the timers)."""
    got, ref = (
        load_training_checkpoint(str(path)),
        load_training_checkpoint(str(ref_path)),
    )
    assert 'trained_ema' in ref
    for key in (
        'state_dict',
        'optimizer',
        'param_schedulers',
        'rng_state',
        'trained_ema',
    ):
        assert_same(got[key], ref[key], f'{osp.basename(path)}:{key}')
    assert got['meta']['iter'] == ref['meta']['iter']


def assert_every_file_whole(work):
    """No temporary file anywhere under the work dir; every checkpoint, sidecar
    and pointer reads whole."""
    for folder, _, files in os.walk(work):
        leftovers = [
            f for f in files if f.endswith('.tmp') or f.startswith('.')
        ]
        assert not leftovers, (
            f'partial/temporary files left in {folder}: {leftovers}'
        )
    names = os.listdir(work)
    for name in names:
        if name.endswith('.pth'):
            load_training_checkpoint(str(work / name))
        elif name.endswith('.safetensors'):
            load_file(str(work / name))
    pointed = (work / 'last_checkpoint').read_text()
    assert osp.isfile(pointed), (
        f'last_checkpoint names {pointed!r}, which is not a file'
    )
    return pointed


@pytest.fixture(scope='module')
def reference(tmp_path_factory):
    """The uninterrupted run, also through tools/train.py."""
    root = tmp_path_factory.mktemp('fault')
    work = root / 'reference'
    out = train(write_config(root, work), work)
    assert out.returncode == 0, out.stderr[-3000:]
    assert [r['iter'] for r in losses(work)] == list(range(1, MAX_ITERS + 1))
    return root, work


# (kill spec, iterations trained before the kill, checkpoint the resume starts
# from)
CASES = [
    ('optimizer_step@5', 4, 4),
    ('backward@5', 4, 4),
    ('checkpoint_write@6:iter_6.pth', 5, 4),
    ('checkpoint_write@6:last_checkpoint', 5, 4),
    # training finished and checkpointed, killed while exporting the restorer:
    # --resume only re-exports
    ('checkpoint_write@6:unirestore.safetensors', 6, 6),
]


@pytest.mark.parametrize(
    'spec,trained,resume_from',
    CASES,
    ids=[c[0].replace(':', '-') for c in CASES],
)
def test_sigkill_then_resume_equals_uninterrupted_run(
    reference, spec, trained, resume_from
):
    root, ref = reference
    work = root / spec.replace('@', '_').replace(':', '_')
    marker = root / f'{work.name}.marker'
    cfg_path = write_config(root, work)

    out = train(cfg_path, work, kill=spec, marker=marker)
    assert out.returncode == -signal.SIGKILL, (
        out.returncode,
        out.stderr[-3000:],
    )
    where = marker.read_text()  # the victim wrote where it died
    point = spec.split('@')[0]
    assert where.startswith(point), where
    if point == 'optimizer_step':  # a half-applied step really was in memory
        changed, total = map(
            int, where.split(': ')[1].split(' parameters')[0].split(' of ')
        )
        assert 0 < changed < total, where
    elif point == 'backward':
        done, total = map(
            int, where.split(': ')[1].split(' parameter')[0].split(' of ')
        )
        assert 0 < done < total, where
    # part of the file, under its temporary name (or its own, for a writer that
    # is not atomic)
    else:
        assert (
            spec.split(':')[1] in where
            and int(where.split(': ')[1].split(' bytes')[0]) > 0
        ), where

    # right after the kill: the previous checkpoint is whole, loadable and what
    # the uninterrupted run saved
    assert [r['iter'] for r in losses(work)] == list(range(1, trained + 1))
    assert losses(work) == losses(ref)[:trained]
    pointed = (work / 'last_checkpoint').read_text()
    assert pointed == str(work / f'iter_{resume_from}.pth'), pointed
    assert_same_checkpoint(pointed, ref / f'iter_{resume_from}.pth')
    # nothing partial stands under a name the package reads
    for name in os.listdir(work):
        try:
            if name.endswith('.pth'):
                load_training_checkpoint(str(work / name))
            elif name.endswith('.safetensors'):
                load_file(str(work / name))
        # whatever a truncated file raises
        except Exception as e:  # noqa: BLE001
            pytest.fail(
                f'{name} cannot be read after the kill: {type(e).__name__}: '
                f'{e}'
            )

    out = train(cfg_path, work, resume=True)
    assert out.returncode == 0, out.stderr[-3000:]
    got = losses(work)
    assert got[:trained] == losses(ref)[:trained]
    # every loss and lr, bit for bit
    assert got[trained:] == losses(ref)[resume_from:], (got, losses(ref))

    # the final in-memory state: whole model (frozen parts too), optimizer
    # (every state tensor, step counts), parameter schedulers
    # the test's own files
    final = torch.load(work / 'final_state.pt', weights_only=False)
    ref_final = torch.load(ref / 'final_state.pt', weights_only=False)
    assert final['iter'] == ref_final['iter'] == MAX_ITERS
    assert final['optimizer']['state'], 'no optimizer state to compare'
    assert final['TrainedPartsEMAHook']['steps'] == MAX_ITERS, (
        'no EMA state to compare'
    )
    assert_same(final, ref_final, 'final')
    # and on disk: the last checkpoint equals the uninterrupted run's; nothing
    # partial or temporary is left
    assert assert_every_file_whole(work) == str(work / f'iter_{MAX_ITERS}.pth')
    assert_same_checkpoint(
        work / f'iter_{MAX_ITERS}.pth', ref / f'iter_{MAX_ITERS}.pth'
    )
    # the sidecar, the exported restorer
    for name in (f'iter_{MAX_ITERS}.safetensors', 'unirestore.safetensors'):
        assert_same(
            load_file(str(work / name)), load_file(str(ref / name)), name
        )
    assert sorted(p for p in os.listdir(work) if p.endswith('.pth')) == sorted(
        p for p in os.listdir(ref) if p.endswith('.pth')
    )


def test_stale_temporaries_of_dead_writers_only_are_removed(tmp_path):
    """What the resumed run above relies on: a killed writer's temporary file
    goes, a live writer's stays."""
    from unirestore_mm.engine.checkpoint import remove_stale_temporaries

    dead = subprocess.run(
        [sys.executable, '-c', 'import os; print(os.getpid())'],
        capture_output=True,
        text=True,
    )
    dead_pid = int(dead.stdout)
    live = subprocess.Popen(
        [sys.executable, '-c', 'import time; time.sleep(60)']
    )
    try:
        # killed while writing (new writer's name)
        names = {
            f'.iter_6.pth.{dead_pid}.0a1b2c3d.tmp': 'removed',
            # the earlier writer's name
            f'.last_checkpoint.{dead_pid}.tmp': 'removed',
            # this process has not written yet
            f'.iter_6.pth.{os.getpid()}.12345678.tmp': 'removed',
            # another run writing right now
            f'.iter_6.pth.{live.pid}.0a1b2c3d.tmp': 'kept',
            # not a file this hook writes
            f'.result.png.{dead_pid}.0a1b2c3d.tmp': 'kept',
            'iter_6.pth': 'kept',
            'notes.tmp': 'kept',
        }
        for name in names:
            (tmp_path / name).write_bytes(b'partial')
        is_ours = lambda name: name == 'last_checkpoint' or name.startswith(  # noqa: E731
            'iter_'
        )
        removed = remove_stale_temporaries(str(tmp_path), is_ours)
    finally:
        live.kill()
        live.wait()
    assert sorted(removed) == sorted(
        str(tmp_path / n) for n, what in names.items() if what == 'removed'
    )
    assert sorted(os.listdir(tmp_path)) == sorted(
        n for n, what in names.items() if what == 'kept'
    )
