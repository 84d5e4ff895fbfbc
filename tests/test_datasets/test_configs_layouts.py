"""Every dataset config in configs/_base_/datasets on tiny files written in its
documented layout."""

import copy
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope

from unirestore_mm.registry import DATASETS

from .helpers import write_image, write_mask, write_text

CFG_DIR = osp.join(
    osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))),
    'configs',
    '_base_',
    'datasets',
)


def _patch(obj, root, crop=None, embedded=None):
    """Point every data_root at ``root``, shrink crops, and make embedded sets
    tiny."""
    if isinstance(obj, dict):
        if 'data_root' in obj:
            obj['data_root'] = root
        if crop and obj.get('type') in (
            'unirestore_mm.PairedRandomCrop',
            'mmseg.RandomCrop',
        ):
            obj['crop_size'] = crop
        if obj.get('type') == 'mmseg.RandomResize':
            obj['scale'] = (64, 32)
        if embedded and str(obj.get('type', '')).startswith(
            'unirestore_mm.Embedded'
        ):
            obj.update(embedded)
        for v in obj.values():
            _patch(v, root, crop, embedded)
    elif isinstance(obj, list):
        for v in obj:
            _patch(v, root, crop, embedded)
    return obj


def build(cfg_name, loader, root, crop=None, embedded=None):
    cfg = Config.fromfile(osp.join(CFG_DIR, cfg_name + '.py'))
    ds_cfg = _patch(
        copy.deepcopy(cfg[loader]['dataset']), str(root), crop, embedded
    )
    with DefaultScope.overwrite_default_scope('unirestore_mm'):
        ds = DATASETS.build(ds_cfg)
        sample = ds[0]
    return ds, sample


def check_pair(sample, shape=None):
    inputs, ds = sample['inputs'], sample['data_samples']
    assert (
        isinstance(inputs, torch.Tensor)
        and inputs.ndim == 3
        and inputs.shape[0] == 3
    )
    assert ds.gt_img.shape == inputs.shape
    if shape is not None:
        assert tuple(inputs.shape[1:]) == tuple(shape)


def test_div2k(tmp_path):
    for i in (1, 2):
        write_image(
            str(tmp_path / f'DIV2K_train_HR/{i:04d}.png'), 40, 48, seed=i
        )
    write_image(str(tmp_path / 'DIV2K_valid_HR/0801.png'), 40, 48)
    ds, s = build('div2k', 'train_dataloader', tmp_path, crop=16)
    assert len(ds) == 2
    check_pair(s, (16, 16))
    assert s['data_samples'].metainfo['degradation']['severity'] in range(1, 6)
    ds, s = build('div2k', 'val_dataloader', tmp_path, crop=16)
    check_pair(s, (16, 16))
    rec = s['data_samples'].metainfo['degradation']
    assert rec['severity'] == 3
    # seeded: same every time
    assert rec == ds[0]['data_samples'].metainfo['degradation']
    assert torch.equal(s['inputs'], ds[0]['inputs'])


def test_rain100l(tmp_path):
    for split in ('train', 'test'):
        for i in (1, 2, 3):
            write_image(
                str(tmp_path / f'{split}/input/{i}.png'), 20, 20, seed=i
            )
            write_image(
                str(tmp_path / f'{split}/target/{i}.png'), 20, 20, seed=10 + i
            )
    ds, s = build('rain100l', 'train_dataloader', tmp_path, crop=8)
    assert len(ds) == 3
    check_pair(s, (8, 8))
    ds, s = build('rain100l', 'test_dataloader', tmp_path)
    check_pair(s, (20, 20))
    assert s['data_samples'].metainfo['img_path'].endswith('test/input/1.png')
    assert s['data_samples'].metainfo['gt_path'].endswith('test/target/1.png')


def test_reside_sots(tmp_path):
    for name in ('0001_0.8_0.2', '0001_0.9_0.16', '0002_1_0.2'):
        write_image(str(tmp_path / f'hazy/{name}.jpg'), 12, 16)
    for i in (1, 2):
        write_image(str(tmp_path / f'gt/{i:04d}.png'), 12, 16)
    ds, s = build('reside_sots', 'test_dataloader', tmp_path)
    assert len(ds) == 3
    check_pair(s, (12, 16))
    assert [
        osp.basename(ds.get_data_info(i)['gt_path']) for i in range(3)
    ] == ['0001.png'] * 2 + ['0002.png']


