"""tools/train.py, tools/test.py, tools/dist_train.sh (torchrun, gloo) and
tools/restore.py as subprocesses."""

import os
import os.path as osp
import re
import shutil
import subprocess
import sys

import cv2
import pytest
from integration_utils import REPO, subprocess_env, write_images

CONFIG = osp.join(
    REPO,
    'configs',
    'unirestore',
    'stage1_unirestore-tiny_1xb16-1k_embedded.py',
)


def small_data_config(tmp_path, base=CONFIG):
    """The shipped config on a few images written here (no embedded set
    needed), 2 iterations."""
    write_images(str(tmp_path / 'data' / 'gt'), n=4)
    cfg = tmp_path / 'cfg.py'
    cfg.write_text(f"""
_base_ = [{base!r}]
_ds = dict(_delete_=True, type='unirestore_mm.PairedImageDataset', data_root={str(tmp_path / 'data')!r},
           data_prefix=dict(img_path=None, gt_path='gt'),
           pipeline=[dict(type='unirestore_mm.LoadPairedImages'),
                     dict(type='unirestore_mm.RandomDegradation', resize_short_side=None, seed=0),
                     dict(type='unirestore_mm.PackRestorationInputs', sample_type='base')])
train_dataloader = dict(batch_size=2, num_workers=0, persistent_workers=False, dataset=_ds)
val_dataloader = dict(batch_size=2, num_workers=0, persistent_workers=False, dataset=_ds)
test_dataloader = val_dataloader
train_cfg = dict(max_iters=2, val_interval=1000)
default_hooks = dict(checkpoint=dict(interval=2), logger=dict(interval=1))
""")  # noqa: E501
    return str(cfg)


