"""tools/test.py and tools/benchmark.py on folders with bad files, interrupted
runs and user errors.

* Bad files (zero bytes, a cut PNG or JPEG, undecodable bytes, no clean file, a
  pair of two sizes, a folder where the clean file should be, an unreadable
  file): every good sample is processed, the bad ones are listed at the end
  with the reason, the exit status is 1, and no temporary or partial file is
  left.
* A run killed inside a write (SIGKILL between the temporary file and the
  rename) is continued by ``--skip-existing`` without redoing what was done.
* Every user error: one line on stderr naming the input, exit status 2, no
  traceback.

A tiny restorer with random weights: these tests check the tools' mechanics,
not quality.
"""

import json
import os
import os.path as osp
import pickle
import signal
import subprocess
import sys

import cv2
import numpy as np
import pytest
import torch
from integration_utils import REPO, subprocess_env, write_images

BASE = osp.join(
    REPO,
    'configs',
    'unirestore',
    'stage1_unirestore-tiny_1xb16-1k_embedded.py',
)
CLS_CFG = osp.join(
    REPO,
    'configs/demo/cls-seen_resnet18-w16-cifar_1xb64-500it_clean-embedded.py',
)
TEST_PY = osp.join(REPO, 'tools', 'test.py')
BENCH_PY = osp.join(REPO, 'tools', 'benchmark.py')


def _load(path, name):
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _pairs(root, n=5, size=(32, 32)):
    """``root/lq/00i.png`` (the clean image plus noise) and
    ``root/gt/00i.png``."""
    write_images(str(root / 'gt'), n=n, size=size)
    os.makedirs(root / 'lq', exist_ok=True)
    rng = np.random.default_rng(1)
    for i in range(n):
        gt = cv2.imread(str(root / 'gt' / f'{i:03d}.png'))
        lq = np.clip(
            gt.astype(int) + rng.integers(-30, 31, gt.shape), 0, 255
        ).astype(np.uint8)
        cv2.imwrite(str(root / 'lq' / f'{i:03d}.png'), lq)
    return root


def _truncate(path, keep=0.5):
    data = open(path, 'rb').read()
    with open(path, 'wb') as f:
        f.write(data[: int(len(data) * keep)])


def _tmp_files(*folders):
    return [
        osp.join(d, f)
        for folder in folders
        if osp.isdir(folder)
        for d, _, fs in os.walk(folder)
        for f in fs
        if f.endswith('.tmp')
    ]


def _config(tmp, data_root):
    cfg = tmp / f'cfg_{osp.basename(str(data_root))}.py'
    cfg.write_text(f"""
_base_ = [{BASE!r}]
test_dataloader = dict(_delete_=True, batch_size=2, num_workers=0, persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type='unirestore_mm.PairedImageDataset', data_root={str(data_root)!r}, test_mode=True,
                 data_prefix=dict(img_path='lq', gt_path='gt'),
                 pipeline=[dict(type='unirestore_mm.LoadPairedImages'),
                           dict(type='unirestore_mm.PackRestorationInputs', sample_type='base')]))
default_hooks = dict(logger=dict(interval=1))
""")  # noqa: E501
    return str(cfg)


@pytest.fixture(scope='module')
def tiny(tmp_path_factory):
    """A config on a folder of pairs and a checkpoint of its model (random
    weights, saved as MMEngine does)."""
    from mmengine.config import Config
    from mmengine.registry import DefaultScope

    import unirestore_mm  # noqa: F401
    from unirestore_mm.registry import MODELS

    root = tmp_path_factory.mktemp('cli')
    cfg_path = _config(root, _pairs(root / 'good'))
    cfg = Config.fromfile(cfg_path)
    torch.manual_seed(0)
    with DefaultScope.overwrite_default_scope('unirestore_mm'):
        model = MODELS.build(cfg.model)
    ckpt = root / 'iter_1.pth'
    torch.save(dict(state_dict=model.state_dict(), meta=dict(iter=1)), ckpt)
    return dict(root=root, cfg=cfg_path, ckpt=str(ckpt))


