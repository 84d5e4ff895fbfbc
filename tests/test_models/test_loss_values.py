"""Stage-1 and stage-2 losses on hand-made inputs, against values worked out
here from DESIGN §3's definitions.

The restorer's networks are replaced by stubs that return chosen tensors, so
every expected value is a short formula of those tensors (and of the SD noise
schedule, recomputed here in float64 from its betas).
"""

import math
from collections import Counter

import pytest
import torch
from mmengine.structures import BaseDataElement, PixelData
from torch import nn

import unirestore_mm.models.losses as losses_mod
import unirestore_mm.models.restorer_model as restorer_model_mod
from unirestore_mm.models import UniRestore
from unirestore_mm.models.autoencoder import EncoderOutput
from unirestore_mm.models.losses import ir_loss, predicted_x0, stage1_loss
from unirestore_mm.models.recognizers import Recognizer
from unirestore_mm.models.restorer_model import UniRestoreModel
from unirestore_mm.models.task_restorer import TaskRestorer

# SD's scaled-linear schedule, from its definition: betas = linspace(sqrt(b0),
# sqrt(b1), 1000)^2, a = cumprod(1 - b)
ALPHAS = torch.cumprod(
    1
    - torch.linspace(0.00085**0.5, 0.012**0.5, 1000, dtype=torch.float64) ** 2,
    0,
)


@pytest.fixture(scope='module')
def restorer():
    return UniRestore('tiny').eval()


def _fill(shape, value):
    return torch.full(shape, float(value))


# -- stage 1 ------------------------------------------------------------------
def _stub_stage1(
    monkeypatch, model, b, lq_vals, hq_vals, h0, noise, delta, seen
):
    """encode(lq) -> constant skips lq_vals; plain encode(gt) -> constant skips
    hq_vals and latent h0; the noise is ``noise``; the UNet predicts
    ``noise + delta``."""
    shapes = [(b, 16, 8, 8), (b, 32, 4, 4), (b, 64, 2, 2)]
    lq_latent = (
        torch.arange(b * 4 * 2 * 2, dtype=torch.float32).view(b, 4, 2, 2) / 10
    )
    monkeypatch.setattr(
        model,
        'encode',
        lambda x, generator=None: EncoderOutput(
            lq_latent, [_fill(s, v) for s, v in zip(shapes, lq_vals)]
        ),
    )

    def plain_encode(vae, cfrm, images, generator=None):
        assert cfrm is None  # the targets are the plain encoder's features
        seen['gt_in'] = images
        return EncoderOutput(
            h0, [_fill(s, v) for s, v in zip(shapes, hq_vals)]
        )

    monkeypatch.setattr(losses_mod, 'encode_with_cfrm', plain_encode)
    monkeypatch.setattr(
        losses_mod,
        'randn_tensor',
        lambda shape, generator=None, device=None, dtype=None: noise,
    )

    def predict_noise(z_t, t, z0):
        seen.update(z_t=z_t, t=t, z0=z0)
        return noise + delta

    monkeypatch.setattr(model, 'predict_noise', predict_noise)
    return lq_latent