def test_snow100k(tmp_path):
    for name in ('beautiful_smile_00003', 'city_read_00010'):
        write_image(
            str(tmp_path / f'test/Snow100K-L/synthetic/{name}.jpg'), 12, 12
        )
        write_image(str(tmp_path / f'test/Snow100K-L/gt/{name}.jpg'), 12, 12)
    ds, s = build('snow100k', 'test_dataloader', tmp_path)
    assert len(ds) == 2
    check_pair(s, (12, 12))


def test_cbsd68(tmp_path):
    for i in range(3):
        write_image(
            str(tmp_path / f'original_png/{i:04d}.png'), 10, 10, seed=i
        )
        write_image(str(tmp_path / f'noisy25/{i:04d}.png'), 10, 10, seed=5 + i)
    ds, s = build('cbsd68', 'test_dataloader', tmp_path)
    assert len(ds) == 3
    check_pair(s, (10, 10))


def test_gopro(tmp_path):
    for split, scenes in (
        ('train', ['GOPR0372_07_00']),
        ('test', ['GOPR0384_11_00', 'GOPR0385_11_01']),
    ):
        for scene in scenes:
            for frame in ('000001', '000002'):
                for kind in ('blur', 'blur_gamma', 'sharp'):
                    write_image(
                        str(tmp_path / f'{split}/{scene}/{kind}/{frame}.png'),
                        16,
                        16,
                    )
    ds, s = build('gopro', 'train_dataloader', tmp_path, crop=8)
    assert len(ds) == 2
    check_pair(s, (8, 8))
    ds, s = build('gopro', 'test_dataloader', tmp_path)
    assert len(ds) == 4
    info = ds.get_data_info(3)
    assert info['img_path'].endswith('GOPR0385_11_01/blur/000002.png')
    assert info['gt_path'].endswith('GOPR0385_11_01/sharp/000002.png')


def test_imagenet_val_subset(tmp_path):
    # a required dependency: a broken install must fail, not skip
    import mmpretrain  # noqa: F401

    lines = []
    for i, label in enumerate((65, 970, 3), 1):
        name = f'ILSVRC2012_val_{i:08d}.JPEG'
        write_image(
            str(tmp_path / 'val' / name).replace('.JPEG', '.jpg'),
            20,
            24,
            seed=i,
        )
        (tmp_path / 'val' / name.replace('.JPEG', '.jpg')).rename(
            tmp_path / 'val' / name
        )
        lines.append(f'{name} {label}')
    write_text(str(tmp_path / 'meta/val.txt'), '\n'.join(lines) + '\n')
    ds, s = build('imagenet_val_subset', 'test_dataloader', tmp_path)
    assert len(ds) == 3
    check_pair(s, (224, 224))
    assert int(s['data_samples'].gt_label) == 65
    assert s['data_samples'].metainfo['degradation']['severity'] == 3
    assert len(ds.metainfo['classes']) == 1000


def test_cub200(tmp_path):
    # a required dependency: a broken install must fail, not skip
    import mmpretrain  # noqa: F401

    files = [
        '001.Black_footed_Albatross/Black_Footed_Albatross_0001_796111.jpg',
        '001.Black_footed_Albatross/Black_Footed_Albatross_0002_55.jpg',
        '002.Laysan_Albatross/Laysan_Albatross_0001_545.jpg',
    ]
    for i, f in enumerate(files):
        write_image(str(tmp_path / 'images' / f), 20, 20, seed=i)
    write_text(
        str(tmp_path / 'images.txt'),
        ''.join(f'{i + 1} {f}\n' for i, f in enumerate(files)),
    )
    write_text(str(tmp_path / 'image_class_labels.txt'), '1 1\n2 1\n3 2\n')
    write_text(str(tmp_path / 'train_test_split.txt'), '1 1\n2 0\n3 0\n')
    ds, s = build('cub200', 'test_dataloader', tmp_path)
    assert len(ds) == 2
    check_pair(s, (224, 224))
    assert int(s['data_samples'].gt_label) == 0
    ds, s = build('cub200', 'train_dataloader', tmp_path)
    assert len(ds) == 1