def _run(cmd, timeout=300, **kw):
    return subprocess.run(
        cmd,
        cwd=REPO,
        env=subprocess_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        **kw,
    )


def _listed(stderr, tool):
    """The ``path: reason`` lines after the tool's 'left out' header."""
    lines = stderr.splitlines()
    start = next(
        i
        for i, line in enumerate(lines)
        if line.startswith(f'{tool}: ') and 'left out' in line
    )
    listed = {}
    for line in lines[start + 1 :]:
        if not line.startswith('  '):
            break
        path, reason = line.strip().split(': ', 1)
        listed[path] = reason
    return listed


# -----------------------------------------------------------------------------
# tools/test.py
# -----------------------------------------------------------------------------
def test_test_tool_goes_past_bad_files(tiny, tmp_path):
    """5 pairs, one degraded file empty and one cut in half: 3 pictures, the 2
    files listed, exit 1, no temp file, --out holding the 3 predictions."""
    data = _pairs(tmp_path / 'data')
    open(data / 'lq' / '001.png', 'wb').close()
    _truncate(data / 'lq' / '003.png')
    cfg = _config(tmp_path, data)
    pictures, out = tmp_path / 'pictures', tmp_path / 'res' / 'preds.pkl'
    proc = _run(
        [
            sys.executable,
            TEST_PY,
            cfg,
            tiny['ckpt'],
            '--work-dir',
            str(tmp_path / 'work'),
            '--show-dir',
            str(pictures),
            '--out',
            str(out),
        ]
    )
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert 'Traceback' not in proc.stderr
    assert sorted(os.listdir(pictures)) == ['000.png', '002.png', '004.png']
    listed = _listed(proc.stderr, 'test.py')
    assert set(listed) == {
        str(data / 'lq' / '001.png'),
        str(data / 'lq' / '003.png'),
    }, proc.stderr[-2000:]
    assert all('decode' in r or 'truncated' in r for r in listed.values()), (
        listed
    )
    assert 'tested 3 of 5 sample(s)' in proc.stdout and '2 bad' in proc.stdout
    # the metrics of the 3 good samples were computed
    assert 'PSNR' in proc.stdout + proc.stderr
    with open(out, 'rb') as f:
        preds = pickle.load(f)
    assert sorted(osp.basename(p['img_path']) for p in preds) == [
        '000.png',
        '002.png',
        '004.png',
    ]
    assert not _tmp_files(str(pictures), str(out.parent))
    # the picture is degraded | restored | clean of the sample
    assert cv2.imread(str(pictures / '002.png')).shape == (32, 96, 3)


def test_test_tool_every_kind_of_bad_file(tiny, tmp_path):
    data = _pairs(tmp_path / 'data', n=9)
    lq, gt = data / 'lq', data / 'gt'
    # undecodable
    (lq / '000.png').write_bytes(b'this is not a PNG file at all')
    cv2.imwrite(str(lq / '001.jpg'), cv2.imread(str(lq / '001.png')))
    os.remove(lq / '001.png')
    cv2.imwrite(str(gt / '001.jpg'), cv2.imread(str(gt / '001.png')))
    os.remove(gt / '001.png')
    _truncate(lq / '001.jpg', 0.6)  # a cut JPEG
    os.remove(gt / '002.png')  # no clean file
    # a pair of two sizes
    cv2.imwrite(str(gt / '003.png'), np.zeros((16, 16, 3), np.uint8))
    os.remove(gt / '004.png')
    os.mkdir(gt / '004.png')  # a folder named like the clean file
    os.mkdir(lq / 'folder.png')  # a folder named like an image: no input
    (lq / '005.png').chmod(0)  # unreadable (not for root)
    unreadable = not os.access(lq / '005.png', os.R_OK)
    cfg = _config(tmp_path, data)
    try:
        proc = _run(
            [
                sys.executable,
                TEST_PY,
                cfg,
                tiny['ckpt'],
                '--work-dir',
                str(tmp_path / 'work'),
                '--show-dir',
                str(tmp_path / 'pictures'),
            ]
        )
    finally:
        (lq / '005.png').chmod(0o644)
    assert proc.returncode == 1 and 'Traceback' not in proc.stderr, (
        proc.stderr[-3000:]
    )
    listed = _listed(proc.stderr, 'test.py')
    expected = {
        '000.png': 'decode',
        '001.jpg': '',
        '002.png': 'no clean image',
        '003.png': 'sizes differ',
        '004.png': 'no clean image',
    }
    if unreadable:
        expected['005.png'] = 'Permission denied'
    assert {osp.basename(p) for p in listed} == set(expected), proc.stderr[
        -2000:
    ]
    # OpenCV refuses a cut JPEG itself (check_image_complete: for decoders that
    # don't)
    expected['001.jpg'] = 'decode'
    for path, reason in listed.items():
        assert expected[osp.basename(path)] in reason, (path, reason)
    good = {f'{i:03d}.png' for i in range(5, 9)} - (
        {'005.png'} if unreadable else set()
    )
    assert set(os.listdir(tmp_path / 'pictures')) == good
    assert not _tmp_files(str(tmp_path / 'pictures'))


