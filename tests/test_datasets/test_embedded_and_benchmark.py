"""The embedded set (deterministic, idempotent, readable by mmpretrain and
mmseg) and benchmark sets."""

import json
import os
import os.path as osp
import time

import cv2
import numpy as np
import pytest
import torch
from mmengine.registry import DefaultScope

from unirestore_mm.datasets import (
    EMBEDDED_CLASSES,
    EMBEDDED_SEG_CLASSES,
    CorruptSampleError,
    PairedImageDataset,
    build_embedded_set,
    load_manifest,
    make_benchmark_set,
)
from unirestore_mm.registry import DATASETS

from .helpers import write_image

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TINY = dict(seed=0, size=32, n_train=20, n_test=10)


def _sources_available():
    """False only when scikit-image is not installed or the loader reports
    Fashion-MNIST's files absent (FileNotFoundError); any other error (a broken
    package import, a corrupt file) fails instead of skipping."""
    import importlib.util

    if importlib.util.find_spec('skimage') is None:
        return False
    from unirestore_mm.datasets import load_fashion_mnist

    try:
        load_fashion_mnist('test')
    except FileNotFoundError:
        return False
    return True


needs_sources = pytest.mark.skipif(
    not _sources_available(),
    reason='scikit-image or Debian dataset-fashion-mnist missing '
    '(bash tools/install.sh installs both)',
)


@pytest.fixture(scope='module')
def embedded(tmp_path_factory):
    if not _sources_available():
        pytest.skip('embedded-set sources missing')
    return build_embedded_set(
        root=str(tmp_path_factory.mktemp('data')), **TINY
    )


@needs_sources
def test_embedded_layout_and_idempotence(embedded, tmp_path):
    with open(osp.join(embedded, 'meta.json')) as f:
        meta = json.load(f)
    assert meta['classes'] == list(EMBEDDED_CLASSES) and meta['n_train'] == 20
    assert len(os.listdir(osp.join(embedded, 'images', 'train'))) == 20
    assert len(os.listdir(osp.join(embedded, 'masks', 'test'))) == 10
    img = cv2.imread(osp.join(embedded, 'images', 'train', '00000.png'))
    mask = cv2.imread(
        osp.join(embedded, 'masks', 'train', '00000.png'), cv2.IMREAD_UNCHANGED
    )
    assert (
        img.shape == (32, 32, 3)
        and mask.shape == (32, 32)
        and mask.dtype == np.uint8
    )
    label = int(
        open(osp.join(embedded, 'meta', 'train.txt')).readline().split()[1]
    )
    # background and the item's class
    assert set(np.unique(mask)) == {0, label + 1}
    assert 0.05 < (mask > 0).mean() < 0.9
    t = time.time()
    assert (
        build_embedded_set(root=osp.dirname(osp.dirname(embedded)), **TINY)
        == embedded
    )
    assert time.time() - t < 0.5  # already built: no work
    # Same seed elsewhere: the same bytes; another seed: other images.
    again = build_embedded_set(root=str(tmp_path / 'a'), **TINY)
    other = build_embedded_set(root=str(tmp_path / 'b'), **dict(TINY, seed=1))
    for rel in (
        'images/train/00003.png',
        'masks/test/00002.png',
        'meta/train.txt',
    ):
        assert (
            open(osp.join(embedded, rel), 'rb').read()
            == open(osp.join(again, rel), 'rb').read()
        )
    assert (
        open(osp.join(embedded, 'meta/train.txt')).read()
        != open(osp.join(other, 'meta/train.txt')).read()
    )
    assert not [
        d
        for d in os.listdir(osp.join(str(tmp_path / 'a'), 'embedded'))
        if d.startswith('.tmp')
    ]


