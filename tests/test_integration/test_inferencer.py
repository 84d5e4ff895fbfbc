"""UniRestoreInferencer and tools/restore.py on top of it: every input kind
restores like UniRestore.restore with the per-image seed ``seed + index``;
batching does not change the result; out_dir holds restored images and
``input | restored`` pictures; restorers without trained weights are refused; a
folder run survives a corrupt file, continues with --skip-existing and reports
usage errors in one line."""

import importlib.util
import os
import os.path as osp
import subprocess
import sys

import cv2
import numpy as np
import pytest
import torch
from integration_utils import REPO, subprocess_env, write_images

from unirestore_mm.apis import UniRestoreInferencer
from unirestore_mm.datasets.transforms.transforms import CorruptImageError
from unirestore_mm.models import UniRestore
from unirestore_mm.models.weights_guard import RandomWeightsError

SEED = 7


@pytest.fixture(scope='module')
def restorer_dir(tmp_path_factory):
    """A tiny restorer saved with save_pretrained: weights the user gave, so
    not refused."""
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp('restorer') / 'tiny'
    UniRestore(preset='tiny').save_pretrained(str(folder))
    return str(folder)


@pytest.fixture(scope='module')
def inferencer(restorer_dir):
    return UniRestoreInferencer(
        restorer_dir, device='cpu', seed=SEED, show_progress=False
    )


@pytest.fixture(scope='module')
def image_dir(tmp_path_factory):
    """in/000.png (16 x 16) and in/sub/00{0,1,2}.png (20 x 36): sorted order
    000, sub/000, sub/001, sub/002."""
    root = tmp_path_factory.mktemp('images') / 'in'
    write_images(str(root / 'sub'), n=3, size=(20, 36))
    write_images(str(root), n=1, size=(16, 16), seed=1)
    return str(root)


def folder_files(root):
    return [osp.join(root, '000.png')] + [
        osp.join(root, 'sub', f'{i:03d}.png') for i in range(3)
    ]


def restore_bgr(model, bgr, seed):
    """What the inferencer should give for a BGR uint8 image:
    UniRestore.restore with that seed."""
    x = (
        torch.from_numpy(
            np.ascontiguousarray(bgr[..., ::-1].transpose(2, 0, 1))
        ).float()
        / 255
    )
    y = model.restore(x, task='ir', seed=seed).numpy().transpose(1, 2, 0)
    return np.ascontiguousarray(
        np.clip(np.rint(y * 255), 0, 255).astype(np.uint8)[..., ::-1]
    )


def assert_close_uint8(a, b):
    """Equal up to one 8-bit level on a few pixels (batched and single
    convolutions differ in the last bits)."""
    assert a.shape == b.shape and a.dtype == b.dtype
    diff = np.abs(a.astype(int) - b.astype(int))
    assert diff.max() <= 1 and (diff > 0).mean() < 0.01, (
        diff.max(),
        (diff > 0).mean(),
    )


# -----------------------------------------------------------------------------
# Inputs and seeds
# -----------------------------------------------------------------------------
def test_tensors_restore_like_unirestore_with_per_image_seeds(inferencer):
    model = inferencer.model
    x = torch.rand(3, 3, 20, 36, generator=torch.Generator().manual_seed(0))
    single = inferencer(x[1])['predictions']
    assert len(single) == 1 and torch.equal(
        single[0], model.restore(x[1], seed=SEED)
    )
    # a B x 3 x H x W tensor is B images
    preds = inferencer(x, batch_size=1)['predictions']
    assert len(preds) == 3
    for i, p in enumerate(preds):
        assert p.shape == (3, 20, 36) and p.dtype == torch.float32
        assert torch.equal(p, model.restore(x[i], seed=SEED + i)), i
    # the seed really matters: a shared seed would give a very different image
    assert (preds[1] - model.restore(x[1], seed=SEED)).abs().max() > 0.1
    # a double tensor comes back as a double tensor
    assert inferencer(x[0].double())['predictions'][0].dtype == torch.float64