def _cityscapes_files(root, img_dir, img_suffix, n=2, clean=False):
    for split in ('train', 'val'):
        for i in range(n):
            stem = f'aachen/aachen_{i:06d}_000019'
            write_image(
                str(root / f'{img_dir}/{split}/{stem}{img_suffix}'),
                16,
                32,
                seed=i,
            )
            write_mask(
                str(root / f'gtFine/{split}/{stem}_gtFine_labelTrainIds.png'),
                16,
                32,
            )
            if clean:
                write_image(
                    str(root / f'leftImg8bit/{split}/{stem}_leftImg8bit.png'),
                    16,
                    32,
                    seed=9 + i,
                )


def test_cityscapes(tmp_path):
    # a required dependency: a broken install must fail, not skip
    import mmseg  # noqa: F401

    _cityscapes_files(tmp_path, 'leftImg8bit', '_leftImg8bit.png')
    ds, s = build('cityscapes', 'val_dataloader', tmp_path)
    assert len(ds) == 2
    check_pair(s, (16, 32))
    assert tuple(s['data_samples'].gt_sem_seg.data.shape) == (1, 16, 32)
    assert len(ds.metainfo['classes']) == 19
    ds, s = build('cityscapes', 'train_dataloader', tmp_path, crop=(16, 16))
    check_pair(s, (16, 16))


def test_foggy_cityscapes(tmp_path):
    # a required dependency: a broken install must fail, not skip
    import mmseg  # noqa: F401

    _cityscapes_files(
        tmp_path,
        'leftImg8bit_foggy',
        '_leftImg8bit_foggy_beta_0.02.png',
        clean=True,
    )
    ds, s = build('foggy_cityscapes', 'val_dataloader', tmp_path)
    assert len(ds) == 2
    check_pair(s, (16, 32))
    meta = s['data_samples'].metainfo
    assert meta['gt_path'].endswith(
        'leftImg8bit/val/aachen/aachen_000000_000019_leftImg8bit.png'
    )
    assert not torch.equal(s['inputs'], s['data_samples'].gt_img)


def test_acdc(tmp_path):
    # a required dependency: a broken install must fail, not skip
    import mmseg  # noqa: F401

    for cond in ('fog', 'night', 'rain', 'snow'):
        stem = 'GOPR0475/GOPR0475_frame_000041'
        write_image(
            str(tmp_path / f'rgb_anon/{cond}/val/{stem}_rgb_anon.png'), 16, 16
        )
        write_mask(
            str(tmp_path / f'gt/{cond}/val/{stem}_gt_labelTrainIds.png'),
            16,
            16,
        )
    ds, s = build('acdc', 'test_dataloader', tmp_path)
    assert len(ds) == 4
    assert (
        tuple(s['inputs'].shape) == (3, 16, 16)
        and 'gt_img' not in s['data_samples']
    )
    assert s['data_samples'].gt_sem_seg.data.shape[-2:] == (16, 16)


def test_corrupt_file_in_a_wrapped_mmseg_dataset(tmp_path):
    # a required dependency: a broken install must fail, not skip
    import mmseg  # noqa: F401

    from unirestore_mm.datasets import CorruptSampleError

    _cityscapes_files(tmp_path, 'leftImg8bit', '_leftImg8bit.png', n=3)
    bad = (
        tmp_path
        / 'leftImg8bit/val/aachen/aachen_000001_000019_leftImg8bit.png'
    )
    bad.write_bytes(b'\x89PNG broken')
    cfg = Config.fromfile(osp.join(CFG_DIR, 'cityscapes.py'))
    ds_cfg = _patch(copy.deepcopy(cfg.val_dataloader.dataset), str(tmp_path))
    with DefaultScope.overwrite_default_scope('unirestore_mm'):
        strict = DATASETS.build(ds_cfg)
        with pytest.raises(
            CorruptSampleError, match='aachen_000001_000019_leftImg8bit.png'
        ):
            strict[1]
        ds_cfg['on_corrupt'] = 'skip'
        lenient = DATASETS.build(ds_cfg)
        s = lenient[1]  # the next sample, and a warning naming the file
        assert (
            s['data_samples']
            .metainfo['img_path']
            .endswith('aachen_000002_000019_leftImg8bit.png')
        )