@needs_sources
def test_embedded_read_by_mmpretrain_and_mmseg(embedded):
    # a required dependency: a broken install must fail, not skip
    import mmpretrain  # noqa: F401

    # a required dependency: a broken install must fail, not skip
    import mmseg  # noqa: F401

    root = osp.dirname(osp.dirname(embedded))
    with DefaultScope.overwrite_default_scope('unirestore_mm'):
        cls = DATASETS.build(
            dict(
                type='unirestore_mm.EmbeddedClsDataset',
                split='test',
                root=root,
                **TINY,
                pipeline=[dict(type='LoadImageFromFile')],
            )
        )
        seg = DATASETS.build(
            dict(
                type='unirestore_mm.EmbeddedSegDataset',
                split='train',
                root=root,
                **TINY,
                pipeline=[
                    dict(type='LoadImageFromFile'),
                    dict(type='mmseg.LoadAnnotations'),
                ],
            )
        )
        assert len(cls) == 10 and len(seg) == 20
        assert cls.metainfo['classes'] == EMBEDDED_CLASSES
        assert tuple(seg.metainfo['classes']) == EMBEDDED_SEG_CLASSES
        s = cls[0]
        assert s['img'].shape == (32, 32, 3) and 0 <= int(s['gt_label']) < 10
        m = seg[0]
        assert (
            m['gt_seg_map'].shape == (32, 32) and m['gt_seg_map'].max() <= 10
        )
        # Wrapped with a seeded degradation: same output for an index, label
        # and clean image kept.
        wrapped = DATASETS.build(
            dict(
                type='unirestore_mm.DegradedDataset',
                dataset=dict(
                    type='unirestore_mm.EmbeddedSegDataset',
                    split='test',
                    root=root,
                    **TINY,
                    pipeline=[
                        dict(type='LoadImageFromFile'),
                        dict(type='mmseg.LoadAnnotations'),
                    ],
                ),
                pipeline=[
                    dict(
                        type='unirestore_mm.RandomDegradation',
                        seed=0,
                        resize_short_side=None,
                    ),
                    dict(type='unirestore_mm.PackRestorationInputs'),
                ],
            )
        )
        a, b = wrapped[3], wrapped[3]
        assert torch.equal(a['inputs'], b['inputs']) and not torch.equal(
            a['inputs'], a['data_samples'].gt_img
        )
        assert a['data_samples'].gt_sem_seg.data.shape == (1, 32, 32)
        assert a['data_samples'].metainfo['sample_idx'] == 3


@needs_sources
def test_embedded_configs(embedded):
    # a required dependency: a broken install must fail, not skip
    import mmpretrain  # noqa: F401

    # a required dependency: a broken install must fail, not skip
    import mmseg  # noqa: F401

    from .test_configs_layouts import build

    root = osp.dirname(osp.dirname(embedded))
    tiny = dict(root=root, n_train=20, n_test=10)
    ds, s = build('embedded_cls', 'test_dataloader', root, embedded=tiny)
    assert len(ds) == 10 and s['data_samples'].gt_img.shape == (3, 32, 32)
    ds, s = build('embedded_seg', 'train_dataloader', root, embedded=tiny)
    assert len(ds) == 20 and s['data_samples'].gt_sem_seg.data.shape == (
        1,
        32,
        32,
    )
    ds, s = build(
        'embedded_restoration', 'test_dataloader', root, embedded=tiny
    )
    assert (
        len(ds) == 10
        and s['data_samples'].metainfo['degradation']['severity'] == 3
    )
    ds, s = build(
        'embedded_cls', 'clean_train_dataloader', root, embedded=tiny
    )
    assert s['inputs'].shape == (3, 32, 32)


def test_benchmark_set_from_a_folder(tmp_path):
    src = tmp_path / 'clean'
    for rel in ('a.png', 'sub/b.jpg'):
        write_image(str(src / rel), 12, 12, seed=len(rel))
    (src / 'broken.png').write_bytes(b'not a png')
    out = make_benchmark_set(
        str(src),
        str(tmp_path / 'bench'),
        ['fog', 'rain_streaks'],
        [1, 3],
        seed=0,
    )
    man = load_manifest(out)
    assert len(man['data_list']) == 2 * 2 * 2
    assert man['metainfo']['skipped'][0]['source'] == 'broken.png'
    rec = man['data_list'][0]
    assert set(rec) >= {'img_path', 'gt_path', 'source', 'degradation'}
    assert rec['degradation']['name'] in (
        'fog',
        'rain_streaks',
    ) and isinstance(rec['degradation']['seed'], int)
    # Rebuilding gives the same bytes, whatever the corruption list's order.
    out2 = make_benchmark_set(
        str(src),
        str(tmp_path / 'bench2'),
        ['rain_streaks', 'fog'],
        [3],
        seed=0,
    )
    for r in load_manifest(out2)['data_list']:
        assert (
            open(osp.join(out, r['img_path']), 'rb').read()
            == open(osp.join(out2, r['img_path']), 'rb').read()
        )
    with pytest.raises(FileExistsError):
        make_benchmark_set(str(src), out, ['fog'], [3])
    # Read back, whole and selected.
    ds = PairedImageDataset(
        data_root=out,
        ann_file='manifest.json',
        data_prefix=dict(img_path='', gt_path=''),
        pipeline=[
            dict(type='unirestore_mm.LoadPairedImages'),
            dict(type='unirestore_mm.PackRestorationInputs'),
        ],
    )
    assert len(ds) == 8
    s = ds[0]
    assert (
        s['inputs'].shape == (3, 12, 12)
        and s['data_samples'].metainfo['degradation'] == rec['degradation']
    )
    sel = PairedImageDataset(
        data_root=out,
        ann_file='manifest.json',
        data_prefix=dict(img_path='', gt_path=''),
        select_degradation=dict(name='fog', severity=3),
    )
    assert len(sel) == 2


