"""Recognizers from any mmpretrain / mmseg config and checkpoint: frozen, in
eval mode, clear errors."""

import numpy as np
import pytest
import torch

from unirestore_mm.models import build_recognizer

from .helpers import TINY_CLS, TINY_SEG, save_recognizer


@pytest.fixture(scope='module')
def ckpts(tmp_path_factory):
    d = tmp_path_factory.mktemp('rec')
    return dict(
        cls=save_recognizer(TINY_CLS, str(d / 'cls.pth')),
        seg=save_recognizer(TINY_SEG, str(d / 'seg.pth')),
        dir=d,
    )


def test_frozen_recognizers_stay_frozen_in_eval_mode_and_pass_gradients(ckpts):
    for kind, cfg in (('cls', TINY_CLS), ('seg', TINY_SEG)):
        rec = build_recognizer(cfg, checkpoint=ckpts[kind])
        assert (
            rec.kind == kind
            and rec.num_classes == 4
            and rec.classes[0] == 'class0'
        )
        rec.train()
        assert not rec.model.training and not any(
            m.training for m in rec.model.modules()
        )
        assert not any(p.requires_grad for p in rec.parameters())
        x = torch.rand(2, 3, 32, 32, requires_grad=True)
        out = rec.logits(x)
        assert out.shape == ((2, 4) if kind == 'cls' else (2, 4, 32, 32))
        out.sum().backward()
        assert x.grad is not None and x.grad.abs().sum() > 0
        # the saved weights are the ones in use
        saved = torch.load(ckpts[kind], weights_only=True)['state_dict']
        k = next(iter(saved))
        assert torch.equal(rec.model.state_dict()[k], saved[k])


def test_normalisation_follows_the_recognizers_preprocessor(ckpts):
    rec = build_recognizer(TINY_CLS, checkpoint=ckpts['cls'])
    # to_rgb=True: it flips BGR inputs, ours are RGB already
    assert not rec.expects_bgr
    x = torch.zeros(1, 3, 2, 2)
    x[:, 0] = 1.0  # pure red
    y = rec.normalize(x)
    assert y[0, 0, 0, 0] == pytest.approx((255 - 123.675) / 58.395)
    bgr = dict(
        TINY_CLS,
        data_preprocessor=dict(TINY_CLS['data_preprocessor'], to_rgb=False),
    )
    rec2 = build_recognizer(bgr, checkpoint=ckpts['cls'])
    assert rec2.expects_bgr and rec2.normalize(x)[0, 2, 0, 0] == pytest.approx(
        (255 - 103.53) / 57.375
    )


def test_library_config_paths_and_cfg_options(ckpts):
    rec = build_recognizer(
        'mmpretrain::resnet/resnet18_8xb16_cifar10.py',
        frozen=False,
        cfg_options={'model.head.num_classes': 4},
    )
    assert rec.kind == 'cls' and rec.num_classes == 4 and not rec.frozen
    assert any(p.requires_grad for p in rec.parameters())


def test_bad_recognizer_inputs_fail_clearly(ckpts, tmp_path):
    with pytest.raises(ValueError, match='needs its trained weights'):
        build_recognizer(TINY_CLS)  # frozen without a checkpoint
    with pytest.raises(ValueError, match='does not fit its config'):
        build_recognizer(TINY_CLS, checkpoint=ckpts['seg'])
    with pytest.raises(FileNotFoundError):
        build_recognizer(TINY_CLS, checkpoint=str(tmp_path / 'nope.pth'))
    with pytest.raises(ValueError, match='mmpretrain or mmseg'):
        build_recognizer(dict(type='ImageClassifier'), checkpoint=ckpts['cls'])
    # what MMEngine's own checkpoints hold besides tensors (numpy values,
    # message-hub buffers) loads safely
    from mmengine.logging.history_buffer import HistoryBuffer

    state = torch.load(ckpts['cls'], weights_only=True)
    state['meta']['seed'] = np.int64(3)
    loss = HistoryBuffer()
    loss.update(0.5)
    state['message_hub'] = dict(
        log_scalars={'train/loss': loss}, epoch_np=np.arange(3)
    )
    torch.save(state, tmp_path / 'mmengine.pth')
    assert (
        build_recognizer(
            TINY_CLS, checkpoint=str(tmp_path / 'mmengine.pth')
        ).num_classes
        == 4
    )
    # a checkpoint with other pickled objects is refused unless the user trusts
    # it
    import argparse

    state['meta']['odd'] = argparse.Namespace(lr=0.1)
    torch.save(state, tmp_path / 'pickled.pth')
    with pytest.raises(ValueError, match='allow_pickle=True'):
        build_recognizer(TINY_CLS, checkpoint=str(tmp_path / 'pickled.pth'))
    assert (
        build_recognizer(
            TINY_CLS,
            checkpoint=str(tmp_path / 'pickled.pth'),
            allow_pickle=True,
        ).num_classes
        == 4
    )


