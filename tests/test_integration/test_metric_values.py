"""PSNR and SSIM against scikit-image on real photographs (scikit-image's
astronaut, coffee, chelsea), degraded.

The package defines SSIM as Wang et al. (2004): an 11x11 Gaussian window with
sigma 1.5, K1 = 0.01, K2 = 0.03, the population (biased) variances, averaged
over the valid region and the channels, on 8-bit values (data range 255).
scikit-image computes exactly that with ``gaussian_weights=True, sigma=1.5,
use_sample_covariance=False, data_range=255`` (its window is 2 * int(3.5 *
1.5 + 0.5) + 1 = 11 wide; it filters with reflection and then drops the 5-pixel
border, which is the valid region).  Its default (a 7x7 uniform window, sample
covariance) is a different, non-standard quantity.
"""

import cv2
import numpy as np
import pytest
import torch

from unirestore_mm.evaluation.metrics import PSNR, SSIM, psnr, ssim

skimage = pytest.importorskip(
    'skimage',
    reason='scikit-image (installed by tools/install.sh) gives the reference',
)
from skimage import data as skdata  # noqa: E402
from skimage.color import rgb2ycbcr  # noqa: E402
from skimage.metrics import (  # noqa: E402
    peak_signal_noise_ratio,
    structural_similarity,
)

TOL = 1e-4


def _degrade(img: np.ndarray, kind: str, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if kind == 'noise':
        out = img.astype(np.float64) + rng.normal(0, 12, img.shape)
    elif kind == 'blur':
        out = cv2.GaussianBlur(img, (7, 7), 1.6).astype(np.float64)
    elif kind == 'jpeg':
        ok, buf = cv2.imencode(
            '.jpg', img[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 15]
        )
        assert ok
        out = cv2.imdecode(buf, cv2.IMREAD_COLOR)[..., ::-1].astype(np.float64)
    # contrast and a shift: a structural change little, a mean change a lot
    else:
        out = (img.astype(np.float64) - 128) * 0.6 + 150
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


PHOTOS = {
    name: np.ascontiguousarray(getattr(skdata, name)()[..., :3])
    for name in ('astronaut', 'coffee', 'chelsea')
}
CASES = [
    (name, kind)
    for name in PHOTOS
    for kind in ('noise', 'blur', 'jpeg', 'contrast')
]


def _t(img: np.ndarray) -> torch.Tensor:
    """uint8 HxWx3 -> float (3, H, W) in [0, 1] (what the metrics read)."""
    return torch.from_numpy(img.transpose(2, 0, 1).copy()).double() / 255


def _sk_ssim(a, b):
    return structural_similarity(
        a.astype(np.float64),
        b.astype(np.float64),
        data_range=255,
        channel_axis=-1,
        gaussian_weights=True,
        sigma=1.5,
        use_sample_covariance=False,
    )


@pytest.mark.parametrize('name, kind', CASES)
def test_psnr_and_ssim_match_scikit_image(name, kind):
    gt = PHOTOS[name]
    pred = _degrade(gt, kind)
    ours_psnr = float(psnr(_t(pred), _t(gt))[0])
    ours_ssim = float(ssim(_t(pred), _t(gt))[0])
    ref_psnr = peak_signal_noise_ratio(gt, pred, data_range=255)
    ref_ssim = _sk_ssim(gt, pred)
    assert abs(ours_psnr - ref_psnr) < TOL, (ours_psnr, ref_psnr)
    assert abs(ours_ssim - ref_ssim) < TOL, (ours_ssim, ref_ssim)
    # a real degradation: a value far from both ends
    assert 0.2 < ref_ssim < 0.99


@pytest.mark.parametrize('name', list(PHOTOS))
def test_luma_and_crop_border_match_scikit_image(name):
    gt = PHOTOS[name]
    pred = _degrade(gt, 'jpeg', seed=1)
    cb = 4
    # BT.601 luma in [16, 235]
    y_gt, y_pred = rgb2ycbcr(gt)[..., 0], rgb2ycbcr(pred)[..., 0]
    y_gt, y_pred = y_gt[cb:-cb, cb:-cb], y_pred[cb:-cb, cb:-cb]
    ours_psnr = float(
        psnr(_t(pred), _t(gt), crop_border=cb, convert_to='Y')[0]
    )
    ours_ssim = float(
        ssim(_t(pred), _t(gt), crop_border=cb, convert_to='Y')[0]
    )
    ref_psnr = peak_signal_noise_ratio(y_gt, y_pred, data_range=255)
    ref_ssim = structural_similarity(
        y_gt,
        y_pred,
        data_range=255,
        gaussian_weights=True,
        sigma=1.5,
        use_sample_covariance=False,
    )
    assert abs(ours_psnr - ref_psnr) < TOL, (ours_psnr, ref_psnr)
    assert abs(ours_ssim - ref_ssim) < TOL, (ours_ssim, ref_ssim)


def test_float_predictions_are_scored_after_8_bit_quantisation():
    """A float prediction is rounded to 8 bits first: the score equals
    scikit-image's on the rounded image."""
    gt = PHOTOS['coffee'][:96, :128]
    pred = np.clip(
        gt.astype(np.float64) / 255
        + np.random.default_rng(3).normal(0, 0.03, gt.shape),
        0,
        1,
    )
    q = np.rint(pred * 255).astype(np.uint8)
    t = torch.from_numpy(pred.transpose(2, 0, 1).copy())
    assert (
        abs(
            float(psnr(t, _t(gt))[0])
            - peak_signal_noise_ratio(gt, q, data_range=255)
        )
        < TOL
    )
    assert abs(float(ssim(t, _t(gt))[0]) - _sk_ssim(gt, q)) < TOL


def test_metric_classes_average_scikit_image_scores():
    gts = [PHOTOS['chelsea'], PHOTOS['astronaut'][:200, :300]]
    preds = [_degrade(g, 'noise', seed=i) for i, g in enumerate(gts)]
    samples = [
        dict(pred_img=_t(p).float(), gt_img=_t(g).float())
        for p, g in zip(preds, gts)
    ]
    for metric, ref in (
        (PSNR(), lambda g, p: peak_signal_noise_ratio(g, p, data_range=255)),
        (SSIM(), _sk_ssim),
    ):
        metric.process({}, samples)
        score = list(metric.compute_metrics(metric.results).values())[0]
        expected = np.mean([ref(g, p) for g, p in zip(gts, preds)])
        assert abs(score - expected) < TOL, (
            type(metric).__name__,
            score,
            expected,
        )