def _psnr(output):
    import re

    found = re.findall(r'PSNR: ([0-9.]+)', output)
    assert found, output[-2000:]
    return float(found[-1])


def test_test_tool_two_processes_with_bad_files(tiny, tmp_path):
    """torchrun, 2 CPU processes, 5 pairs of which 2 are bad: process 1 is left
    with only the sampler's repeat of sample 0, so MMEngine's collect_results
    would count sample 0 twice; the metrics match one process."""
    data = _pairs(tmp_path / 'data')
    open(data / 'lq' / '001.png', 'wb').close()
    _truncate(data / 'lq' / '003.png')
    cfg = _config(tmp_path, data)
    # batch size 1: UniRestoreModel seeds one generator per batch, so a
    # sample's noise depends on its batch
    one_per_batch = ['--cfg-options', 'test_dataloader.batch_size=1']
    one = _run(
        [
            sys.executable,
            TEST_PY,
            cfg,
            tiny['ckpt'],
            '--work-dir',
            str(tmp_path / 'w1'),
        ]
        + one_per_batch
    )
    assert one.returncode == 1, one.stderr[-3000:]
    env = dict(subprocess_env(), PORT='29633')
    two = subprocess.run(
        [
            'bash',
            osp.join(REPO, 'tools', 'dist_test.sh'),
            cfg,
            tiny['ckpt'],
            '2',
            '--work-dir',
            str(tmp_path / 'w2'),
            '--show-dir',
            str(tmp_path / 'pictures'),
        ]
        + one_per_batch,
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    # exit status 1 (torchrun itself prints a traceback of its own when a
    # worker exits non-zero)
    assert two.returncode == 1, two.stderr[-3000:]
    assert 'tested 3 of 5 sample(s)' in two.stdout, two.stdout[-2000:]
    assert len(_listed(two.stderr, 'test.py')) == 2
    assert _psnr(two.stdout + two.stderr) == pytest.approx(
        _psnr(one.stdout + one.stderr), abs=2e-4
    )
    assert sorted(os.listdir(tmp_path / 'pictures')) == [
        '000.png',
        '002.png',
        '004.png',
    ]


def test_bugs_are_not_taken_for_bad_files(tmp_path):
    """Only errors about the sample's files make a marker; any other error (a
    bug) is raised."""
    from unirestore_mm.datasets.transforms.transforms import CorruptImageError
    from unirestore_mm.engine.tolerant_test import (
        BAD_KEY,
        SkipBadSamples,
        drop_bad_samples_collate,
    )

    # readable files: the error is not about them (paired.file_error reads them
    # to tell)
    for i in range(2):
        cv2.imwrite(str(tmp_path / f'{i}.png'), np.zeros((4, 4, 3), np.uint8))

    class Data:
        def __init__(self, err):
            self.err = err

        def __len__(self):
            return 2

        def get_data_info(self, idx):
            return dict(img_path=str(tmp_path / f'{idx}.png'))

        def __getitem__(self, idx):
            if idx == 1:
                raise self.err
            return dict(inputs=torch.zeros(1), data_samples=None)

    wrapped = SkipBadSamples(
        Data(
            CorruptImageError(f'cannot decode image file {tmp_path / "1.png"}')
        ),
        check_complete=False,
    )
    marker = wrapped[1][BAD_KEY]
    assert (
        marker['index'] == 1
        and marker['path'] == str(tmp_path / '1.png')
        and 'decode' in marker['reason']
    )
    batch = drop_bad_samples_collate([wrapped[0], wrapped[1]])
    assert len(batch['bad']) == 1 and len(batch['batch']['inputs']) == 1
    assert drop_bad_samples_collate([wrapped[1]])['batch'] is None
    with pytest.raises(ZeroDivisionError):
        SkipBadSamples(Data(ZeroDivisionError('a bug')), check_complete=False)[
            1
        ]


def test_cut_png_and_jpeg_are_recognised(tmp_path):
    """Some decoders (older OpenCV, turbojpeg) decode a cut JPEG with grey
    rows; the end markers tell."""
    from unirestore_mm.datasets.transforms.transforms import CorruptImageError
    from unirestore_mm.engine.tolerant_test import check_image_complete

    img = write_images(str(tmp_path), n=1, size=(40, 40))
    img = cv2.imread(osp.join(img, '000.png'))
    for ext in ('.png', '.jpg'):
        path = str(tmp_path / f'whole{ext}')
        cv2.imwrite(path, img)
        check_image_complete(path)
        # bytes after the end (some cameras append data): still whole
        with open(path, 'ab') as f:
            f.write(b'trailer')
        check_image_complete(path)
        cut = str(tmp_path / f'cut{ext}')
        with open(cut, 'wb') as f:
            f.write(open(path, 'rb').read()[:-40])
        with pytest.raises(CorruptImageError, match='truncated'):
            check_image_complete(cut)


KILL_AT_RENAME = """
import os, runpy, signal, sys
count, real = [0], os.replace
def replace(src, dst, *a, **k):
    if str(dst).endswith('.png'):
        count[0] += 1
        if count[0] == {n}:  # the temporary picture is written and synced: die before the rename
            os.kill(os.getpid(), signal.SIGKILL)
    return real(src, dst, *a, **k)
os.replace = replace
sys.argv = {argv!r}
sys.exit(runpy.run_path({tool!r}, run_name='__main__'))
"""


def test_test_tool_killed_mid_write_then_skip_existing(tiny, tmp_path):
    pictures = tmp_path / 'pictures'
    argv = [
        TEST_PY,
        tiny['cfg'],
        tiny['ckpt'],
        '--work-dir',
        str(tmp_path / 'work'),
        '--show-dir',
        str(pictures),
    ]
    proc = _run(
        [
            sys.executable,
            '-c',
            KILL_AT_RENAME.format(n=3, argv=argv, tool=TEST_PY),
        ]
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-3000:]
    done = sorted(f for f in os.listdir(pictures) if not f.startswith('.'))
    # whole pictures only; the third is a hidden temporary file
    assert done == ['000.png', '001.png']
    assert len(_tmp_files(str(pictures))) == 1
    stamps = {f: os.stat(pictures / f).st_mtime_ns for f in done}

    proc = _run([sys.executable] + argv + ['--skip-existing'])
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (
        '2 of 5 samples have their picture' in proc.stdout
        and 'tested 3 of 5 sample(s)' in proc.stdout
    )
    assert 'cover only the samples tested now' in proc.stdout
    # the killed run's temp file removed
    assert sorted(os.listdir(pictures)) == [f'{i:03d}.png' for i in range(5)]
    # not redone
    assert {f: os.stat(pictures / f).st_mtime_ns for f in done} == stamps
    # nothing left to do
    proc = _run([sys.executable] + argv + ['--skip-existing'])
    assert proc.returncode == 0 and 'nothing to test' in proc.stdout, (
        proc.stdout[-2000:]
    )


def _one_line_error(proc_or_captured, tool):
    rc, err = proc_or_captured
    lines = [line for line in err.splitlines() if line.strip()]
    assert rc == 2, err[-2000:]
    assert 'Traceback' not in err, err[-3000:]
    errors = [line for line in lines if line.startswith(f'{tool}: error:')]
    assert len(errors) == 1, err[-2000:]
    return errors[0]


def test_test_tool_user_errors(tiny, tmp_path, capsys):
    tool = _load(TEST_PY, 'test_tool')
    cfg, ckpt = tiny['cfg'], tiny['ckpt']
    bad_cfg = tmp_path / 'syntax.py'
    bad_cfg.write_text('model = dict(\n')
    no_test = tmp_path / 'no_test.py'
    no_test.write_text(f'_base_ = [{cfg!r}]\ntest_dataloader = None\n')
    no_data = tmp_path / 'no_data.py'
    gone = str(tmp_path / 'gone')
    no_data.write_text(
        f'_base_ = [{cfg!r}]\ntest_dataloader = '
        f'dict(dataset=dict(data_root={gone!r}))\n'
    )
    garbage = tmp_path / 'garbage.pth'
    garbage.write_bytes(b'\x00not a checkpoint' * 10)
    empty = tmp_path / 'empty.pth'
    empty.write_bytes(b'')
    other = tmp_path / 'other.pth'
    torch.save(
        dict(state_dict={'backbone.conv.weight': torch.zeros(3)}, meta={}),
        other,
    )
    a_file = tmp_path / 'a_file'
    a_file.write_text('x')
    cases = [
        ([str(tmp_path / 'missing.py'), ckpt], 'missing.py'),
        ([str(bad_cfg), ckpt], 'syntax.py'),
        ([str(no_test), ckpt], 'test_dataloader'),
        ([str(no_data), ckpt], 'gone'),
        ([cfg, str(tmp_path / 'missing.pth')], 'missing.pth'),
        ([cfg, str(garbage)], 'garbage.pth'),
        ([cfg, str(empty)], 'empty.pth'),
        ([cfg, str(other)], 'other.pth'),
        ([cfg], 'checkpoint'),
        ([cfg, ckpt, '--out', str(tmp_path / 'r.json')], 'r.json'),
        ([cfg, ckpt, '--out', str(a_file / 'r.pkl')], 'a_file'),
        ([cfg, ckpt, '--work-dir', str(a_file)], '--work-dir'),
        ([cfg, ckpt, '--show-dir', str(a_file)], '--show-dir'),
        ([cfg, ckpt, '--skip-existing'], '--skip-existing'),
        ([cfg, ckpt, '--cfg-options', 'no_equals_sign'], '--cfg-options'),
        (
            [
                cfg,
                ckpt,
                '--cfg-options',
                'test_dataloader.dataset.type=NoSuchDataset',
            ],
            'NoSuchDataset',
        ),
        ([cfg, ckpt, '--launcher', 'bogus'], 'bogus'),
        ([cfg, ckpt, '--local_rank', 'x'], "'x'"),
        ([cfg, ckpt, '--bogus-flag'], '--bogus-flag'),
    ]
    for argv, named in cases:
        rc = tool.main(
            argv + ['--work-dir', str(tmp_path / 'w')]
            if '--work-dir' not in argv and len(argv) > 1
            else argv
        )
        line = _one_line_error((rc, capsys.readouterr().err), 'test.py')
        assert named in line, (argv, line)
    # as a process: the same single line
    proc = _run([sys.executable, TEST_PY, cfg, str(garbage)])
    assert 'garbage.pth' in _one_line_error(
        (proc.returncode, proc.stderr), 'test.py'
    )


# -----------------------------------------------------------------------------
# tools/benchmark.py
# -----------------------------------------------------------------------------
@pytest.fixture(scope='module')
def bench(tiny):
    """A restorer folder and a classifier checkpoint (random weights), and a
    Rain100L-layout folder of pairs."""
    from unirestore_mm.models import UniRestore
    from unirestore_mm.models.recognizers import build_recognizer

    root = tiny['root']
    torch.manual_seed(0)
    UniRestore(preset='tiny').save_pretrained(str(root / 'restorer'))
    rec = build_recognizer(CLS_CFG, frozen=False)
    torch.save(
        dict(state_dict=rec.model.state_dict(), meta={}), root / 'cls.pth'
    )
    return dict(restorer=str(root / 'restorer'), cls=str(root / 'cls.pth'))


def _rain(folder, n=5):
    """Rain100L's layout (test/input, test/target) with ``n`` pairs."""
    _pairs(folder / 'tmp', n=n)
    os.makedirs(folder / 'test', exist_ok=True)
    os.rename(folder / 'tmp' / 'lq', folder / 'test' / 'input')
    os.rename(folder / 'tmp' / 'gt', folder / 'test' / 'target')
    return folder


def _bench_argv(bench, data_root, work, extra=()):
    return [
        '--data',
        osp.join(REPO, 'configs/_base_/datasets/rain100l.py'),
        '--data-options',
        f'test_dataloader.dataset.data_root={data_root}',
        '--restorer',
        'ur',
        bench['restorer'],
        '--tasks',
        'ir',
        '--model',
        'r18',
        CLS_CFG,
        bench['cls'],
        '--batch-size',
        '2',
        '--work-dir',
        str(work),
        *extra,
    ]


def test_benchmark_goes_past_bad_files_and_resumes(
    bench, tmp_path, capsys, monkeypatch
):
    data = _rain(tmp_path / 'rain')
    open(data / 'test' / 'input' / '001.png', 'wb').close()
    _truncate(data / 'test' / 'target' / '003.png')
    work = tmp_path / 'work'
    tool = _load(BENCH_PY, 'bench_tool')
    assert tool.main(_bench_argv(bench, data, work)) == 1
    err = capsys.readouterr().err
    assert 'Traceback' not in err
    listed = _listed(err, 'benchmark.py')
    assert set(listed) == {
        str(data / 'test' / 'input' / '001.png'),
        str(data / 'test' / 'target' / '003.png'),
    }
    assert 'decode' in listed[str(data / 'test' / 'input' / '001.png')]
    cells = [json.loads(line) for line in open(work / 'cells.jsonl')]
    assert {c['row'] for c in cells} == {'degraded', 'ur/ir', 'clean'}
    assert all(c['images'] == 3 and len(c['failed']) == 2 for c in cells)
    for name in (
        'table.md',
        'table.csv',
        'table.json',
        'bars.png',
        'grid.png',
        'settings.json',
    ):
        assert osp.getsize(work / name) > 0, name
    assert not _tmp_files(str(work))
    assert 'failed' not in json.load(open(work / 'table.json'))['metrics']
    # the degraded PSNR is that of the 3 good pairs
    from unirestore_mm.evaluation import psnr

    def t(names, sub):
        return (
            torch.from_numpy(
                np.stack(
                    [
                        cv2.imread(str(data / 'test' / sub / n))[..., ::-1]
                        for n in names
                    ]
                )
            )
            .permute(0, 3, 1, 2)
            .float()
            / 255
        )

    good = ['000.png', '002.png', '004.png']
    expected = float(psnr(t(good, 'input'), t(good, 'target')).mean())
    assert next(c for c in cells if c['row'] == 'degraded')[
        'PSNR'
    ] == pytest.approx(expected, abs=1e-5)

    # a rerun keeps the cells (nothing restored again) and reports the files
    # again
    from unirestore_mm.apis import benchmark as api

    calls = []
    real = api.restore_batch
    monkeypatch.setattr(
        api, 'restore_batch', lambda *a, **k: calls.append(1) or real(*a, **k)
    )
    assert (
        tool.main(
            _bench_argv(bench, data, work, ['--skip-existing', '--no-figures'])
        )
        == 1
    )
    assert (
        not calls
        and len(_listed(capsys.readouterr().err, 'benchmark.py')) == 2
    )
    # mended files and --overwrite: everything recomputed over 5 images, exit 0
    _pairs(tmp_path / 'fresh')
    for sub, src in (('input', 'lq'), ('target', 'gt')):
        for name in ('001.png', '003.png'):
            os.replace(
                tmp_path / 'fresh' / src / name, data / 'test' / sub / name
            )
    assert (
        tool.main(
            _bench_argv(bench, data, work, ['--overwrite', '--no-figures'])
        )
        == 0
    )
    assert all(
        json.loads(line)['images'] == 5 and 'failed' not in json.loads(line)
        for line in open(work / 'cells.jsonl')
    )


KILL_AT_CELL = """
import os, runpy, signal, sys
count, real = [0], os.fsync
def fsync(fd):
    real(fd)
    if os.readlink(f'/proc/self/fd/{{fd}}').endswith('cells.jsonl'):
        count[0] += 1
        if count[0] == {n}:  # that cell is on disk: die before the next one
            os.kill(os.getpid(), signal.SIGKILL)
os.fsync = fsync
sys.argv = {argv!r}
sys.exit(runpy.run_path({tool!r}, run_name='__main__'))
"""


@pytest.mark.skipif(
    not osp.isdir('/proc/self/fd'),
    reason='needs /proc to find the journal file descriptor',
)
def test_benchmark_killed_after_a_cell_then_skip_existing(
    bench, tmp_path, monkeypatch
):
    """SIGKILL right after the second cell reached the disk; the rerun computes
    only the third (one restorer pass) and the table equals an uninterrupted
    run's."""
    data = _rain(tmp_path / 'rain', n=3)
    whole, work = tmp_path / 'whole', tmp_path / 'killed'
    tool = _load(BENCH_PY, 'bench_tool_kill')
    assert tool.main(_bench_argv(bench, data, whole, ['--no-figures'])) == 0
    argv = [BENCH_PY] + _bench_argv(bench, data, work, ['--no-figures'])
    proc = _run(
        [
            sys.executable,
            '-c',
            KILL_AT_CELL.format(n=2, argv=argv, tool=BENCH_PY),
        ]
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-3000:]
    kept = open(work / 'cells.jsonl').read()
    assert [json.loads(line)['row'] for line in kept.splitlines()] == [
        'clean',
        'degraded',
    ]
    assert not osp.exists(work / 'table.md')

    from unirestore_mm.apis import benchmark as api

    calls = []
    real = api.restore_batch
    monkeypatch.setattr(
        api,
        'restore_batch',
        lambda *a, **k: calls.append(len(a[1])) or real(*a, **k),
    )
    predicted = []
    real_predict = api.Downstream.predict
    monkeypatch.setattr(
        api.Downstream,
        'predict',
        lambda self, b: predicted.append(1) or real_predict(self, b),
    )
    assert (
        tool.main(
            _bench_argv(bench, data, work, ['--no-figures', '--skip-existing'])
        )
        == 0
    )
    # the 3 images of the one missing cell (batch size 2), nothing else
    assert calls == [2, 1]
    # per batch: the clean reference and the restored images of that cell
    assert len(predicted) == 4
    # the finished cells were kept as they were
    assert open(work / 'cells.jsonl').read().startswith(kept)
    assert (
        json.load(open(work / 'table.json'))['table']
        == json.load(open(whole / 'table.json'))['table']
    )
    assert not _tmp_files(str(work))


def test_benchmark_user_errors(bench, tmp_path, capsys):
    tool = _load(BENCH_PY, 'bench_tool_errors')
    data = _rain(tmp_path / 'rain', n=2)
    base = _bench_argv(bench, data, tmp_path / 'w', ['--no-figures'])
    bad_cfg = tmp_path / 'syntax.py'
    bad_cfg.write_text('test_dataloader = dict(\n')
    garbage = tmp_path / 'garbage.pth'
    garbage.write_bytes(b'\x00not a checkpoint' * 10)
    empty = tmp_path / 'empty.pth'
    empty.write_bytes(b'')
    a_file = tmp_path / 'a_file'
    a_file.write_text('x')

    def swap(old, new):
        return [new if a == old else a for a in base]

    def set_opt(flag, *values):
        i = base.index(flag)
        return base[: i + 1] + list(values) + base[i + 2 :]

    cases = [
        (swap(base[1], str(tmp_path / 'missing.py')), 'missing.py'),
        (swap(base[1], str(bad_cfg)), 'syntax.py'),
        (set_opt('--data-options', 'no_equals_sign'), '--data-options'),
        (
            set_opt(
                '--data-options',
                f'test_dataloader.dataset.data_root={tmp_path / "gone"}',
            ),
            'gone',
        ),
        (swap(bench['restorer'], str(tmp_path / 'nope')), 'nope'),
        (swap(bench['restorer'], str(garbage)), 'garbage.pth'),
        (swap(bench['restorer'], str(empty)), 'empty.pth'),
        (base + ['--preset', 'huge'], 'huge'),
        (base + ['--prior', str(tmp_path / 'no_prior')], 'no_prior'),
        (set_opt('--tasks', 'dehaze'), 'dehaze'),
        (swap(CLS_CFG, str(tmp_path / 'no_cfg.py')), 'no_cfg.py'),
        (swap(bench['cls'], str(tmp_path / 'no_ckpt.pth')), 'no_ckpt.pth'),
        (swap(bench['cls'], str(garbage)), "'r18'"),
        (base + ['--corruptions', 'lava'], 'lava'),
        (base + ['--severities', '9'], '9'),
        (base + ['--severities', 'x'], "'x'"),
        (base + ['--labels', 'bogus'], 'bogus'),
        (base + ['--labels', 'dataset'], "'r18'"),
        (base + ['--limit', '0'], '--limit'),
        (base + ['--limit', 'x'], "'x'"),
        (base + ['--steps', '5'], '--steps'),
        (base + ['--seed', 'x'], "'x'"),
        (set_opt('--batch-size', '0'), '--batch-size'),
        (base + ['--num-workers', '-1'], '--num-workers'),
        (base + ['--device', 'tpu'], 'tpu'),
        (base + ['--dtype', 'fp16'], 'fp16'),
        (base + ['--dtype', 'int4'], 'int4'),
        (set_opt('--work-dir', str(a_file)), 'a_file'),
        (base + ['--skip-existing', '--overwrite'], '--overwrite'),
        (base[:-1] + ['--grid-index', '7'], '--grid-index'),
        (base + ['--grid-index', '-1'], '--grid-index'),
        (base + ['--launcher', 'bogus'], 'bogus'),
        (base + ['--local_rank', 'x'], "'x'"),
        (base + ['--bogus-flag'], '--bogus-flag'),
        ([a for a in base if a != '--data'][1:], '--data'),
    ]
    if not torch.cuda.is_available():
        cases.append((base + ['--device', 'cuda'], 'cuda'))
    for argv, named in cases:
        with pytest.raises(SystemExit) as exit_info:
            tool.main(argv)
        line = _one_line_error(
            (exit_info.value.code, capsys.readouterr().err), 'benchmark.py'
        )
        assert named in line, (argv, line)
    # nothing was computed
    assert not osp.exists(tmp_path / 'w' / 'cells.jsonl')
    proc = _run(
        [sys.executable, BENCH_PY] + swap(bench['restorer'], str(garbage))
    )
    assert 'garbage.pth' in _one_line_error(
        (proc.returncode, proc.stderr), 'benchmark.py'
    )