def _network_inputs(rec):
    """The shapes the wrapped network is called with (a forward pre-hook on the
    model)."""
    seen = []
    rec.model.register_forward_pre_hook(
        lambda mod, args: seen.append(tuple(args[0].shape[-2:]))
    )
    return seen


def test_classifier_geometry_keeps_the_crop_by_default_or_resizes_to_input_size(
    ckpts,
):
    x = torch.rand(2, 3, 32, 40)
    rec = build_recognizer(TINY_CLS, checkpoint=ckpts['cls'])
    seen = _network_inputs(rec)
    rec.logits(x)
    assert rec.input_size is None and seen == [(32, 40)]
    # the release's ImageNet geometry: resize to 224x224 (bilinear,
    # antialiased), then the normalisation
    rec224 = build_recognizer(
        TINY_CLS, checkpoint=ckpts['cls'], input_size=224
    )
    seen = _network_inputs(rec224)
    out = rec224.logits(x)
    assert rec224.input_size == (224, 224) and seen == [(224, 224)]
    resized = torch.nn.functional.interpolate(
        x,
        size=(224, 224),
        mode='bilinear',
        align_corners=False,
        antialias=True,
    )
    with torch.no_grad():
        expected = rec.model(rec.normalize(resized), mode='tensor')
    torch.testing.assert_close(out, expected)
    assert build_recognizer(
        TINY_CLS, checkpoint=ckpts['cls'], input_size=(48, 64)
    ).resize(x).shape[-2:] == (48, 64)
    # the joint recognizer's own loss sees the same geometry
    from mmpretrain.structures import DataSample

    joint = build_recognizer(
        TINY_CLS, checkpoint=ckpts['cls'], frozen=False, input_size=64
    )
    feats = []  # loss() does not go through forward(): watch the backbone
    joint.model.backbone.register_forward_pre_hook(
        lambda mod, args: feats.append(tuple(args[0].shape[-2:]))
    )
    joint.loss(x, [DataSample().set_gt_label(0), DataSample().set_gt_label(1)])
    assert feats == [(64, 64)]


def test_segmentor_geometry_and_align_corners(ckpts):
    x = torch.rand(1, 3, 32, 32)
    head = build_recognizer(TINY_SEG, checkpoint=ckpts['seg'])
    assert head.align_corners is False  # the head's own (TINY_SEG: False)
    with torch.no_grad():
        raw = head.model(head.normalize(x), mode='tensor')
    # the FCN head predicts at a lower resolution: upsampling matters
    assert raw.shape[-2:] != (32, 32)
    for align in (True, False):
        rec = build_recognizer(
            TINY_SEG, checkpoint=ckpts['seg'], align_corners=align
        )
        expected = torch.nn.functional.interpolate(
            raw, size=(32, 32), mode='bilinear', align_corners=align
        )
        torch.testing.assert_close(rec.logits(x), expected)
    assert not torch.allclose(
        build_recognizer(
            TINY_SEG, checkpoint=ckpts['seg'], align_corners=True
        ).logits(x),
        head.logits(x),
    )
    torch.testing.assert_close(
        head.logits(x),
        torch.nn.functional.interpolate(
            raw, size=(32, 32), mode='bilinear', align_corners=False
        ),
    )
    # resized input: the network sees input_size, the logits come back at the
    # image's size
    rec = build_recognizer(
        TINY_SEG, checkpoint=ckpts['seg'], input_size=48, align_corners=True
    )
    seen = _network_inputs(rec)
    assert rec.logits(x).shape == (1, 4, 32, 32) and seen == [(48, 48)]


def test_bad_geometry_fails_before_building(ckpts):
    for bad in (0, -3, (32,), (32, 0), 'big', 22.5, True):
        with pytest.raises(ValueError, match='input_size'):
            build_recognizer(TINY_CLS, checkpoint=ckpts['cls'], input_size=bad)
    with pytest.raises(ValueError, match='align_corners'):
        build_recognizer(
            TINY_SEG, checkpoint=ckpts['seg'], align_corners='yes'
        )
    with pytest.raises(ValueError, match='resize_mode'):
        build_recognizer(
            TINY_CLS,
            checkpoint=ckpts['cls'],
            input_size=8,
            resize_mode='lanczos',
        )
