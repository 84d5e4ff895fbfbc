"""tools/train.py, tools/test.py, tools/dist_train.sh (torchrun, gloo) and tools/restore.py as subprocesses."""
import os.path as osp
import re
import shutil
import subprocess
import sys

import cv2
import pytest

from integration_utils import REPO, subprocess_env, write_images

CONFIG = osp.join(REPO, 'configs', 'unirestore', 'stage1_unirestore-tiny_1xb16-1k_embedded.py')


def small_data_config(tmp_path, base=CONFIG):
    """The shipped config on a few images written here (no embedded set needed), 2 iterations."""
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
""")
    return str(cfg)


def run(cmd, timeout=300):
    proc = subprocess.run(cmd, cwd=REPO, env=subprocess_env(), capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f'{cmd} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}'
    return proc.stdout + proc.stderr


def test_train_then_test(tmp_path):
    cfg = small_data_config(tmp_path)
    work = tmp_path / 'work'
    run([sys.executable, 'tools/train.py', cfg, '--work-dir', str(work)])
    ckpt = work / 'iter_2.pth'
    assert ckpt.is_file()
    out = run([sys.executable, 'tools/test.py', cfg, str(ckpt), '--work-dir', str(work)])
    m = re.search(r'PSNR: ([0-9.]+)\s+SSIM: ([0-9.]+)', out)
    assert m, out[-2000:]
    assert 0 < float(m.group(1)) < 100 and 0 <= float(m.group(2)) <= 1
    # resume from the latest checkpoint and go one iteration further
    out = run([sys.executable, 'tools/train.py', cfg, '--work-dir', str(work), '--resume',
               '--cfg-options', 'train_cfg.max_iters=3', 'default_hooks.checkpoint.interval=3'])
    assert 'resumed' in out and (work / 'iter_3.pth').is_file()


@pytest.mark.skipif(shutil.which('bash') is None, reason='needs bash')
def test_torchrun_two_cpu_processes(tmp_path):
    cfg = small_data_config(tmp_path)
    work = tmp_path / 'work'
    env_port = '29517'
    proc = subprocess.run(['bash', 'tools/dist_train.sh', cfg, '2', '--work-dir', str(work)], cwd=REPO,
                          env=dict(subprocess_env(), PORT=env_port), capture_output=True, text=True, timeout=300)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-5000:]
    assert "backend='gloo'" in out or 'gloo' in out
    assert 'Iter(train) [2/2]' in out
    assert (work / 'iter_2.pth').is_file()


def test_restore_tool(tmp_path):
    from unirestore_mm.models import UniRestore
    restorer = str(tmp_path / 'restorer')
    UniRestore(preset='tiny').save_pretrained(restorer)  # weights given by the user: not refused
    write_images(str(tmp_path / 'in' / 'sub'), n=2, size=(20, 36))
    write_images(str(tmp_path / 'single'), n=1, size=(16, 16))
    out = run([sys.executable, 'tools/restore.py', str(tmp_path / 'in'), str(tmp_path / 'single' / '000.png'),
               '--out', str(tmp_path / 'out'), '--task', 'seg', '--steps', '2', '--suffix', '_r',
               '--restorer', restorer, '--batch-size', '2'])
    assert 'restored 3 image(s)' in out
    img = cv2.imread(str(tmp_path / 'out' / 'sub' / '001_r.png'))
    assert img.shape == (20, 36, 3)
    assert (tmp_path / 'out' / '000_r.png').is_file()
    bad = subprocess.run([sys.executable, 'tools/restore.py', str(tmp_path / 'missing'), '--out', str(tmp_path / 'o2'),
                          '--restorer', restorer], cwd=REPO, env=subprocess_env(), capture_output=True, text=True,
                         timeout=120)
    assert bad.returncode == 2 and 'no such file or folder' in bad.stderr
    clash = subprocess.run([sys.executable, 'tools/restore.py', str(tmp_path / 'in' / 'sub'), str(tmp_path / 'single'),
                            '--out', str(tmp_path / 'o3'), '--restorer', restorer], cwd=REPO, env=subprocess_env(),
                           capture_output=True, text=True, timeout=120)
    assert clash.returncode == 2 and 'would both be written' in clash.stderr


def _embedded_set_available():
    try:
        import skimage  # noqa: F401
        from unirestore_mm.datasets import load_fashion_mnist
        load_fashion_mnist('test')
    except Exception:  # noqa: BLE001 - the set's sources are missing here
        return False
    return True


@pytest.mark.skipif(not _embedded_set_available(), reason='embedded set sources (scikit-image, Fashion-MNIST) missing')
def test_shipped_config_on_the_embedded_set(tmp_path):
    """The shipped config as is (the embedded set, built on first use): 2 iterations, then tools/test.py."""
    work = tmp_path / 'work'
    run([sys.executable, 'tools/train.py', CONFIG, '--work-dir', str(work), '--cfg-options', 'train_cfg.max_iters=2',
         'train_cfg.val_begin=1000', 'default_hooks.checkpoint.interval=2', 'train_dataloader.num_workers=0',
         'train_dataloader.persistent_workers=False'], timeout=600)
    assert (work / 'iter_2.pth').is_file()
    out = run([sys.executable, 'tools/test.py', CONFIG, str(work / 'iter_2.pth'), '--work-dir', str(work),
               '--cfg-options', 'test_dataloader.num_workers=0', 'test_dataloader.persistent_workers=False'],
              timeout=600)
    assert re.search(r'Iter\(test\) \[32/32\].*PSNR: [0-9.]+\s+SSIM: [0-9.]+', out), out[-2000:]


@pytest.mark.skipif(not _embedded_set_available(), reason='embedded set sources (scikit-image, Fashion-MNIST) missing')
def test_amp_on_cpu_trains_with_bf16_autocast(tmp_path):
    """MMEngine's AmpOptimWrapper needs an accelerator; on the CPU ``--amp`` switches to BF16OptimWrapper."""
    import torch
    if torch.cuda.is_available():
        pytest.skip('a GPU is present: --amp picks AmpOptimWrapper there')
    work = tmp_path / 'work'
    run([sys.executable, 'tools/train.py', CONFIG, '--amp', '--work-dir', str(work), '--cfg-options',
         'train_cfg.max_iters=1', 'train_cfg.val_begin=1000', 'default_hooks.checkpoint.interval=1',
         'train_dataloader.num_workers=0', 'train_dataloader.persistent_workers=False'], timeout=600)
    assert (work / 'iter_1.pth').is_file()
    dumped = list(work.glob('*.py'))
    assert dumped and "type='unirestore_mm.BF16OptimWrapper'" in dumped[0].read_text()
