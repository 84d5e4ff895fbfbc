"""Tiny data, recognizers and configs for the training tests (no download, a
few kB on disk)."""

import copy
import os
import os.path as osp

import cv2
import numpy as np
import torch

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIGS = osp.join(REPO, 'configs')
N_CLASSES = 4


def textured(size=32, seed=0):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    f = rng.uniform(2, 6, 3)
    img = np.stack(
        [
            127 + 100 * np.sin(xx / f[0]),
            127 + 100 * np.cos(yy / f[1]),
            127 + 60 * np.sin((xx + yy) / f[2]),
        ],
        axis=2,
    )
    img += rng.normal(0, 5, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def write_task_data(root, n=8, size=32, n_classes=N_CLASSES):
    """Images, class labels and masks in the layouts mmpretrain's CustomDataset
    and mmseg's BaseSegDataset read."""
    if osp.isfile(osp.join(root, 'done')):
        return root
    for d in ('images', 'masks', 'meta', 'splits'):
        os.makedirs(osp.join(root, d), exist_ok=True)
    lines, ids = [], []
    for i in range(n):
        img = textured(size, seed=i)
        label = i % n_classes
        mask = np.zeros((size, size), np.uint8)
        mask[size // 4 : 3 * size // 4, size // 4 : 3 * size // 4] = label
        cv2.imwrite(osp.join(root, 'images', f'{i:05d}.png'), img)
        cv2.imwrite(osp.join(root, 'masks', f'{i:05d}.png'), mask)
        lines.append(f'{i:05d}.png {label}')
        ids.append(f'{i:05d}')
    with open(osp.join(root, 'meta', 'train.txt'), 'w') as f:
        f.write('\n'.join(lines) + '\n')
    with open(osp.join(root, 'splits', 'train.txt'), 'w') as f:
        f.write('\n'.join(ids) + '\n')
    open(osp.join(root, 'done'), 'w').close()
    return root


def degrade(sample_type):
    return [
        dict(
            type='unirestore_mm.RandomDegradation',
            corruptions=['gaussian_noise', 'contrast'],
            resize_short_side=None,
            seed=0,
        ),
        dict(
            type='unirestore_mm.PackRestorationInputs', sample_type=sample_type
        ),
    ]


def ir_dataset(root):
    return dict(
        type='unirestore_mm.PairedImageDataset',
        data_root=root,
        data_prefix=dict(gt_path='images'),
        pipeline=[dict(type='unirestore_mm.LoadPairedImages')]
        + degrade('base'),
    )


CLASSES = tuple(f'class{i}' for i in range(N_CLASSES))


def cls_dataset(root, classes=CLASSES):
    return dict(
        type='unirestore_mm.DegradedDataset',
        dataset=dict(
            type='mmpretrain.CustomDataset',
            data_root=root,
            ann_file='meta/train.txt',
            data_prefix='images',
            metainfo=dict(classes=classes),
            with_label=True,
            pipeline=[dict(type='LoadImageFromFile')],
        ),
        pipeline=degrade('cls'),
    )


def seg_dataset(root, classes=CLASSES):
    return dict(
        type='unirestore_mm.DegradedDataset',
        dataset=dict(
            type='mmseg.BaseSegDataset',
            data_root=root,
            ann_file='splits/train.txt',
            data_prefix=dict(img_path='images', seg_map_path='masks'),
            img_suffix='.png',
            seg_map_suffix='.png',
            metainfo=dict(classes=classes),
            pipeline=[
                dict(type='LoadImageFromFile'),
                dict(type='mmseg.LoadAnnotations'),
            ],
        ),
        pipeline=degrade('seg'),
    )


# tiny recognizers: random weights, saved by the tests themselves
TINY_CLS = dict(
    type='mmpretrain.ImageClassifier',
    backbone=dict(
        type='mmpretrain.ResNet',
        depth=18,
        stem_channels=8,
        base_channels=8,
        num_stages=2,
        strides=(1, 2),
        dilations=(1, 1),
        out_indices=(1,),
        init_cfg=None,
    ),
    neck=dict(type='mmpretrain.GlobalAveragePooling'),
    head=dict(
        type='mmpretrain.LinearClsHead',
        num_classes=N_CLASSES,
        in_channels=16,
        loss=dict(type='mmpretrain.CrossEntropyLoss'),
    ),
    data_preprocessor=dict(
        type='mmpretrain.ClsDataPreprocessor',
        num_classes=N_CLASSES,
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        to_rgb=True,
    ),
)
TINY_SEG = dict(
    type='mmseg.EncoderDecoder',
    data_preprocessor=dict(
        type='mmseg.SegDataPreProcessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True,
        pad_val=0,
        seg_pad_val=255,
    ),
    backbone=dict(
        type='mmseg.ResNetV1c',
        depth=18,
        stem_channels=8,
        base_channels=8,
        num_stages=2,
        strides=(1, 2),
        dilations=(1, 1),
        out_indices=(1,),
        norm_cfg=dict(type='BN'),
        init_cfg=None,
    ),
    decode_head=dict(
        type='mmseg.FCNHead',
        in_channels=16,
        in_index=0,
        channels=8,
        num_convs=1,
        concat_input=False,
        num_classes=N_CLASSES,
        norm_cfg=dict(type='BN'),
        align_corners=False,
        loss_decode=dict(
            type='mmseg.CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0
        ),
    ),
    train_cfg=dict(),
    test_cfg=dict(mode='whole'),
)


def save_recognizer(cfg, path, classes=CLASSES, seed=0, scope=None):
    """Build a tiny recognizer with random weights and save {'state_dict',
    'meta'} (weights_only-loadable)."""
    from mmengine.registry import MODELS, DefaultScope

    scope = scope or cfg['type'].split('.')[0]
    import importlib

    importlib.import_module(f'{scope}.models')
    torch.manual_seed(seed)
    with DefaultScope.overwrite_default_scope(scope):
        model = MODELS.build(copy.deepcopy(cfg))
    os.makedirs(osp.dirname(path), exist_ok=True)
    torch.save(
        {
            'state_dict': model.state_dict(),
            'meta': {'dataset_meta': {'classes': list(classes)}},
        },
        path,
    )
    return path


def tiny_runtime(cfg, work_dir, max_iters, interval=None):
    """Shrink a recipe to a CPU smoke run: work dir, iterations, no
    validation/test, quick logs."""
    cfg.work_dir = str(work_dir)
    cfg.train_cfg.max_iters = max_iters
    for key in (
        'val_dataloader',
        'val_cfg',
        'val_evaluator',
        'test_dataloader',
        'test_cfg',
        'test_evaluator',
    ):
        cfg[key] = None
    cfg.train_cfg.pop('val_interval', None)
    cfg.train_dataloader.num_workers = 0
    cfg.train_dataloader.persistent_workers = False
    cfg.default_hooks.logger.interval = 1
    cfg.log_level = 'WARNING'
    if interval is not None:
        cfg.default_hooks.checkpoint.interval = interval
    cfg.env_cfg.dist_cfg = dict(backend='gloo')
    return cfg


def load_cfg(path):
    """``Config.fromfile`` without yapf formatting of the dumped config
    (seconds per Runner for the larger recipes; mmengine 0.10.7 ignores
    ``format_python_code=False`` given to ``fromfile``)."""
    from mmengine.config import Config

    cfg = Config.fromfile(path)
    object.__setattr__(cfg, '_format_python_code', False)
    return cfg