def test_batch_size_does_not_change_the_result(inferencer, image_dir):
    x = torch.rand(3, 3, 20, 36, generator=torch.Generator().manual_seed(1))
    one = inferencer(x, batch_size=1)['predictions']
    three = inferencer(x, batch_size=3)['predictions']
    for a, b in zip(one, three):
        # same noise; only the batched arithmetic's last bits differ
        assert (a - b).abs().max() < 1e-4
    files_one = inferencer(image_dir, batch_size=1)['predictions']
    files_three = inferencer(image_dir, batch_size=3)['predictions']
    for a, b in zip(files_one, files_three):
        assert_close_uint8(a, b)


def test_file_folder_list_and_arrays(inferencer, image_dir):
    model = inferencer.model
    files = folder_files(image_dir)
    imgs = [cv2.imread(f, cv2.IMREAD_UNCHANGED) for f in files]
    # one file: what cv2.imread gives, restored with seed + 0
    pred = inferencer(files[2])['predictions'][0]
    np.testing.assert_array_equal(pred, restore_bgr(model, imgs[2], SEED))
    # a folder: recursive, sorted by relative path, image i restored with
    # seed + i
    preds = inferencer(image_dir)['predictions']
    assert [p.shape for p in preds] == [(16, 16, 3)] + [(20, 36, 3)] * 3
    for i, (p, img) in enumerate(zip(preds, imgs)):
        assert p.dtype == np.uint8
        np.testing.assert_array_equal(p, restore_bgr(model, img, SEED + i))
    # a list of a file, a numpy BGR array and a tensor: each in its own
    # convention, seeds by position
    rgb = (
        torch.from_numpy(imgs[1][..., ::-1].transpose(2, 0, 1).copy()).float()
        / 255
    )
    out = inferencer([files[3], imgs[3], rgb], batch_size=1)['predictions']
    np.testing.assert_array_equal(out[0], restore_bgr(model, imgs[3], SEED))
    np.testing.assert_array_equal(
        out[1], restore_bgr(model, imgs[3], SEED + 1)
    )
    assert isinstance(out[2], torch.Tensor) and torch.equal(
        out[2], model.restore(rgb, seed=SEED + 2)
    )
    # gray and 16-bit arrays keep their shape and dtype
    gray = inferencer(imgs[0][..., 0])['predictions'][0]
    assert gray.shape == (16, 16) and gray.dtype == np.uint8
    deep = inferencer(imgs[0].astype(np.uint16) * 257)['predictions'][0]
    assert deep.shape == (16, 16, 3) and deep.dtype == np.uint16


def test_datasamples_and_errors(inferencer, image_dir, tmp_path):
    samples = inferencer(image_dir, return_datasamples=True)
    assert [s.index for s in samples] == [0, 1, 2, 3]
    assert [s.seed for s in samples] == [SEED + i for i in range(4)]
    assert (
        samples[1].name == osp.join('sub', '000.png')
        and samples[1].status == 'restored'
    )
    assert samples[1].pred_img.shape == (3, 20, 36) and samples[
        1
    ].input_img.shape == (3, 20, 36)
    bad = tmp_path / 'bad.png'
    bad.write_bytes(b'not an image')
    good = osp.join(image_dir, '000.png')
    with pytest.raises(CorruptImageError, match='bad.png'):
        inferencer([good, str(bad)])
    preds = inferencer([good, str(bad)], on_error='skip')['predictions']
    assert preds[0].shape == (16, 16, 3) and preds[1] is None
    with pytest.raises(FileNotFoundError, match='no such file'):
        inferencer(str(tmp_path / 'missing.png'))
    with pytest.raises(ValueError, match='batch_size'):
        inferencer(good, batch_size=0)
    with pytest.raises(TypeError, match='cannot restore'):
        inferencer(3.5)


