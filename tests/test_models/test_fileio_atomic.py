"""The package's one atomic writer (``unirestore_mm.utils.fileio``): a failed
write, at any point, leaves the old file as it was and no temporary file; a
successful one leaves the whole new file; the package's writers use it."""

import json
import os
import os.path as osp
import pickle

import cv2
import numpy as np
import pytest
import torch

from unirestore_mm.utils import fileio
from unirestore_mm.utils.fileio import (
    atomic_imwrite,
    atomic_save_safetensors,
    atomic_torch_save,
    atomic_write,
    atomic_write_bytes,
    atomic_write_text,
)

OLD = b'the old, complete content\n'


def listing(folder):
    return sorted(os.listdir(folder))


@pytest.fixture
def old_file(tmp_path):
    path = tmp_path / 'out.bin'
    path.write_bytes(OLD)
    return path


# -- successful writes --------------------------------------------------------
def test_each_writer_writes_the_whole_file_and_nothing_else(tmp_path):
    folder = tmp_path / 'new' / 'sub'  # created on the way
    big = os.urandom(3 << 20)
    assert atomic_write_bytes(big, str(folder / 'a.bin')) == str(
        folder / 'a.bin'
    )
    assert (folder / 'a.bin').read_bytes() == big
    atomic_write_text('héllo\nwörld\n', folder / 'b.txt')  # os.PathLike too
    assert (folder / 'b.txt').read_text(encoding='utf-8') == 'héllo\nwörld\n'
    obj = {
        'w': torch.arange(10_000, dtype=torch.float32),
        'i': 3,
        'n': [1.5, 'x'],
    }
    atomic_torch_save(obj, str(folder / 'c.pth'))
    back = torch.load(str(folder / 'c.pth'), weights_only=True)
    assert (
        torch.equal(back['w'], obj['w'])
        and back['i'] == 3
        and back['n'] == [1.5, 'x']
    )
    from safetensors import safe_open

    # non-contiguous, needs grad
    t = {'a': torch.randn(4, 5).t(), 'b': torch.ones(3, requires_grad=True)}
    atomic_save_safetensors(
        t, str(folder / 'd.safetensors'), metadata={'format': 'pt', 'iter': 7}
    )
    with safe_open(str(folder / 'd.safetensors'), 'pt') as f:
        assert f.metadata() == {'format': 'pt', 'iter': '7'}
        assert torch.equal(f.get_tensor('a'), t['a']) and torch.equal(
            f.get_tensor('b'), t['b'].detach()
        )
    img = np.random.default_rng(0).integers(0, 256, (9, 13, 3), dtype=np.uint8)
    atomic_imwrite(img, str(folder / 'e.png'))
    assert np.array_equal(
        cv2.imread(str(folder / 'e.png'), cv2.IMREAD_UNCHANGED), img
    )
    img16 = (img.astype(np.uint16) * 257)[..., 0]
    atomic_imwrite(img16, str(folder / 'f.png'))
    assert np.array_equal(
        cv2.imread(str(folder / 'f.png'), cv2.IMREAD_UNCHANGED), img16
    )
    atomic_imwrite(
        img,
        str(folder / 'g'),
        params=[cv2.IMWRITE_JPEG_QUALITY, 100],
        ext='.jpg',
    )
    # a JPEG, whatever the name says
    assert open(folder / 'g', 'rb').read(3) == b'\xff\xd8\xff'
    assert listing(folder) == [
        'a.bin',
        'b.txt',
        'c.pth',
        'd.safetensors',
        'e.png',
        'f.png',
        'g',
    ]


def test_new_files_get_the_usual_permissions(tmp_path):
    ref = tmp_path / 'ref.txt'
    with open(ref, 'w'):
        pass
    atomic_write_text('x', str(tmp_path / 'new.txt'))
    assert (
        os.stat(tmp_path / 'new.txt').st_mode & 0o777
        == os.stat(ref).st_mode & 0o777
    )


def test_overwrite_replaces_the_old_content(old_file):
    atomic_write_bytes(b'new', str(old_file))
    assert old_file.read_bytes() == b'new'
    assert listing(old_file.parent) == ['out.bin']


# -- failures: the old file stays, no temporary file --------------------------
def _boom(*args, **kwargs):
    raise OSError(28, 'No space left on device (injected)')


@pytest.mark.parametrize('where', ['replace', 'fsync', 'write'])
def test_a_failure_at_any_step_keeps_the_old_file_and_leaves_no_temporary(
    old_file, monkeypatch, where
):
    if where == 'replace':
        monkeypatch.setattr(fileio.os, 'replace', _boom)
    elif where == 'fsync':
        monkeypatch.setattr(fileio.os, 'fsync', _boom)
    with pytest.raises(OSError, match='injected'):
        if where == 'write':
            atomic_write(
                str(old_file), lambda f: (f.write(b'half a fi'), _boom())
            )
        else:
            atomic_write_bytes(b'the new content', str(old_file))
    assert old_file.read_bytes() == OLD
    assert listing(old_file.parent) == ['out.bin']


def test_keyboard_interrupt_mid_write_keeps_the_old_file(old_file):
    def write(f):
        f.write(b'x' * 100_000)
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        atomic_write(str(old_file), write)
    assert old_file.read_bytes() == OLD
    assert listing(old_file.parent) == ['out.bin']


def test_torch_save_failing_half_way_keeps_the_old_checkpoint(tmp_path):
    path = tmp_path / 'iter_1.pth'
    atomic_torch_save({'w': torch.zeros(3)}, str(path))
    # the tensor is streamed out, then pickling the lambda fails
    with pytest.raises((pickle.PicklingError, AttributeError, TypeError)):
        atomic_torch_save(
            {'w': torch.ones(100_000), 'bad': lambda: 0}, str(path)
        )
    assert torch.equal(
        torch.load(str(path), weights_only=True)['w'], torch.zeros(3)
    )
    assert listing(tmp_path) == ['iter_1.pth']