def test_stage1_loss_by_hand(restorer, monkeypatch):
    b = 2
    h0 = (
        torch.tensor([0.5, -0.25, 1.0, 0.0])
        .view(1, 4, 1, 1)
        .expand(b, 4, 2, 2)
        .contiguous()
    )
    noise = (
        torch.tensor([1.0, -1.0, 0.5, 2.0])
        .view(1, 4, 1, 1)
        .expand(b, 4, 2, 2)
        .contiguous()
    )
    seen = {}
    lq_latent = _stub_stage1(
        monkeypatch,
        restorer,
        b,
        lq_vals=(0.5, -1.0, 2.0),
        hq_vals=(0.25, 1.0, -1.0),
        h0=h0,
        noise=noise,
        delta=0.1,
        seen=seen,
    )
    lq, gt = torch.rand(b, 3, 16, 16), torch.rand(b, 3, 16, 16)
    losses = stage1_loss(
        restorer,
        lq,
        gt,
        generator=torch.Generator().manual_seed(0),
        timesteps=(749,),
    )
    assert set(losses) == {
        'loss_feat1',
        'loss_feat2',
        'loss_feat3',
        'loss_latent',
    }
    # 0.1 MSE(s1, s1_hq) + 0.1 MSE(s2, s2_hq) + 0.01 MSE(s3, s3_hq): constant
    # maps, so MSE = (a - b)^2
    assert float(losses['loss_feat1']) == pytest.approx(
        0.1 * 0.25**2, rel=1e-6
    )
    assert float(losses['loss_feat2']) == pytest.approx(0.1 * 2.0**2, rel=1e-6)
    assert float(losses['loss_feat3']) == pytest.approx(
        0.01 * 3.0**2, rel=1e-6
    )
    # z_t = sqrt(a) h0 + sqrt(1 - a) noise; the Controller reads the degraded
    # latent; gt goes in as [-1, 1]
    a = ALPHAS[749]
    torch.testing.assert_close(
        seen['z_t'].double(),
        a.sqrt() * h0.double() + (1 - a).sqrt() * noise.double(),
        rtol=1e-6,
        atol=1e-6,
    )
    assert seen['t'].tolist() == [749, 749] and seen['z0'] is lq_latent
    torch.testing.assert_close(seen['gt_in'], gt * 2 - 1)
    # pred_z0 = (z_t - sqrt(1-a) (noise + delta)) / sqrt(a) = h0 -
    # sqrt((1-a)/a) delta, so MSE = (1-a)/a delta^2
    expected = float((1 - a) / a * 0.1**2)
    assert float(losses['loss_latent']) == pytest.approx(expected, rel=1e-5)


def test_stage1_timesteps_are_drawn_from_the_papers_set(restorer, monkeypatch):
    b = 600
    seen = {}
    zeros = torch.zeros(b, 4, 2, 2)
    _stub_stage1(
        monkeypatch,
        restorer,
        b,
        (0, 0, 0),
        (0, 0, 0),
        h0=zeros,
        noise=zeros,
        delta=0.0,
        seen=seen,
    )
    x = torch.zeros(b, 3, 16, 16)
    stage1_loss(restorer, x, x, generator=torch.Generator().manual_seed(1))
    counts = Counter(seen['t'].tolist())
    assert set(counts) == {249, 499, 749, 999}
    # {249, 499, 749, 999, 999, 999}: 999 half the time, the others a sixth
    # each (600 draws: sd 12 and 9)
    assert abs(counts[999] - 300) < 60 and all(
        abs(counts[t] - 100) < 45 for t in (249, 499, 749)
    )


def test_predicted_x0_inverts_add_noise(restorer):
    h0 = torch.randn(4, 4, 3, 3, generator=torch.Generator().manual_seed(2))
    noise = torch.randn(4, 4, 3, 3, generator=torch.Generator().manual_seed(3))
    t = torch.tensor([0, 249, 500, 999])
    z_t = restorer.prior.ddpm.add_noise(h0, noise, t)
    a = ALPHAS[t].view(-1, 1, 1, 1)
    torch.testing.assert_close(
        z_t.double(),
        a.sqrt() * h0.double() + (1 - a).sqrt() * noise.double(),
        rtol=1e-5,
        atol=1e-5,
    )
    # exact noise -> the clean latent back (float32 rounding of z_t grows by
    # 1/sqrt(a_999) = 15)
    torch.testing.assert_close(
        predicted_x0(restorer, z_t, noise, t), h0, rtol=0, atol=2e-5
    )