# -----------------------------------------------------------------------------
# out_dir and visualisation
# -----------------------------------------------------------------------------
def test_out_dir_restored_and_side_by_side(inferencer, image_dir, tmp_path):
    out = tmp_path / 'out'
    x = torch.rand(3, 12, 20, generator=torch.Generator().manual_seed(2))
    result = inferencer(
        [image_dir, x], batch_size=2, out_dir=str(out), return_vis=True
    )
    names = [
        '000.png',
        osp.join('sub', '000.png'),
        osp.join('sub', '001.png'),
        osp.join('sub', '002.png'),
        '00000004.png',
    ]
    for i, name in enumerate(names):
        restored = cv2.imread(
            str(out / 'restored' / name), cv2.IMREAD_UNCHANGED
        )
        vis = cv2.imread(str(out / 'vis' / name), cv2.IMREAD_UNCHANGED)
        pred = result['predictions'][i]
        if isinstance(pred, torch.Tensor):  # tensors are written as 8-bit BGR
            src = np.rint(
                x.numpy().transpose(1, 2, 0)[..., ::-1] * 255
            ).astype(np.uint8)
            pred = np.rint(
                pred.numpy().transpose(1, 2, 0)[..., ::-1] * 255
            ).astype(np.uint8)
        else:
            src = cv2.imread(osp.join(image_dir, name), cv2.IMREAD_UNCHANGED)
        h, w = src.shape[:2]
        np.testing.assert_array_equal(restored, pred)
        assert vis.shape == (h, 2 * w, 3)  # input | restored
        np.testing.assert_array_equal(vis[:, :w], src)
        np.testing.assert_array_equal(vis[:, w:], pred)
        np.testing.assert_array_equal(
            result['visualization'][i], vis[..., ::-1]
        )
    leftovers = [
        f for _, _, fs in os.walk(out) for f in fs if f.endswith('.tmp')
    ]
    assert not leftovers  # written through temp files renamed into place
    # only the restored images, a suffix and another extension
    inferencer(
        image_dir,
        out_dir=str(tmp_path / 'o2'),
        no_save_vis=True,
        suffix='_r',
        ext='.bmp',
    )
    assert (tmp_path / 'o2' / 'restored' / 'sub' / '001_r.bmp').is_file()
    assert not (tmp_path / 'o2' / 'vis').exists()
    with pytest.raises(ValueError, match='would both be written'):
        inferencer(
            [image_dir, osp.join(image_dir, 'sub')],
            out_dir=str(tmp_path / 'o3'),
        )


# -----------------------------------------------------------------------------
# No trained weights
# -----------------------------------------------------------------------------
def test_refuses_a_restorer_without_trained_weights(restorer_dir):
    for spec in (
        dict(preset='tiny'),
        'tiny',
        dict(type='unirestore_mm.UniRestore', preset='tiny'),
    ):
        with pytest.raises(
            RandomWeightsError, match='only degrades images'
        ) as err:
            UniRestoreInferencer(spec, device='cpu', show_progress=False)
        assert 'checkpoint=' in str(
            err.value
        ) and 'allow_random_weights=True' in str(err.value)
    timing = UniRestoreInferencer(
        'tiny', device='cpu', allow_random_weights=True, show_progress=False
    )
    assert timing(torch.rand(3, 16, 16))['predictions'][0].shape == (3, 16, 16)
    # a preset with a checkpoint, or a save_pretrained folder, has trained
    # weights
    loaded = UniRestoreInferencer(
        dict(preset='tiny'),
        checkpoint=restorer_dir,
        device='cpu',
        show_progress=False,
    )
    folder = UniRestoreInferencer(
        restorer_dir, device='cpu', show_progress=False
    )
    for a, b in zip(
        loaded.model.state_dict().values(), folder.model.state_dict().values()
    ):
        assert torch.equal(a, b)
    with pytest.raises(ValueError, match='det'):
        UniRestoreInferencer(restorer_dir, task='det', device='cpu')
    with pytest.raises(FileNotFoundError, match='neither'):
        UniRestoreInferencer(osp.dirname(restorer_dir), device='cpu')