def test_unencodable_image_fails_before_writing(old_file):
    with pytest.raises(ValueError, match='out.bin'):
        atomic_imwrite(
            np.zeros((4, 4, 3), np.uint8), str(old_file), ext='.nosuchformat'
        )
    with pytest.raises(ValueError, match='no extension'):
        atomic_imwrite(
            np.zeros((4, 4, 3), np.uint8), str(old_file.parent / 'noext')
        )
    assert old_file.read_bytes() == OLD
    assert listing(old_file.parent) == ['out.bin']


def test_bad_arguments_are_clear(tmp_path):
    (tmp_path / 'dir').mkdir()
    with pytest.raises(IsADirectoryError, match='dir'):
        atomic_write_bytes(b'x', str(tmp_path / 'dir'))
    with pytest.raises(TypeError, match='bytes'):
        atomic_write_bytes('text', str(tmp_path / 'x'))
    with pytest.raises(TypeError, match='str'):
        atomic_write_text(b'bytes', str(tmp_path / 'x'))
    with pytest.raises(TypeError, match='not tensors'):
        atomic_save_safetensors(
            {'a': np.zeros(2)}, str(tmp_path / 'x.safetensors')
        )
    assert listing(tmp_path) == ['dir'] and listing(tmp_path / 'dir') == []


# -- the package's writers go through it --------------------------------------
def test_engine_names_are_the_helper():
    from unirestore_mm.engine import checkpoint

    assert checkpoint.atomic_write_bytes is atomic_write_bytes
    assert checkpoint.atomic_torch_save is atomic_torch_save
    assert checkpoint.atomic_save_safetensors is atomic_save_safetensors


def test_save_pretrained_failing_keeps_the_previous_folder(
    tmp_path, monkeypatch
):
    from unirestore_mm.models import UniRestore
    from unirestore_mm.models.unirestore import CONFIG_NAME, WEIGHTS_NAME

    torch.manual_seed(0)
    model = UniRestore(preset='tiny')
    model.save_pretrained(str(tmp_path))
    before = {
        n: (tmp_path / n).read_bytes() for n in (CONFIG_NAME, WEIGHTS_NAME)
    }
    model.add_task('det')  # both files would change
    monkeypatch.setattr(fileio.os, 'replace', _boom)
    with pytest.raises(OSError, match='injected'):
        model.save_pretrained(str(tmp_path))
    assert {n: (tmp_path / n).read_bytes() for n in before} == before
    assert listing(tmp_path) == sorted(before)
    # the weights go through, writing the config fails: the old config stays
    # whole
    monkeypatch.undo()
    real_replace = os.replace
    monkeypatch.setattr(
        fileio.os,
        'replace',
        lambda a, b: _boom()
        if b.endswith(CONFIG_NAME)
        else real_replace(a, b),
    )
    with pytest.raises(OSError, match='injected'):
        model.save_pretrained(str(tmp_path))
    assert (tmp_path / CONFIG_NAME).read_bytes() == before[CONFIG_NAME]
    assert listing(tmp_path) == sorted(before)
    monkeypatch.undo()
    model.save_pretrained(str(tmp_path))
    assert (
        json.loads((tmp_path / CONFIG_NAME).read_text())['tasks'][-1] == 'det'
    )
    assert listing(tmp_path) == sorted(before)


def test_visualizer_out_file_is_written_atomically(tmp_path, monkeypatch):
    from mmengine.structures import BaseDataElement

    from unirestore_mm.visualization.visualizer import RestorationVisualizer

    vis = RestorationVisualizer(name=f'atomic_{os.getpid()}_{id(tmp_path)}')
    sample = BaseDataElement(
        pred_img=torch.rand(3, 8, 8), gt_img=torch.rand(3, 8, 8)
    )
    image = np.zeros((8, 8, 3), np.uint8)
    out = tmp_path / 'v.png'
    out.write_bytes(OLD)
    monkeypatch.setattr(fileio.os, 'replace', _boom)
    with pytest.raises(OSError, match='injected'):
        vis.add_datasample('x', image, sample, out_file=str(out))
    assert out.read_bytes() == OLD and listing(tmp_path) == ['v.png']
    monkeypatch.undo()
    drawn = vis.add_datasample('x', image, sample, out_file=str(out))
    assert np.array_equal(cv2.imread(str(out))[..., ::-1], drawn)


def test_author_converter_output_is_atomic(tmp_path, monkeypatch):
    from unirestore_mm.models.author_checkpoint import main

    torch.save(
        {'state_dict': {'model.controller.conv_in.weight': torch.ones(2)}},
        tmp_path / 's1.ckpt',
    )
    out = tmp_path / 'out.safetensors'
    out.write_bytes(OLD)
    monkeypatch.setattr(fileio.os, 'replace', _boom)
    with pytest.raises(OSError, match='injected'):
        main([str(tmp_path / 's1.ckpt'), '-o', str(out)])
    assert out.read_bytes() == OLD and listing(tmp_path) == [
        'out.safetensors',
        's1.ckpt',
    ]
    monkeypatch.undo()
    main([str(tmp_path / 's1.ckpt'), '-o', str(out)])
    from safetensors.torch import load_file

    assert torch.equal(
        load_file(str(out))['controller.conv_in.weight'], torch.ones(2)
    )
    assert not osp.exists(str(out) + '.tmp')
