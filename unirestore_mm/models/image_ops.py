"""Input checks and the geometry of the restore path: short-side resize,
padding to the size divisor, cropping.

Two geometries (:data:`GEOMETRIES`) for images whose short side is below
``min_size``: ``'release'`` (the default) does what the authors' release does:
bicubic upscaling with no clamp, bicubic resizing back without antialiasing;
``'antialias'`` clamps the upscaled input to [0, 1] and resizes back with
antialiasing.  With an identity restorer the release's round trip returns the
input almost exactly (54-62 dB PSNR on photographs at a short side of 64-256
px) while antialiasing low-passes it (37-43 dB), so the release's is the
default.  They agree whenever no resizing happens (short side at least
``min_size``).
"""

from typing import Optional, Tuple

import torch
from torch.nn import functional as F


def check_images(images, name: str = 'images') -> torch.Tensor:
    """Validate a float image batch in [0, 1] and return it as (B, 3, H, W).

    Accepts (3, H, W) or (B, 3, H, W) floating tensors.  Raises
    ``TypeError``/``ValueError`` naming ``name`` and what was expected for
    integer tensors, wrong shapes or channel counts, empty batches, NaN/Inf and
    values outside [0, 1].
    """
    if not isinstance(images, torch.Tensor):
        raise TypeError(
            f'{name}: expected a torch.Tensor of shape (B, 3, H, W) with '
            f'floats in [0, 1]; got {type(images).__name__}'
        )
    if not images.is_floating_point():
        hint = (
            ' (divide uint8 images by 255)'
            if images.dtype == torch.uint8
            else ''
        )
        raise TypeError(
            f'{name}: expected a floating-point tensor with values in [0, '
            f'1]; got dtype {images.dtype}{hint}'
        )
    if images.dim() == 3:
        images = images.unsqueeze(0)
    if images.dim() != 4:
        raise ValueError(
            f'{name}: expected shape (B, 3, H, W) or (3, H, W); got '
            f'{tuple(images.shape)}'
        )
    if images.shape[0] == 0:
        raise ValueError(
            f'{name}: the batch is empty (shape {tuple(images.shape)}); give '
            'at least one image'
        )
    if images.shape[1] != 3:
        hint = (
            'it looks like channels-last (H, W, C) data: permute to (C, H, W)'
            if images.shape[-1] in (1, 3, 4)
            else 'convert grayscale/RGBA to RGB first'
        )
        raise ValueError(
            f'{name}: expected 3 (RGB) channels in dim 1; got '
            f'{images.shape[1]} in shape {tuple(images.shape)} ({hint})'
        )
    if images.shape[2] < 1 or images.shape[3] < 1:
        raise ValueError(
            f'{name}: empty spatial size {tuple(images.shape[2:])}'
        )
    finite = torch.isfinite(images)
    if not bool(finite.all()):
        bad = int((~finite).sum())
        raise ValueError(
            f'{name}: {bad} value(s) are NaN or Inf; expected finite values '
            'in [0, 1]'
        )
    lo, hi = float(images.min()), float(images.max())
    if lo < 0.0 or hi > 1.0:
        if 1.5 < hi <= 255.0 and lo >= 0:
            hint = ' (it looks like 0-255 data: divide by 255)'
        elif -0.5 <= lo and hi <= 1.5:
            hint = ' (slightly outside: clamp to [0, 1] first)'
        else:
            hint = ''
        raise ValueError(
            f'{name}: values must lie in [0, 1]; got min {_show(lo)}, max '
            f'{_show(hi)}{hint}'
        )
    return images


def _show(value: float) -> str:
    """``value`` in 4 significant digits, or in full where those would round it
    onto the boundary 0 or 1 (an error saying "max 1" for a value just above 1
    would contradict itself)."""
    short = f'{value:.4g}'
    return (
        repr(value)
        if float(short) in (0.0, 1.0) and value not in (0.0, 1.0)
        else short
    )


GEOMETRIES = ('release', 'antialias')


def check_geometry(geometry: str) -> str:
    if geometry not in GEOMETRIES:
        raise ValueError(
            "geometry must be 'release' (the authors' release and the "
            "default: no clamp after upscaling, resize back without "
            "antialiasing) or 'antialias' (clamp after upscaling, "
            f"antialiased resize back); got {geometry!r}"
        )
    return geometry


def resize_short_side(
    images: torch.Tensor, min_size: Optional[int], clamp: bool = False
) -> torch.Tensor:
    """Upscale so the short side is at least ``min_size`` (no-op when it
    already is, or ``min_size`` is None); bicubic, not clamped (the release)
    unless ``clamp=True``."""
    if not min_size:
        return images
    h, w = images.shape[-2:]
    if min(h, w) >= min_size:
        return images
    scale = min_size / min(h, w)
    size = (max(min_size, round(h * scale)), max(min_size, round(w * scale)))
    out = F.interpolate(images, size=size, mode='bicubic', align_corners=False)
    return out.clamp_(0, 1) if clamp else out


def pad_to_multiple(
    images: torch.Tensor, divisor: int
) -> Tuple[torch.Tensor, Tuple[int, int]]:
    """Pad bottom/right to a multiple of ``divisor`` by reflection (replication
    where reflection can't reach)."""
    h, w = images.shape[-2:]
    ph, pw = (-h) % divisor, (-w) % divisor
    if ph or pw:
        mode = 'reflect' if ph < h and pw < w else 'replicate'
        images = F.pad(images, (0, pw, 0, ph), mode=mode)
    return images, (h, w)


def resize_to(
    images: torch.Tensor, size: Tuple[int, int], antialias: bool = False
) -> torch.Tensor:
    """Bicubic resize to ``size``, without antialiasing (the release) unless
    ``antialias=True``; no-op at that size."""
    if tuple(images.shape[-2:]) == tuple(size):
        return images
    return F.interpolate(
        images,
        size=size,
        mode='bicubic',
        align_corners=False,
        antialias=antialias,
    )