# -----------------------------------------------------------------------------
# tools/restore.py
# -----------------------------------------------------------------------------
def load_tool():
    spec = importlib.util.spec_from_file_location(
        'restore_tool', osp.join(REPO, 'tools', 'restore.py')
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_tool(*args, timeout=300):
    return subprocess.run(
        [sys.executable, 'tools/restore.py', *args],
        cwd=REPO,
        env=subprocess_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_tool_folder_with_a_corrupt_file(tmp_path, restorer_dir):
    write_images(str(tmp_path / 'in' / 'sub'), n=3, size=(20, 36))
    # corrupt, in the middle
    (tmp_path / 'in' / 'sub' / '001.png').write_bytes(b'\x89PNG truncated')
    (tmp_path / 'in' / 'unreadable.jpg').write_bytes(b'')  # empty
    proc = run_tool(
        str(tmp_path / 'in'),
        '--out',
        str(tmp_path / 'out'),
        '--restorer',
        restorer_dir,
        '--batch-size',
        '2',
        '--suffix',
        '_r',
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert 'restored 2 image(s)' in proc.stdout
    for i in (0, 2):
        assert cv2.imread(
            str(tmp_path / 'out' / 'sub' / f'00{i}_r.png')
        ).shape == (20, 36, 3)
    assert not (tmp_path / 'out' / 'sub' / '001_r.png').exists()
    assert 'Traceback' not in proc.stderr
    summary = proc.stderr[proc.stderr.index('2 input(s) failed') :]
    assert (
        'sub/001.png: cannot decode' in summary and 'unreadable.jpg' in summary
    )


def test_tool_skip_existing_continues_with_the_same_seeds(
    tmp_path, restorer_dir, capsys
):
    tool = load_tool()
    write_images(str(tmp_path / 'in'), n=3, size=(16, 16))
    args = [
        str(tmp_path / 'in'),
        '--out',
        str(tmp_path / 'out'),
        '--restorer',
        restorer_dir,
        '--seed',
        '3',
    ]
    assert tool.main(args) == 0
    out = tmp_path / 'out'
    first = {
        f: (out / f).read_bytes() for f in ('000.png', '001.png', '002.png')
    }
    # an existing output, whatever it holds, is not rewritten
    (out / '000.png').write_bytes(b'kept')
    mtime = os.stat(out / '000.png').st_mtime_ns
    (out / '002.png').unlink()  # "interrupted" before the last image
    assert tool.main(args + ['--skip-existing', '--batch-size', '3']) == 0
    assert (out / '000.png').read_bytes() == b'kept' and os.stat(
        out / '000.png'
    ).st_mtime_ns == mtime
    # image 2 still sampled with seed 3 + 2
    assert (out / '002.png').read_bytes() == first['002.png']
    assert 'restored 1 image(s)' in capsys.readouterr().out


def test_tool_refuses_random_weights_unless_asked(tmp_path, capsys):
    tool = load_tool()
    write_images(str(tmp_path / 'in'), n=1, size=(16, 16))
    args = [str(tmp_path / 'in'), '--out', str(tmp_path / 'out')]
    assert tool.main(args) == 2
    err = capsys.readouterr().err.strip()
    assert err.count('\n') == 0 and err.startswith('restore.py: error: ')
    assert (
        'only degrades images' in err
        and '--checkpoint' in err
        and '--random-weights' in err
    )
    assert not (tmp_path / 'out').exists()
    assert tool.main(args + ['--random-weights']) == 0
    assert (tmp_path / 'out' / '000.png').is_file()


@pytest.mark.parametrize(
    'extra,expected',
    [
        (['--steps', '9'], '--steps'),
        (['--batch-size', '0'], '--batch-size'),
        (['--min-size', 'big'], '--min-size'),
        (['--task', 'det'], "'det'"),
        (['--device', 'bogus'], 'bogus'),
    ],
)
def test_tool_usage_errors_in_one_line(
    tmp_path, restorer_dir, capsys, extra, expected
):
    tool = load_tool()
    write_images(str(tmp_path / 'in'), n=1, size=(16, 16))
    assert (
        tool.main(
            [
                str(tmp_path / 'in'),
                '--out',
                str(tmp_path / 'out'),
                '--restorer',
                restorer_dir,
            ]
            + extra
        )
        == 2
    )
    err = capsys.readouterr().err.strip()
    assert (
        err.count('\n') == 0
        and err.startswith('restore.py: error: ')
        and expected in err
    ), err


def test_tool_bad_checkpoint_is_one_line_without_traceback(tmp_path):
    write_images(str(tmp_path / 'in'), n=1, size=(16, 16))
    (tmp_path / 'bad.pth').write_bytes(b'not a checkpoint')
    proc = run_tool(
        str(tmp_path / 'in'),
        '--out',
        str(tmp_path / 'out'),
        '--checkpoint',
        str(tmp_path / 'bad.pth'),
    )
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert (
        len(lines) == 1
        and lines[0].startswith('restore.py: error: ')
        and 'bad.pth' in lines[0]
    ), proc.stderr
    assert 'Traceback' not in proc.stderr and not (tmp_path / 'out').exists()
