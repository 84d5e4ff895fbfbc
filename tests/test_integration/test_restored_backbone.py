"""RestoredBackbone: normalisation round trip, freezing, eval-only restoring,
scopes, errors at build time."""

import pytest
import torch
from integration_utils import MEAN, STD
from mmengine.registry import DefaultScope
from torch import nn

from unirestore_mm.models import RestoredBackbone, UniRestore
from unirestore_mm.registry import MODELS


@MODELS.register_module(force=True)
class _RecordingNet(nn.Module):
    """Returns its input as a one-element tuple (like mmseg/mmpretrain
    backbones) and records it."""

    def __init__(self, channels=3):
        super().__init__()
        self.scale = nn.Parameter(torch.ones(1))
        self.channels = channels
        self.seen = None

    def forward(self, x):
        self.seen = x.detach().clone()
        return (x * self.scale,)


def make(**kw):
    args = dict(
        type='unirestore_mm.RestoredBackbone',
        backbone_type='unirestore_mm._RecordingNet',
        mean=MEAN,
        std=STD,
        bgr_to_rgb=True,
    )
    args.update(kw)
    return MODELS.build(args)


def test_backbone_sees_renormalised_restored_image():
    torch.manual_seed(0)
    m = make(task='cls', seed=5).eval()
    rgb = torch.rand(2, 3, 20, 28)
    x = (rgb * 255 - torch.tensor(MEAN).view(1, 3, 1, 1)) / torch.tensor(
        STD
    ).view(1, 3, 1, 1)
    out = m(x)[0]
    assert out.shape == x.shape
    # eval: every image gets its own generator seeded with `seed` (its result
    # does not depend on the batch)
    expected = m.restorer.restore(
        rgb,
        task='cls',
        generator=[torch.Generator().manual_seed(5) for _ in range(2)],
        min_size=None,
    )
    expected = (
        expected * 255 - torch.tensor(MEAN).view(1, 3, 1, 1)
    ) / torch.tensor(STD).view(1, 3, 1, 1)
    torch.testing.assert_close(m.backbone.seen, expected, atol=1e-4, rtol=1e-4)


def test_bgr_order_when_preprocessor_does_not_flip():
    a = make(bgr_to_rgb=True).eval()
    b = make(bgr_to_rgb=False, restorer=a.restorer).eval()
    rgb = torch.rand(1, 3, 16, 16)
    norm = lambda img: (  # noqa: E731
        img * 255 - torch.tensor(MEAN).view(1, 3, 1, 1)
    ) / torch.tensor(STD).view(1, 3, 1, 1)
    a(norm(rgb))
    b(norm(rgb.flip(1)))  # BGR input, normalised channel-wise in BGR order
    torch.testing.assert_close(
        b.backbone.seen,
        norm(
            a.backbone.seen.mul(torch.tensor(STD).view(1, 3, 1, 1))
            .add(torch.tensor(MEAN).view(1, 3, 1, 1))
            .div(255)
            .flip(1)
        ),
        atol=1e-4,
        rtol=1e-4,
    )
    torch.testing.assert_close(
        b.unnormalize(b.normalize(rgb)), rgb, atol=1e-5, rtol=1e-5
    )


def test_frozen_restorer_gets_no_gradient_and_stays_in_eval():
    m = make().train()
    assert not m.restorer.training and m.backbone.training
    x = torch.randn(2, 3, 16, 16)
    m(x)[0].sum().backward()
    assert m.backbone.scale.grad is not None
    assert all(p.grad is None for p in m.restorer.parameters())


def test_joint_training_reaches_the_restorer():
    m = make(
        freeze_restorer=False, restorer_trainable=['tfa', 'prompts']
    ).train()
    assert m.restorer.training
    m(torch.randn(1, 3, 16, 16))[0].sum().backward()
    assert m.restorer.prompts.prompts['cls'].grad is not None
    assert all(p.grad is None for p in m.restorer.cfrm.parameters())


def test_restore_in_eval_only():
    m = make(restore_in_eval_only=True).train()
    x = torch.randn(1, 3, 16, 16)
    m(x)
    torch.testing.assert_close(m.backbone.seen, x)
    m.eval()
    m(x)
    assert not torch.allclose(m.backbone.seen, x)


def test_attribute_delegation_and_state_dict():
    m = make()
    assert m.channels == 3  # the wrapped backbone's attribute
    keys = list(m.state_dict())
    assert any(k.startswith('restorer.cfrm.') for k in keys)
    # the frozen prior stays in its folder
    assert not any(k.startswith('restorer.prior.') for k in keys)
    assert 'mean' not in keys


def test_explicit_backbone_form_and_module_restorer():
    r = UniRestore(preset='tiny')
    m = RestoredBackbone(
        backbone=dict(type='unirestore_mm._RecordingNet'),
        restorer=r,
        mean=MEAN,
        std=STD,
        to_rgb=True,
    )
    assert m.restorer is r and m.bgr_to_rgb


