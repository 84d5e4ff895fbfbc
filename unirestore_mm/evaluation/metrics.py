"""Full-reference image-quality metrics for
:class:`~unirestore_mm.models.UniRestoreModel` (DESIGN §4).

Both read the data samples that ``UniRestoreModel.predict`` returns:
``pred_img`` and ``gt_img``, float RGB images in [0, 1] of shape ``(3, H, W)``.
As in the restoration literature (and mmagic), images are quantised to 8 bits
before measuring, ``crop_border`` pixels are dropped on each side, and
``convert_to='Y'`` measures the BT.601 luma only.  Scores are averaged over
images.
"""

from typing import Any, Optional, Sequence

import torch
from mmengine.evaluator import BaseMetric
from torch.nn import functional as F

from ..registry import METRICS


def _prepare(
    img: torch.Tensor, crop_border: int, convert_to: Optional[str]
) -> torch.Tensor:
    """(3, H, W) or (B, 3, H, W) floats in [0, 1] -> float64 in [0, 255], 8-bit
    quantised, cropped, RGB or Y."""
    if img.dim() == 3:
        img = img[None]
    if img.dim() != 4:
        raise ValueError(
            'expected (3, H, W) or (B, 3, H, W) images, got shape '
            f'{tuple(img.shape)}'
        )
    img = (img.detach().double().clamp(0, 1) * 255).round()
    if crop_border:
        img = img[..., crop_border:-crop_border, crop_border:-crop_border]
    if convert_to is not None:
        if convert_to.upper() != 'Y':
            raise ValueError(
                f"convert_to must be None or 'Y', got {convert_to!r}"
            )
        if img.shape[1] != 3:
            raise ValueError(
                f'convert_to="Y" needs RGB images, got {img.shape[1]} channels'
            )
        r, g, b = img[:, 0:1], img[:, 1:2], img[:, 2:3]
        img = 16.0 + (65.481 * r + 128.553 * g + 24.966 * b) / 255.0
    return img


def psnr(
    pred: torch.Tensor,
    gt: torch.Tensor,
    crop_border: int = 0,
    convert_to: Optional[str] = None,
) -> torch.Tensor:
    """PSNR in dB per image (shape (B,)) of float images in [0, 1]; identical
    images give ``inf``."""
    p, g = (
        _prepare(pred, crop_border, convert_to),
        _prepare(gt, crop_border, convert_to),
    )
    if p.shape != g.shape:
        raise ValueError(
            f'psnr: pred {tuple(p.shape)} and gt {tuple(g.shape)} differ in '
            'shape'
        )
    mse = ((p - g) ** 2).flatten(1).mean(1)
    return 10 * torch.log10(255.0**2 / mse)


def _gaussian_window(
    size: int = 11, sigma: float = 1.5, dtype=torch.float64, device=None
) -> torch.Tensor:
    x = torch.arange(size, dtype=dtype, device=device) - (size - 1) / 2
    g = torch.exp(-(x**2) / (2 * sigma**2))
    g = g / g.sum()
    return (g[:, None] * g[None, :])[None, None]


def ssim(
    pred: torch.Tensor,
    gt: torch.Tensor,
    crop_border: int = 0,
    convert_to: Optional[str] = None,
) -> torch.Tensor:
    """SSIM per image (shape (B,)): Wang et al. 2004, 11x11 Gaussian window
    (sigma 1.5), valid region, averaged over channels.  Images smaller than the
    window use a window of their own (odd) size."""
    p, g = (
        _prepare(pred, crop_border, convert_to),
        _prepare(gt, crop_border, convert_to),
    )
    if p.shape != g.shape:
        raise ValueError(
            f'ssim: pred {tuple(p.shape)} and gt {tuple(g.shape)} differ in '
            'shape'
        )
    size = min(11, p.shape[-2], p.shape[-1])
    size = size if size % 2 else size - 1
    if size < 1:
        raise ValueError(
            f'ssim: image too small after cropping: {tuple(p.shape[-2:])}'
        )
    c = p.shape[1]
    win = _gaussian_window(size, 1.5, device=p.device).expand(c, 1, size, size)
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2

    def filt(x):
        return F.conv2d(x, win, groups=c)

    mu_p, mu_g = filt(p), filt(g)
    var_p = filt(p * p) - mu_p**2
    var_g = filt(g * g) - mu_g**2
    cov = filt(p * g) - mu_p * mu_g
    s = ((2 * mu_p * mu_g + c1) * (2 * cov + c2)) / (
        (mu_p**2 + mu_g**2 + c1) * (var_p + var_g + c2)
    )
    return s.flatten(1).mean(1)


class _PairMetric(BaseMetric):
    """Shared ``process``/``compute_metrics`` of the full-reference metrics
    below."""

    metric_name = ''
    default_prefix = None

    def __init__(
        self,
        crop_border: int = 0,
        convert_to: Optional[str] = None,
        pred_key: str = 'pred_img',
        gt_key: str = 'gt_img',
        collect_device: str = 'cpu',
        prefix: Optional[str] = None,
    ):
        super().__init__(collect_device=collect_device, prefix=prefix)
        if int(crop_border) < 0:
            raise ValueError(f'crop_border must be >= 0, got {crop_border}')
        if convert_to is not None and str(convert_to).upper() != 'Y':
            raise ValueError(
                f"convert_to must be None or 'Y', got {convert_to!r}"
            )
        self.crop_border, self.convert_to = int(crop_border), convert_to
        self.pred_key, self.gt_key = pred_key, gt_key

    def score(self, pred: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def process(self, data_batch: Any, data_samples: Sequence[dict]) -> None:
        for sample in data_samples:
            get = (
                sample.get
                if isinstance(sample, dict)
                else (lambda k, s=sample: getattr(s, k, None))
            )
            pred, gt = get(self.pred_key), get(self.gt_key)
            if pred is None or gt is None:
                raise KeyError(
                    f'{type(self).__name__}: data samples need '
                    f'{self.pred_key!r} and {self.gt_key!r} (float RGB '
                    f'images in [0, 1]); got keys {sorted(sample.keys())}'
                )
            if isinstance(pred, dict):  # a PixelData turned into a dict
                pred = pred['data']
            if isinstance(gt, dict):
                gt = gt['data']
            self.results.append(float(self.score(pred, gt)[0]))

    def compute_metrics(self, results: list) -> dict:
        if not results:
            return {self.metric_name: float('nan')}
        return {self.metric_name: float(sum(results) / len(results))}


@METRICS.register_module()
class PSNR(_PairMetric):
    """Mean PSNR (dB) of ``pred_img`` against ``gt_img`` (8-bit, optional
    ``crop_border`` and luma)."""

    metric_name = 'PSNR'

    def score(self, pred, gt):
        return psnr(pred, gt, self.crop_border, self.convert_to)


@METRICS.register_module()
class SSIM(_PairMetric):
    """Mean SSIM of ``pred_img`` against ``gt_img`` (8-bit, optional
    ``crop_border`` and luma)."""

    metric_name = 'SSIM'

    def score(self, pred, gt):
        return ssim(pred, gt, self.crop_border, self.convert_to)
