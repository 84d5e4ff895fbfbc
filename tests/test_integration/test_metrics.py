"""PSNR / SSIM metrics: known values, registry, the data samples
UniRestoreModel.predict returns."""

import math

import pytest
import torch
from mmengine.structures import BaseDataElement

from unirestore_mm.evaluation import PSNR, SSIM, psnr, ssim
from unirestore_mm.registry import METRICS


def test_psnr_known_value():
    gt = torch.zeros(3, 8, 8)
    pred = torch.full((3, 8, 8), 10 / 255)
    assert float(psnr(pred, gt)) == pytest.approx(
        10 * math.log10(255**2 / 100)
    )
    assert math.isinf(float(psnr(gt, gt)))


def test_ssim_bounds_and_identity():
    g = torch.Generator().manual_seed(0)
    a = torch.rand(2, 3, 16, 16, generator=g)
    b = (a + 0.1 * torch.randn(a.shape, generator=g)).clamp(0, 1)
    assert torch.allclose(ssim(a, a), torch.ones(2, dtype=torch.float64))
    s = ssim(a, b)
    assert ((0 < s) & (s < 1)).all()
    assert float(ssim(a, b, convert_to='Y')[0]) != float(s[0])
    # smaller than the window
    assert ssim(a[..., :5, :5], b[..., :5, :5]).shape == (2,)


def test_metrics_from_registry_over_samples():
    psnr_metric = METRICS.build(dict(type='unirestore_mm.PSNR', crop_border=1))
    ssim_metric = METRICS.build(dict(type='unirestore_mm.SSIM'))
    samples = []
    for i in range(3):
        gt = torch.rand(3, 12, 12)
        samples.append(
            BaseDataElement(
                pred_img=(gt + 0.02).clamp(0, 1), gt_img=gt
            ).to_dict()
        )
    for m in (psnr_metric, ssim_metric):
        m.process(None, samples)
    # the mean over samples of the per-image scores, with the metric's own
    # crop_border (values against scikit-image: test_metric_values.py)
    expected_psnr = (
        sum(
            float(psnr(s['pred_img'], s['gt_img'], crop_border=1))
            for s in samples
        )
        / 3
    )
    expected_ssim = (
        sum(float(ssim(s['pred_img'], s['gt_img'])) for s in samples) / 3
    )
    assert psnr_metric.evaluate(3)['PSNR'] == pytest.approx(
        expected_psnr, rel=1e-12
    )
    assert ssim_metric.evaluate(3)['SSIM'] == pytest.approx(
        expected_ssim, rel=1e-12
    )
    assert expected_psnr != pytest.approx(
        sum(float(psnr(s['pred_img'], s['gt_img'])) for s in samples) / 3
    )


def test_metric_errors():
    with pytest.raises(ValueError):
        PSNR(convert_to='Lab')
    with pytest.raises(KeyError, match='pred_img'):
        SSIM().process(None, [dict(gt_img=torch.rand(3, 4, 4))])
    with pytest.raises(ValueError, match='shape'):
        psnr(torch.rand(3, 4, 4), torch.rand(3, 4, 5))