def test_restorer_checkpoint_loaded_and_checked(tmp_path):
    r = UniRestore(preset='tiny')
    with torch.no_grad():
        r.prompts.prompts['cls'].fill_(0.5)
    # as saved inside a recognizer around RestoredBackbone: keys under
    # 'backbone.restorer.'
    torch.save(
        dict(
            state_dict={
                f'backbone.restorer.{k}': v for k, v in r.state_dict().items()
            }
        ),
        tmp_path / 'rec.pth',
    )
    m = make(restorer_checkpoint=str(tmp_path / 'rec.pth'))
    assert float(m.restorer.prompts.prompts['cls'].mean()) == 0.5
    with pytest.raises(ValueError, match='do not match'):
        make(
            restorer=dict(preset='tiny', tasks=['ir', 'cls', 'seg', 'det']),
            restorer_checkpoint=str(tmp_path / 'rec.pth'),
        )


@pytest.mark.parametrize(
    'kwargs,match',
    [
        (dict(backbone_type='nosuchlib.ResNet'), 'unknown backbone type'),
        (dict(backbone_type='ResNetNotThere'), 'unknown backbone type'),
        (dict(task='det'), "no 'det' prompt"),
        (dict(mean=None), 'mean is required'),
        (dict(std=[1, 2]), 'std must be'),
        (dict(std=[0, 1, 1]), 'positive'),
        (dict(bgr_to_rgb=None), 'bgr_to_rgb'),
        (dict(bgr_to_rgb=True, to_rgb=False), 'disagree'),
        (dict(num_steps=0), 'num_steps'),
        (
            dict(backbone=dict(type='unirestore_mm._RecordingNet')),
            'exactly one',
        ),
        (dict(restorer_checkpoint='/nonexistent.pth'), 'not found'),
    ],
)
def test_errors_at_build_time(kwargs, match):
    with pytest.raises((ValueError, FileNotFoundError), match=match):
        make(**kwargs)


def test_mmpretrain_classifier_changes_only_its_backbone():
    # a required dependency: a broken install must fail, not skip
    import mmpretrain  # noqa: F401
    from mmpretrain.registry import MODELS as PRETRAIN_MODELS

    cfg = dict(
        type='ImageClassifier',
        backbone=dict(
            type='unirestore_mm.RestoredBackbone',
            backbone_type='ResNet_CIFAR',
            depth=18,
            task='cls',
            mean=MEAN,
            std=STD,
            to_rgb=True,
        ),
        neck=dict(type='GlobalAveragePooling'),
        head=dict(type='LinearClsHead', num_classes=10, in_channels=512),
        data_preprocessor=dict(
            mean=MEAN, std=STD, to_rgb=True, num_classes=10
        ),
    )
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        model = PRETRAIN_MODELS.build(cfg)
    x = model.data_preprocessor(
        dict(inputs=[torch.randint(0, 256, (3, 32, 32), dtype=torch.uint8)])
    )['inputs']
    assert model(x, mode='tensor').shape == (1, 10)
    assert type(model.backbone.backbone).__name__ == 'ResNet_CIFAR'


def test_mmseg_segmenter_with_scoped_backbone_from_another_library():
    # a required dependency: a broken install must fail, not skip
    # a required dependency: a broken install must fail, not skip
    import mmpretrain  # noqa: F401
    import mmseg  # noqa: F401
    from mmseg.registry import MODELS as SEG_MODELS

    cfg = dict(
        type='EncoderDecoder',
        data_preprocessor=dict(
            type='SegDataPreProcessor',
            mean=MEAN,
            std=STD,
            bgr_to_rgb=True,
            size=(32, 32),
        ),
        backbone=dict(
            type='unirestore_mm.RestoredBackbone',
            task='seg',
            mean=MEAN,
            std=STD,
            bgr_to_rgb=True,
            backbone=dict(
                type='mmpretrain.ResNet', depth=18, out_indices=(3,)
            ),
        ),
        decode_head=dict(
            type='FCNHead',
            in_channels=512,
            channels=16,
            num_convs=1,
            num_classes=4,
            in_index=0,
        ),
        test_cfg=dict(mode='whole'),
    )
    with DefaultScope.overwrite_default_scope('mmseg'):
        model = SEG_MODELS.build(cfg)
    assert type(model.backbone.backbone).__module__.startswith('mmpretrain')
    out = model.eval()(torch.randn(1, 3, 32, 32), mode='tensor')
    assert out.shape[:2] == (1, 4)


def test_timm_backbone_through_mmpretrain():
    # a required dependency: a broken install must fail, not skip
    import mmpretrain  # noqa: F401

    pytest.importorskip('timm')
    m = make(
        backbone_type=None,
        backbone=dict(
            type='mmpretrain.TIMMBackbone',
            model_name='resnet18',
            pretrained=False,
            features_only=True,
            out_indices=(4,),
        ),
    ).eval()
    feats = m(torch.randn(1, 3, 32, 32))
    assert feats[-1].shape[:2] == (1, 512)