def run(cmd, timeout=300):
    proc = subprocess.run(
        cmd,
        cwd=REPO,
        env=subprocess_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert proc.returncode == 0, (
        f'{cmd} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}'
    )
    return proc.stdout + proc.stderr


def _scores_in_process(cfg_path, ckpt):
    import torch
    from mmengine.config import Config
    from mmengine.dataset import pseudo_collate
    from mmengine.registry import DefaultScope
    from mmengine.runner.utils import set_random_seed

    from unirestore_mm.evaluation import psnr, ssim
    from unirestore_mm.registry import DATASETS, MODELS

    cfg = Config.fromfile(cfg_path)
    # the parts stage 1 does not train (TFAs, prompts) are not in its
    # checkpoint: they keep the initialisation that the Runner's seeding gives
    # them, so seed as the Runner does before building the model
    set_random_seed(**cfg.randomness)
    with DefaultScope.overwrite_default_scope('unirestore_mm'):
        model = MODELS.build(cfg.model).eval()
        dataset = DATASETS.build(cfg.test_dataloader.dataset)
    state = torch.load(str(ckpt), map_location='cpu', weights_only=True)[
        'state_dict'
    ]
    missing, unexpected = model.load_state_dict(state, strict=False)
    assert not unexpected, unexpected
    assert {k.split('.')[1] for k in state} >= {
        'cfrm',
        'controller',
        'skip_adapters',
    }, sorted(state)[:5]
    bs = cfg.test_dataloader.batch_size
    scores = []
    with torch.no_grad():
        for start in range(0, len(dataset), bs):
            batch = pseudo_collate(
                [
                    dataset[i]
                    for i in range(start, min(start + bs, len(dataset)))
                ]
            )
            for s in model.test_step(batch):
                scores.append(
                    (
                        float(psnr(s.pred_img, s.gt_img)[0]),
                        float(ssim(s.pred_img, s.gt_img)[0]),
                    )
                )
    assert len(scores) == len(dataset) == 4
    return sum(p for p, _ in scores) / len(scores), sum(
        q for _, q in scores
    ) / len(scores)


def test_train_then_test(tmp_path):
    cfg = small_data_config(tmp_path)
    work = tmp_path / 'work'
    run([sys.executable, 'tools/train.py', cfg, '--work-dir', str(work)])
    ckpt = work / 'iter_2.pth'
    assert ckpt.is_file()
    out = run(
        [
            sys.executable,
            'tools/test.py',
            cfg,
            str(ckpt),
            '--work-dir',
            str(work),
        ]
    )
    m = re.search(r'PSNR: ([0-9.]+)\s+SSIM: ([0-9.]+)', out)
    assert m, out[-2000:]
    # the scores of that checkpoint, computed here: the config's test set in
    # its batches, the model with the checkpoint's weights, the metric
    # functions averaged over images (the log prints 4 decimals)
    ref_psnr, ref_ssim = _scores_in_process(cfg, ckpt)
    assert float(m.group(1)) == pytest.approx(ref_psnr, abs=6e-5) and float(
        m.group(2)
    ) == pytest.approx(ref_ssim, abs=6e-5)
    # resume from the latest checkpoint and go one iteration further
    out = run(
        [
            sys.executable,
            'tools/train.py',
            cfg,
            '--work-dir',
            str(work),
            '--resume',
            '--cfg-options',
            'train_cfg.max_iters=3',
            'default_hooks.checkpoint.interval=3',
        ]
    )
    # it went on from iteration 2 (not from scratch): MMEngine's resume line,
    # and only iteration 3 was trained
    assert re.search(r'resumed epoch: \d+, iter: 2\b', out), out[-3000:]
    assert 'Iter(train) [3/3]' in out and 'Iter(train) [1/3]' not in out
    assert (work / 'iter_3.pth').is_file()


RANK_PROBE = """
import json, os
import torch
from mmengine.dist import get_dist_info
from mmengine.hooks import Hook
from mmengine.registry import HOOKS


@HOOKS.register_module()
class RankProbeHook(Hook):
    \"\"\"After every training iteration, each process appends what it did to probe_rank<r>.jsonl.\"\"\"

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        rank, world = get_dist_info()
        model = getattr(runner.model, 'module', runner.model)
        params = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
        rec = dict(rank=rank, world=world, iter=runner.iter,
                   backend=torch.distributed.get_backend() if torch.distributed.is_initialized() else None,
                   ddp=runner.model is not model,
                   samples=sorted(str(s.metainfo.get('gt_path') or s.metainfo.get('img_path') or s.metainfo.get('sample_idx'))
                                  for s in data_batch['data_samples']),
                   names=[n for n, _ in params],
                   checksum=float(sum(p.detach().double().sum() for _, p in params)))
        with open(os.path.join(runner.work_dir, f'probe_rank{rank}.jsonl'), 'a') as f:
            f.write(json.dumps(rec) + '\\n')
"""  # noqa: E501


def _free_port() -> int:
    """A port free right now (a fixed one collides with another run of this
    test on the same machine)."""
    import socket

    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


@pytest.mark.skipif(shutil.which('bash') is None, reason='needs bash')
def test_torchrun_two_cpu_processes(tmp_path):
    """tools/dist_train.sh with 2 CPU processes: both ranks train (gloo, DDP)
    on different samples, their weights stay identical after every step, and
    the checkpoint holds those weights at iteration 2."""
    import json

    import torch

    (tmp_path / 'rank_probe.py').write_text(RANK_PROBE)
    cfg = small_data_config(tmp_path)
    with open(cfg, 'a') as f:
        f.write(
            "custom_imports = dict(imports=['rank_probe'], "
            "allow_failed_imports=False)\ncustom_hooks = "
            "[dict(type='RankProbeHook')]\n"
        )
    work = tmp_path / 'work'
    env = subprocess_env()
    env.update(
        PORT=str(_free_port()),
        PYTHONPATH=str(tmp_path) + os.pathsep + env['PYTHONPATH'],
    )
    proc = subprocess.run(
        ['bash', 'tools/dist_train.sh', cfg, '2', '--work-dir', str(work)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-5000:]
    records = {}
    for rank in (0, 1):
        path = work / f'probe_rank{rank}.jsonl'
        assert path.is_file(), f'rank {rank} wrote no probe: {out[-3000:]}'
        records[rank] = [
            json.loads(line) for line in path.read_text().splitlines()
        ]
    for rank, recs in records.items():
        assert [r['iter'] for r in recs] == [0, 1], recs
        assert all(
            r['rank'] == rank
            and r['world'] == 2
            and r['backend'] == 'gloo'
            and r['ddp']
            for r in recs
        )
        # batch 2 per process
        assert all(
            len(r['samples']) == 2 and 'None' not in r['samples'] for r in recs
        )
    for r0, r1 in zip(records[0], records[1]):
        # DDP: same weights each step
        assert r0['checksum'] == r1['checksum'], (
            r0['checksum'],
            r1['checksum'],
        )
        # a sampler split
        assert not set(r0['samples']) & set(r1['samples']), (
            r0['samples'],
            r1['samples'],
        )
    # the weights moved
    assert records[0][0]['checksum'] != records[0][1]['checksum']
    ckpt = torch.load(
        work / 'iter_2.pth', map_location='cpu', weights_only=False
    )
    assert ckpt['meta']['iter'] == 2
    state = ckpt['state_dict']
    saved = float(
        sum(state[n].double().sum() for n in records[0][-1]['names'])
    )
    assert saved == pytest.approx(
        records[0][-1]['checksum'], rel=1e-12, abs=1e-9
    )


def test_restore_tool(tmp_path):
    from unirestore_mm.models import UniRestore

    restorer = str(tmp_path / 'restorer')
    # weights given by the user: not refused
    UniRestore(preset='tiny').save_pretrained(restorer)
    write_images(str(tmp_path / 'in' / 'sub'), n=2, size=(20, 36))
    write_images(str(tmp_path / 'single'), n=1, size=(16, 16))
    out = run(
        [
            sys.executable,
            'tools/restore.py',
            str(tmp_path / 'in'),
            str(tmp_path / 'single' / '000.png'),
            '--out',
            str(tmp_path / 'out'),
            '--task',
            'seg',
            '--steps',
            '2',
            '--suffix',
            '_r',
            '--restorer',
            restorer,
            '--batch-size',
            '2',
        ]
    )
    assert 'restored 3 image(s)' in out
    img = cv2.imread(str(tmp_path / 'out' / 'sub' / '001_r.png'))
    assert img.shape == (20, 36, 3)
    assert (tmp_path / 'out' / '000_r.png').is_file()
    bad = subprocess.run(
        [
            sys.executable,
            'tools/restore.py',
            str(tmp_path / 'missing'),
            '--out',
            str(tmp_path / 'o2'),
            '--restorer',
            restorer,
        ],
        cwd=REPO,
        env=subprocess_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert bad.returncode == 2 and 'no such file or folder' in bad.stderr
    clash = subprocess.run(
        [
            sys.executable,
            'tools/restore.py',
            str(tmp_path / 'in' / 'sub'),
            str(tmp_path / 'single'),
            '--out',
            str(tmp_path / 'o3'),
            '--restorer',
            restorer,
        ],
        cwd=REPO,
        env=subprocess_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert clash.returncode == 2 and 'would both be written' in clash.stderr


def _embedded_sources_missing():
    """Why the embedded set cannot be built here (scikit-image or Debian's
    Fashion-MNIST files absent), or ``None``.  Only those two conditions skip:
    any other error of the loader (a corrupt file, a broken import) fails the
    test."""
    import importlib.util

    if importlib.util.find_spec('skimage') is None:
        return 'scikit-image missing (bash tools/install.sh installs it)'
    from unirestore_mm.datasets import load_fashion_mnist

    try:
        load_fashion_mnist('test')
    # the loader's "not installed" error; nothing else is a reason to skip
    except FileNotFoundError as err:
        return f'Fashion-MNIST missing: {err}'
    return None


@pytest.fixture
def embedded_sources():
    missing = _embedded_sources_missing()
    if missing:
        pytest.skip(missing)


@pytest.mark.usefixtures('embedded_sources')
def test_shipped_config_on_the_embedded_set(tmp_path):
    """The shipped config as is (the embedded set, built on first use): 2
    iterations, then tools/test.py."""
    work = tmp_path / 'work'
    run(
        [
            sys.executable,
            'tools/train.py',
            CONFIG,
            '--work-dir',
            str(work),
            '--cfg-options',
            'train_cfg.max_iters=2',
            'train_cfg.val_begin=1000',
            'default_hooks.checkpoint.interval=2',
            'train_dataloader.num_workers=0',
            'train_dataloader.persistent_workers=False',
        ],
        timeout=600,
    )
    assert (work / 'iter_2.pth').is_file()
    out = run(
        [
            sys.executable,
            'tools/test.py',
            CONFIG,
            str(work / 'iter_2.pth'),
            '--work-dir',
            str(work),
            '--cfg-options',
            'test_dataloader.num_workers=0',
            'test_dataloader.persistent_workers=False',
        ],
        timeout=600,
    )
    assert re.search(
        r'Iter\(test\) \[32/32\].*PSNR: [0-9.]+\s+SSIM: [0-9.]+', out
    ), out[-2000:]


@pytest.mark.usefixtures('embedded_sources')
def test_amp_on_cpu_trains_with_bf16_autocast(tmp_path):
    """MMEngine's AmpOptimWrapper needs an accelerator; on the CPU ``--amp``
    switches to BF16OptimWrapper."""
    import torch

    if torch.cuda.is_available():
        pytest.skip('a GPU is present: --amp picks AmpOptimWrapper there')
    work = tmp_path / 'work'
    run(
        [
            sys.executable,
            'tools/train.py',
            CONFIG,
            '--amp',
            '--work-dir',
            str(work),
            '--cfg-options',
            'train_cfg.max_iters=1',
            'train_cfg.val_begin=1000',
            'default_hooks.checkpoint.interval=1',
            'train_dataloader.num_workers=0',
            'train_dataloader.persistent_workers=False',
        ],
        timeout=600,
    )
    assert (work / 'iter_1.pth').is_file()
    dumped = list(work.glob('*.py'))
    assert (
        dumped
        and "type='unirestore_mm.BF16OptimWrapper'" in dumped[0].read_text()
    )