# -- stage 2 ------------------------------------------------------------------
def test_ir_loss_by_hand():
    pred = torch.tensor([[0.2, 0.5], [0.9, 0.1]])
    gt = torch.tensor([[0.0, 1.0], [1.0, 0.0]])
    # |0.2| + |-0.5| + |-0.1| + |0.1| = 0.9 over 4 values -> 0.225; the paper's
    # weight 10
    assert float(ir_loss(pred, gt)) == pytest.approx(2.25, rel=1e-6)
    assert float(ir_loss(pred, gt, weight=1.0)) == pytest.approx(
        0.225, rel=1e-6
    )


COLORS = {
    'ir': (0.1, 0.4, 0.7),
    'cls': (0.2, 0.5, 0.8),
    'seg': (0.9, 0.3, 0.0),
}
SIZE = (2, 2)


def _stub_restorer(monkeypatch, r, seen):
    """encode/sample -> placeholders; decode under a prompt -> that prompt's
    constant colour image."""
    monkeypatch.setattr(
        r,
        'encode',
        lambda x, generator=None: EncoderOutput(
            torch.zeros(x.shape[0], 4, 1, 1),
            [torch.zeros(x.shape[0], 1, 1, 1)],
        ),
    )
    monkeypatch.setattr(
        r, 'sample', lambda z0, num_steps=1, generator=None: z0 + 1
    )

    def decode(latent, skips, task):
        seen.setdefault('decoded', []).append((task, latent))
        return (
            torch.tensor(COLORS[task])
            .view(1, 3, 1, 1)
            .expand(latent.shape[0], 3, *SIZE)
            .clone()
        )

    monkeypatch.setattr(r, 'decode', decode)


def test_stage2_ir_loss_of_the_model(monkeypatch):
    model = UniRestoreModel(restorer=dict(preset='tiny'), stage=2)
    seen = {}
    _stub_restorer(monkeypatch, model.restorer, seen)
    gt = torch.tensor([0.0, 0.5, 1.0]).view(1, 3, 1, 1).expand(2, 3, *SIZE)
    losses = model.compute_losses(torch.rand(2, 3, *SIZE), gt)
    # 10 * mean(|0.1 - 0| , |0.4 - 0.5|, |0.7 - 1|) = 10 * 0.5 / 3
    assert float(losses['loss_ir']) == pytest.approx(10 * 0.5 / 3, rel=1e-6)
    task, latent = seen['decoded'][0]
    # decoded the DDIM sample of z0
    assert task == 'ir' and torch.equal(latent, torch.ones(2, 4, 1, 1))


def test_stage2_authors_latent_is_pred_z0_of_the_clean_latent(monkeypatch):
    """``latent='authors'``: the decoder learns on pred_z0 of the clean latent;
    with the UNet predicting the noise exactly, that is the clean latent
    itself."""
    model = UniRestoreModel(
        restorer=dict(preset='tiny'), stage=2, latent='authors'
    )
    r = model.restorer
    seen = {}
    _stub_restorer(monkeypatch, r, seen)
    h0 = (
        torch.tensor([0.3, -0.2, 0.1, 0.4])
        .view(1, 4, 1, 1)
        .expand(2, 4, 1, 1)
        .contiguous()
    )
    monkeypatch.setattr(
        restorer_model_mod,
        'encode_with_cfrm',
        lambda vae, cfrm, x, generator=None: EncoderOutput(h0, []),
    )

    def exact_noise(z_t, t, z0):
        a = ALPHAS[t].view(-1, 1, 1, 1)
        seen.setdefault('t', []).extend(t.tolist())
        return (
            (z_t.double() - a.sqrt() * h0.double()) / (1 - a).sqrt()
        ).float()

    monkeypatch.setattr(r, 'predict_noise', exact_noise)
    model.compute_losses(torch.rand(2, 3, *SIZE), torch.rand(2, 3, *SIZE))
    _, latent = seen['decoded'][0]
    torch.testing.assert_close(latent, h0, rtol=0, atol=1e-4)
    assert set(seen['t']) <= {249, 499, 749, 999}


