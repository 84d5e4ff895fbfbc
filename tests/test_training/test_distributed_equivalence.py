"""torchrun, 2 CPU processes (gloo): replicas stay identical, and 2 processes x
batch 1 = 1 process x batch 2.

Both runs go through ``tools/train.py`` (the 2-process one under
``python -m torch.distributed.run`` with ``--launcher pytorch``), on the tiny
stage-1 recipe.  ``killpoint.WeightTraceHook`` saves every process's trainable
parameters before training and after every iteration;
``killpoint.PerSampleNoiseHook`` makes the model's random draws a function of
(iteration, sample index), so that the same sample gets the same noise
whichever process and batch it lands in (otherwise the two set-ups draw
different numbers by design, see ``randomness.diff_rank_seed``).

Tolerances of 2x1 against 1x2 (the two runs do the same sums in a different
order: autograd sums the batch's two samples inside each kernel of one
backward, DDP all-reduces the gradients of two separate backwards and divides
by 2; float32 rounding, eps 1.2e-7, then differs by a few ulps per product
summed):

* gradients, every step, per parameter tensor:
  ``|g_2x1 - g_1x2| <= 1e-4 * max|g_1x2| + 1e-9``.  Measured worst relative
  difference 2.7e-5 (a sum over thousands of terms); the 1e-9 floor is for
  gradients that are 0 in exact arithmetic (the attention key biases: softmax
  ignores a shift common to all keys) and hold only rounding noise of ~1e-11.
  A wrong reduction (a sum instead of a mean, a rank's gradient missing, a
  sample on the wrong rank) is off by 50-100 %.
* weights, every step: the largest difference at most 10 % of the largest
  change one step makes, and the 99.9th percentile at most 1 %.  AdamW divides
  each gradient by its running magnitude, so an element whose gradient is ~0
  turns a rounding-level difference into a visible one: measured (3 steps, lr
  1.8e-5) largest difference 4.1e-7 (2.3 % of the 1.8e-5 step), 99.9th
  percentile 7.5e-9 (0.04 %).  The step itself must be at least half the
  learning rate, so the comparison cannot pass because nothing moved.
"""

import os
import os.path as osp
import socket
import subprocess
import sys

import pytest
import torch

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
ITERS = 3
# the recipe's AdamW lr at a global batch of 2 (sqrt scaling)
LR = 1e-4 * (2 / 64) ** 0.5
GRAD_RTOL, GRAD_ATOL = 1e-4, 1e-9
WEIGHT_MAX_FRAC, WEIGHT_Q999_FRAC = 0.1, 0.01


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def write_config(root, work, per_process_batch):
    cfg = tiny_runtime(load_cfg(RECIPE), work, ITERS, interval=1000)
    cfg.train_dataloader.dataset = ir_dataset(
        write_task_data(str(root / 'data'))
    )
    cfg.train_dataloader.batch_size = per_process_batch
    # the constructor multiplies by the world size
    cfg.optim_wrapper.lr_scaling.batch_size = per_process_batch
    cfg.randomness = dict(seed=0, diff_rank_seed=True, deterministic=True)
    # a constant learning rate: the recipe's one-cycle schedule anneals to ~0
    # at the last of a few iterations, where every step would be too small to
    # tell a right run from a wrong one
    cfg.param_scheduler = None
    cfg.custom_imports = dict(
        imports=['unirestore_mm', 'test_training.killpoint'],
        allow_failed_imports=False,
    )
    cfg.custom_hooks = [
        dict(type='WeightTraceHook', out_dir=str(work / 'weights')),
        dict(type='PerSampleNoiseHook'),
    ]
    path = root / f'{work.name}.py'
    cfg.dump(str(path))
    return path


def run(root, name, nproc):
    work = root / name
    cfg_path = write_config(root, work, per_process_batch=2 // nproc)
    env = dict(
        os.environ,
        PYTHONPATH=os.pathsep.join([REPO, osp.join(REPO, 'tests')]),
        OMP_NUM_THREADS='1',
        MKL_NUM_THREADS='1',
    )
    train = [
        osp.join(REPO, 'tools', 'train.py'),
        str(cfg_path),
        '--work-dir',
        str(work),
    ]
    if nproc == 1:
        cmd = [sys.executable] + train
    else:
        cmd = (
            [
                sys.executable,
                '-m',
                'torch.distributed.run',
                f'--nproc_per_node={nproc}',
                f'--master_port={free_port()}',
                '--master_addr=127.0.0.1',
            ]
            + train
            + ['--launcher', 'pytorch']
        )
    out = subprocess.run(
        cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=400
    )
    assert out.returncode == 0, (out.stdout + out.stderr)[-4000:]
    return work / 'weights'


def load(folder, rank, it, what='iter'):
    return torch.load(folder / f'rank{rank}_{what}{it}.pt', weights_only=True)


def flat_abs_diff(a, b):
    assert a and set(a) == set(b)
    return torch.cat(
        [(a[k].double() - b[k].double()).abs().flatten() for k in sorted(a)]
    )


@pytest.fixture(scope='module')
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp('dist_eq')
    return run(root, 'two_by_one', 2), run(root, 'one_by_two', 1)


def test_replicas_identical_after_every_step(runs):
    two, _ = runs
    for it in range(ITERS + 1):
        w0, w1 = load(two, 0, it), load(two, 1, it)
        assert w0 and set(w0) == set(w1)
        # the gradients each process applied: all-reduced, so the same on both
        if it:
            g0, g1 = load(two, 0, it, 'grad'), load(two, 1, it, 'grad')
            assert (
                g0
                and set(g0) == set(g1)
                and all(torch.equal(g0[k], g1[k]) for k in g0)
            ), it
        for k in w0:
            assert torch.equal(w0[k], w1[k]), (
                f'iteration {it}: {k} differs between rank 0 and rank 1'
            )


def test_two_processes_batch_one_equals_one_process_batch_two(runs):
    two, one = runs
    # the same initial weights
    assert flat_abs_diff(load(two, 0, 0), load(one, 0, 0)).max() == 0
    for it in range(1, ITERS + 1):
        # the reduced gradients each optimizer step applied
        g2, g1 = load(two, 0, it, 'grad'), load(one, 0, it, 'grad')
        assert g1 and set(g2) == set(g1)
        assert max(g.abs().max().item() for g in g1.values()) > 1e-3, (
            'no gradient to compare'
        )
        for k in g1:
            err = (g2[k] - g1[k]).abs().max().item()
            bound = GRAD_RTOL * g1[k].abs().max().item() + GRAD_ATOL
            assert err <= bound, (
                f'iteration {it}: gradient of {k} differs by {err:.3e} (> '
                f'{bound:.3e})'
            )
        # the weights after the step
        step = (
            flat_abs_diff(load(one, 0, it), load(one, 0, it - 1)).max().item()
        )
        diff = flat_abs_diff(load(two, 0, it), load(one, 0, it))
        worst, q999 = diff.max().item(), diff.quantile(0.999).item()
        print(
            f'iteration {it}: largest weight change {step:.3e}; 2x1 vs 1x2 '
            f'largest difference {worst:.3e}, 99.9th percentile {q999:.3e}'
        )
        assert step >= 0.5 * LR, (
            f'iteration {it}: the weights hardly moved ({step:.3e})'
        )
        assert worst <= WEIGHT_MAX_FRAC * step, (
            f'iteration {it}: 2x1 and 1x2 differ by {worst:.3e} (step '
            f'{step:.3e})'
        )
        assert q999 <= WEIGHT_Q999_FRAC * step, (
            f'iteration {it}: 99.9th percentile {q999:.3e} (step {step:.3e})'
        )
