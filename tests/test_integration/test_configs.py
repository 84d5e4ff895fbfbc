"""Every shipped config builds, and its model runs ``train_step`` and
``predict`` on tiny random data.

Only the model is built (no data set): shapes follow the embedded set (32x32,
10 classes / 11 segmentation classes).  No weights are downloaded: the configs
set ``pretrained=None`` / ``init_cfg=None``.
"""

import glob
import os.path as osp

import pytest
import torch
from integration_utils import REPO
from mmengine.config import Config
from mmengine.optim import OptimWrapper
from mmengine.registry import MODELS, DefaultScope, init_default_scope
from mmengine.structures import BaseDataElement, PixelData

CONFIG_DIRS = ('unirestore', 'mmpretrain', 'mmseg')
# the training recipes' smoke and paper-scale versions, the joint and
# frozen-recognizer recipes and the shared stage runtime are tested with the
# training code (tests/test_training); the ImageNet EfficientNet-Lite configs
# (1000 classes, pretrained weights) in
# tests/test_models/test_efficientnet_lite.py
OWNED_ELSEWHERE = (
    '20it',
    'sd-turbo',
    'joint',
    'frozen',
    'new-prompt',
    'clean-embedded',
    'efficientnet-lite',
)


def shipped_configs():
    out = []
    for d in CONFIG_DIRS:
        for path in sorted(glob.glob(osp.join(REPO, 'configs', d, '*.py'))):
            name = osp.basename(path)
            if any(k in name for k in OWNED_ELSEWHERE):
                continue
            out.append(osp.relpath(path, REPO))
    return out


def build_model(cfg):
    init_default_scope(cfg.get('default_scope', 'unirestore_mm'))
    model_cfg = cfg.model.copy()
    if cfg.get('data_preprocessor') is not None:
        model_cfg.setdefault('data_preprocessor', cfg.data_preprocessor)
    model = MODELS.build(model_cfg)
    model.init_weights()
    return model


def random_batch(kind, n=2, size=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    inputs = [
        torch.randint(0, 256, (3, size, size), dtype=torch.uint8, generator=g)
        for _ in range(n)
    ]
    samples = []
    for i in range(n):
        meta = dict(
            img_shape=(size, size),
            ori_shape=(size, size),
            pad_shape=(size, size),
        )
        if kind == 'restore':
            s = BaseDataElement(
                gt_img=torch.randint(
                    0, 256, (3, size, size), dtype=torch.uint8, generator=g
                ),
                metainfo=meta,
            )
        elif kind == 'cls':
            from mmpretrain.structures import DataSample

            s = DataSample(metainfo=meta).set_gt_label(i % 10)
        else:
            from mmseg.structures import SegDataSample

            s = SegDataSample(metainfo=meta)
            s.gt_sem_seg = PixelData(
                data=torch.randint(0, 11, (1, size, size), generator=g)
            )
        samples.append(s)
    return dict(inputs=inputs, data_samples=samples)


@pytest.mark.parametrize('config', shipped_configs())
def test_config_trains_and_predicts(config):
    kind = {'unirestore': 'restore', 'mmpretrain': 'cls', 'mmseg': 'seg'}[
        config.split(osp.sep)[1]
    ]
    if kind == 'cls':
        # a required dependency: a broken install must fail, not skip
        import mmpretrain  # noqa: F401
    if kind == 'seg':
        # a required dependency: a broken install must fail, not skip
        import mmseg  # noqa: F401
    cfg = Config.fromfile(osp.join(REPO, config))
    with DefaultScope.overwrite_default_scope(
        cfg.get('default_scope', 'unirestore_mm')
    ):
        torch.manual_seed(0)
        model = build_model(cfg)
        params = [p for p in model.parameters() if p.requires_grad]
        wrapper = OptimWrapper(torch.optim.SGD(params, lr=1e-3))
        model.train()
        log = model.train_step(random_batch(kind), wrapper)
        assert torch.isfinite(log['loss']), log
        model.eval()
        with torch.no_grad():
            out = model.val_step(random_batch(kind, seed=1))
    assert len(out) == 2
    if kind == 'restore':
        assert out[0].pred_img.shape == (3, 32, 32)
    elif kind == 'cls':
        assert out[0].pred_score.shape == (10,)
    else:
        assert out[0].pred_sem_seg.data.shape == (1, 32, 32)
    # the restorer in front of the backbone is frozen and restores
    if kind != 'restore':
        backbone = model.backbone
        assert type(backbone).__name__ == 'RestoredBackbone'
        assert not any(p.requires_grad for p in backbone.restorer.parameters())
        assert not backbone.restorer.training


def test_all_families_are_shipped():
    names = ' '.join(shipped_configs())
    for needle in (
        'resnet18',
        'vit',
        'pspnet',
        'segformer',
        'stage1_unirestore-tiny_1xb16',
        'stage2-ir_unirestore-tiny',
    ):
        assert needle in names, needle