class _ToyClassifier(nn.Module):
    """logits = mean colour of the (normalised) input @ W; no preprocessor:
    mean 0, std 1, BGR input."""

    def __init__(self):
        super().__init__()
        self.head = nn.Module()
        self.head.num_classes = 2
        self.register_buffer(
            'w', torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]]) / 255
        )

    def forward(self, x, mode='tensor'):
        return x.mean((2, 3)) @ self.w


class _ToySegmenter(nn.Module):
    """Per-pixel logits: class 0 reads input channel 0, class 1 channel 1 (BGR
    input, so blue and green)."""

    def __init__(self):
        super().__init__()
        self.decode_head = nn.Module()
        self.decode_head.num_classes = 2
        self.decode_head.align_corners = False

    def forward(self, x, mode='tensor'):
        return x[:, :2] / 255


def _ce(logits, label):
    return -logits[label] + math.log(sum(math.exp(v) for v in logits))


def test_stage2_cls_loss_by_hand(monkeypatch):
    model = TaskRestorer(
        tasks=dict(ir=dict(type='ir'), cls=dict(type='cls', recognizer='toy')),
        recognizers=dict(toy=Recognizer(_ToyClassifier(), 'cls')),
    )
    seen = {}
    _stub_restorer(monkeypatch, model.restorer, seen)
    gt = torch.tensor([0.0, 0.5, 1.0]).view(1, 3, 1, 1).expand(2, 3, *SIZE)
    samples = [
        BaseDataElement(metainfo=dict(task='ir', img_shape=SIZE)),
        BaseDataElement(
            metainfo=dict(task='cls', img_shape=SIZE),
            gt_label=torch.tensor([1]),
        ),
    ]
    losses = model.compute_losses(torch.rand(2, 3, *SIZE), gt, samples)
    assert set(losses) == {'loss_ir', 'loss_cls_ce', 'loss_cls_ir'}
    # the ir prompt's colour (0.1, 0.4, 0.7) against gt (0, 0.5, 1)
    l1_ir = (0.1 + 0.1 + 0.3) / 3
    # cls prompt's colour (r, g, b) = (0.2, 0.5, 0.8) -> BGR (0.8, 0.5, 0.2) *
    # 255 -> logits (0.8, 0.5); label 1
    ce = _ce([0.8, 0.5], 1)
    # each task weighs by its share of the batch (1 of 2 samples)
    assert float(losses['loss_ir']) == pytest.approx(
        0.5 * 10 * l1_ir, rel=1e-6
    )
    assert float(losses['loss_cls_ce']) == pytest.approx(
        0.5 * 0.1 * ce, rel=1e-6
    )
    assert float(losses['loss_cls_ir']) == pytest.approx(
        0.5 * 1.0 * l1_ir, rel=1e-6
    )


def test_stage2_seg_loss_by_hand_with_ignored_pixels(monkeypatch):
    model = TaskRestorer(
        tasks=dict(seg=dict(type='seg', recognizer='toy')),
        recognizers=dict(toy=Recognizer(_ToySegmenter(), 'seg')),
    )
    seen = {}
    _stub_restorer(monkeypatch, model.restorer, seen)
    gt = torch.zeros(1, 3, *SIZE)
    mask = torch.tensor([[[0, 1], [255, 1]]], dtype=torch.uint8)
    samples = [
        BaseDataElement(
            metainfo=dict(task='seg', img_shape=SIZE),
            gt_sem_seg=PixelData(data=mask),
        )
    ]
    losses = model.compute_losses(torch.rand(1, 3, *SIZE), gt, samples)
    # seg colour (r, g, b) = (0.9, 0.3, 0.0): every pixel's logits are (b, g) =
    # (0.0, 0.3); 3 labelled pixels
    ce = (_ce([0.0, 0.3], 0) + 2 * _ce([0.0, 0.3], 1)) / 3
    assert float(losses['loss_seg_ce']) == pytest.approx(0.1 * ce, rel=1e-6)
    assert float(losses['loss_seg_ir']) == pytest.approx(
        (0.1 + 0.4 + 0.7) / 3, rel=1e-6
    )