@needs_sources
def test_benchmark_tool_on_the_embedded_set(embedded, tmp_path):
    out = tmp_path / 'bench'
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        'make_benchmark_set',
        osp.join(REPO, 'tools', 'dataset_converters', 'make_benchmark_set.py'),
    )
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    tool.main(
        [
            '--source',
            embedded,
            '--out',
            str(out),
            '--corruptions',
            'fog',
            'haze_rain',
            '--severities',
            '3',
            '--limit',
            '4',
        ]
    )
    man = load_manifest(str(out))
    assert len(man['data_list']) == 8 and man['metainfo']['classes'] == list(
        EMBEDDED_CLASSES
    )
    assert (
        'gt_label' in man['data_list'][0]
        and 'seg_map_path' in man['data_list'][0]
    )
    # a required dependency: a broken install must fail, not skip
    import mmseg  # noqa: F401

    from .test_configs_layouts import build

    ds, s = build('benchmark_set', 'test_dataloader', str(out))
    assert len(ds) == 8 and s['data_samples'].gt_sem_seg.data.shape == (
        1,
        32,
        32,
    )


def test_corrupt_files_are_reported_skipped_or_fatal(tmp_path):
    for i in range(3):
        write_image(str(tmp_path / f'gt/{i}.png'), 8, 8, seed=i)
    (tmp_path / 'gt' / '1.png').write_bytes(b'\x89PNG garbage')
    pipeline = [
        dict(type='unirestore_mm.LoadPairedImages'),
        dict(type='unirestore_mm.AddGaussianNoise', seed=0),
        dict(type='unirestore_mm.PackRestorationInputs'),
    ]
    skip = PairedImageDataset(
        data_root=str(tmp_path),
        data_prefix=dict(gt_path='gt'),
        pipeline=pipeline,
    )
    s = skip[1]  # the next index instead, with a warning naming the file
    assert s['data_samples'].metainfo['img_path'].endswith('2.png')
    strict = PairedImageDataset(
        data_root=str(tmp_path),
        data_prefix=dict(gt_path='gt'),
        pipeline=pipeline,
        on_corrupt='raise',
    )
    with pytest.raises(CorruptSampleError, match=r'gt/1\.png'):
        strict[1]
    # A bug (not a file problem) is never skipped.
    bad = PairedImageDataset(
        data_root=str(tmp_path),
        data_prefix=dict(gt_path='gt'),
        pipeline=[
            dict(type='unirestore_mm.LoadPairedImages'),
            dict(type='unirestore_mm.AddFog', keys=['nope']),
        ],
    )
    with pytest.raises(CorruptSampleError, match='nope'):
        bad[0]
    with pytest.raises(ValueError, match='on_corrupt'):
        PairedImageDataset(
            data_root=str(tmp_path),
            data_prefix=dict(gt_path='gt'),
            on_corrupt='ignore',
        )


def test_missing_pairs_and_empty_folders(tmp_path):
    write_image(str(tmp_path / 'lq/a.png'))
    write_image(str(tmp_path / 'lq/b.png'))
    write_image(str(tmp_path / 'gt/a.png'))
    with pytest.raises(FileNotFoundError, match='no clean match'):
        PairedImageDataset(data_root=str(tmp_path))
    assert (
        len(PairedImageDataset(data_root=str(tmp_path), missing_gt='skip'))
        == 1
    )
    with pytest.raises(FileNotFoundError, match='not found'):
        PairedImageDataset(
            data_root=str(tmp_path), data_prefix=dict(gt_path='nowhere')
        )
    write_text = tmp_path / 'pairs.txt'
    write_text.write_text('a.png a.png\nb.png\n')
    ds = PairedImageDataset(data_root=str(tmp_path), ann_file='pairs.txt')
    assert (
        len(ds) == 2
        and ds.get_data_info(1)['img_path'] == ds.get_data_info(1)['gt_path']
    )


def test_same_degraded_images_with_any_number_of_workers(tmp_path):
    from mmengine.dataset import pseudo_collate
    from torch.utils.data import DataLoader

    for i in range(6):
        write_image(str(tmp_path / f'gt/{i}.png'), 16, 16, seed=i)
    ds = PairedImageDataset(
        data_root=str(tmp_path),
        data_prefix=dict(gt_path='gt'),
        pipeline=[
            dict(type='unirestore_mm.LoadPairedImages'),
            dict(
                type='unirestore_mm.RandomDegradation',
                corruptions='all',
                seed=123,
                resize_short_side=(8, 12),
            ),
            dict(type='unirestore_mm.PackRestorationInputs'),
        ],
    )

    def run(workers):
        loader = DataLoader(
            ds,
            batch_size=2,
            num_workers=workers,
            collate_fn=pseudo_collate,
            shuffle=False,
        )
        return [x for batch in loader for x in batch['inputs']]

    single, multi = run(0), run(2)
    assert (
        all(torch.equal(a, b) for a, b in zip(single, multi))
        and len(single) == 6
    )
