"""Tiled restoration of large images: overlapping pixel tiles, each restored
whole, fused with a smooth window.

Why pixel tiles (and not latent tiles): the activation memory of UniRestore is
dominated by the VAE at full resolution (the encoder with its CFRM stages
before the latent exists, the decoder with its TFAs after it), and the CFRM
skips that the TFAs fuse live at H/2, H/4 and H/8.  Tiling only the latent (the
UNet) would leave both full-size VAE passes and all skips in memory.  So each
tile runs the whole restore path on its own pixels: ``encode`` (VAE encoder +
CFRM) -> ``sample`` (Controller + UNet) -> ``decode`` (VAE decoder + TFAs under
each task prompt).  The latent, the skips and the TFAs of a tile therefore
always share one tile geometry, and the peak memory is that of one tile
whatever the image size.

How the tiles are fused (exactly):

1. Layout, per axis, on the scaled and padded image (a multiple of the prior's
   ``size_divisor``, 64 for ``sd-turbo``) of length ``L``: the fewest tiles
   ``n`` with ``n * tile_size >= L + (n - 1) * overlap``, where ``overlap`` is
   ``tile_overlap`` rounded up to the latent grid (the VAE's factor, 8 px).
   Their total length is ``L + (n - 1) * overlap`` rounded up to
   ``size_divisor`` and split as evenly as possible into multiples of
   ``size_divisor`` (so a tile may be one divisor shorter than another and
   never exceeds ``tile_size``); the spare length goes to the ``n - 1``
   overlaps, evenly, in steps of the latent grid.  Every overlap is at least
   ``overlap`` and every tile starts on the latent grid.  An axis no longer
   than ``tile_size`` is one tile. 2-D tiles are the product of the two axes'
   tiles.
2. Noise: the VAE's latent sampling noise and the DDIM starting noise are drawn
   once for the *whole* padded image's latent, in the same order and with the
   same generator(s) as the untiled path (a list of generators still gives each
   image its own noise), and each tile takes its crop (tile starts are on the
   latent grid, so the crop is exact).  Overlapping tiles thus sample the same
   noise where they overlap, the result is repeatable with a seed, and a single
   tile covering the image reproduces the untiled path bit for bit.
3. Blending: each tile's restored pixels are weighted by ``w(y) * w(x)``; along
   an axis ``w`` is 1 except in the overlaps with the neighbouring tiles, where
   it follows a raised cosine, ``sin^2(pi/2 * (i + 0.5) / o)`` rising over the
   ``o`` pixels of the overlap towards the tile's interior (so it is nearly 0
   at the tile's edge, where the tile lacks context, and the two tiles' weights
   in an overlap sum to 1: a partition of unity).  The output is
   ``sum_tiles(w * restored) / sum_tiles(w)``, per task.  The image's own
   borders get weight 1 (no neighbour).

Time: the layout restores ``(L + (n - 1) * overlap) / L`` times the pixels per
axis (rounded up to the divisor), e.g. ``sd-turbo`` with 512-px tiles and a
32-px overlap: 1.13x the pixels of a 1024 or 2048 px square image.
"""

import math
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Sequence, Tuple, Union

import torch
from diffusers.utils.torch_utils import randn_tensor

TILING_MODES = ('auto', True, False)


@dataclass(frozen=True)
class TileSettings:
    """``tile_size`` (px, a multiple of the size divisor), ``tile_overlap``
    (px, at least, between neighbours), ``tile_threshold`` (px:
    ``tiling='auto'`` tiles an image whose scaled, padded height or width
    exceeds it)."""

    tile_size: int
    tile_overlap: int
    tile_threshold: int


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_tiling_mode(tiling) -> Union[str, bool]:
    """``'auto'``, ``True`` or ``False`` (also ``'on'``/``'off'``); anything
    else is a ``ValueError``."""
    if isinstance(tiling, str) and tiling.lower() in ('on', 'true'):
        return True
    if isinstance(tiling, str) and tiling.lower() in ('off', 'false'):
        return False
    if isinstance(tiling, str) and tiling.lower() == 'auto':
        return 'auto'
    if isinstance(tiling, bool):
        return tiling
    raise ValueError(
        f"tiling must be 'auto' (tile images larger than tile_threshold), "
        "True or False; "
        f'got {tiling!r}'
    )


def check_tile_settings(
    tile_size, tile_overlap, tile_threshold, size_divisor: int
) -> TileSettings:
    """Validate tile settings against the prior's ``size_divisor``; a bad value
    is a ``ValueError`` naming it."""
    if not _is_int(tile_size) or tile_size < 1:
        raise ValueError(
            f'tile_size must be a positive int (pixels), got {tile_size!r}'
        )
    if tile_size < size_divisor or tile_size % size_divisor:
        raise ValueError(
            'tile_size must be a multiple of the restorer\'s size divisor '
            f'{size_divisor} (at least {size_divisor}); got {tile_size}'
        )
    if not _is_int(tile_overlap) or tile_overlap < 0:
        raise ValueError(
            f'tile_overlap must be an int >= 0 (pixels), got {tile_overlap!r}'
        )
    if tile_overlap * 2 > tile_size:
        raise ValueError(
            'tile_overlap must be at most half of tile_size '
            f'({tile_size // 2}) so that each tile keeps a part of its own; '
            f'got tile_overlap={tile_overlap}, tile_size={tile_size}'
        )
    if not _is_int(tile_threshold) or tile_threshold < 0:
        raise ValueError(
            'tile_threshold must be an int >= 0 (pixels), got '
            f'{tile_threshold!r}'
        )
    return TileSettings(tile_size, tile_overlap, tile_threshold)


def check_tiling_args(
    tiling='auto',
    tile_size: Optional[int] = None,
    tile_overlap: Optional[int] = None,
    tile_threshold: Optional[int] = None,
) -> Dict[str, object]:
    """What can be checked without a restorer (the size divisor is checked by
    ``UniRestore.tile_settings``): the mode, the types and signs,
    ``tile_overlap`` against ``tile_size`` when both are given.  Returns the
    arguments as keyword arguments of ``UniRestore.restore``."""
    mode = check_tiling_mode(tiling)
    if tile_size is not None and (not _is_int(tile_size) or tile_size < 1):
        raise ValueError(
            'tile_size must be a positive int (pixels) or None, got '
            f'{tile_size!r}'
        )
    if tile_overlap is not None and (
        not _is_int(tile_overlap) or tile_overlap < 0
    ):
        raise ValueError(
            'tile_overlap must be an int >= 0 (pixels) or None, got '
            f'{tile_overlap!r}'
        )
    if tile_threshold is not None and (
        not _is_int(tile_threshold) or tile_threshold < 0
    ):
        raise ValueError(
            'tile_threshold must be an int >= 0 (pixels) or None, got '
            f'{tile_threshold!r}'
        )
    if tile_size is not None and tile_overlap is not None:
        check_tile_settings(tile_size, tile_overlap, 0, 1)
    return dict(
        tiling=mode,
        tile_size=tile_size,
        tile_overlap=tile_overlap,
        tile_threshold=tile_threshold,
    )


def resolve_tiling(
    defaults: Dict[str, int],
    size_divisor: int,
    tiling='auto',
    tile_size: Optional[int] = None,
    tile_overlap: Optional[int] = None,
    tile_threshold: Optional[int] = None,
) -> Tuple[Union[str, bool], TileSettings]:
    """The tiling mode and settings for a call: ``None`` arguments take
    ``defaults`` (the preset's ``tiling``); ``tile_threshold`` defaults to the
    preset's, or to ``tile_size`` when only ``tile_size`` is given and it is
    larger than the preset's threshold would allow."""
    mode = check_tiling_mode(tiling)
    size = defaults['tile_size'] if tile_size is None else tile_size
    overlap = (
        defaults['tile_overlap'] if tile_overlap is None else tile_overlap
    )
    threshold = (
        defaults['tile_threshold']
        if tile_threshold is None
        else tile_threshold
    )
    if tile_threshold is None and _is_int(size) and _is_int(threshold):
        threshold = max(threshold, size)
    return mode, check_tile_settings(size, overlap, threshold, size_divisor)


def wants_tiles(
    mode: Union[str, bool], settings: TileSettings, height: int, width: int
) -> bool:
    """Whether a (scaled, padded) ``height x width`` image is restored in
    tiles."""
    if mode == 'auto':
        return max(height, width) > settings.tile_threshold
    return bool(mode)


def axis_tiles(
    length: int, tile: int, overlap: int, divisor: int, grid: int
) -> List[Tuple[int, int]]:
    """``(start, size)`` of the tiles along one axis of ``length`` px (a
    multiple of ``divisor``); see the module."""
    if length <= tile:
        return [(0, length)]
    # on the latent grid
    overlap = min(-(-overlap // grid) * grid, tile - grid)
    n = max(2, math.ceil((length - overlap) / (tile - overlap)))
    while True:
        total = -(-(length + (n - 1) * overlap) // divisor) * divisor
        units, extra = divmod(total // divisor, n)
        sizes = [(units + (i < extra)) * divisor for i in range(n)]
        if max(sizes) <= tile:
            break
        n += 1  # only when the rounding pushed a tile past tile_size
    # in grid steps, shared by the n - 1 overlaps
    spare = (total - length) // grid
    q, r = divmod(spare, n - 1)
    overlaps = [(q + (i < r)) * grid for i in range(n - 1)]
    starts = [0]
    for i in range(n - 1):
        starts.append(starts[-1] + sizes[i] - overlaps[i])
    assert starts[-1] + sizes[-1] == length and min(overlaps) >= overlap, (
        length,
        tile,
        overlap,
        sizes,
        overlaps,
    )
    return list(zip(starts, sizes))


def plan_tiles(
    height: int, width: int, settings: TileSettings, divisor: int, grid: int
) -> List[Tuple[int, int, int, int]]:
    """``(y, x, h, w)`` of every tile of a ``height x width`` image (row by
    row)."""
    rows = axis_tiles(
        height, settings.tile_size, settings.tile_overlap, divisor, grid
    )
    cols = axis_tiles(
        width, settings.tile_size, settings.tile_overlap, divisor, grid
    )
    return [(y, x, h, w) for y, h in rows for x, w in cols]


def smooth_ramp(o: int) -> torch.Tensor:
    """The rising half of the window over an overlap of ``o`` px:
    ``sin^2(pi/2 * (i + 0.5) / o)``; it and its mirror sum to 1."""
    i = torch.arange(o, dtype=torch.float64)
    return torch.sin(math.pi / 2 * (i + 0.5) / o) ** 2


def hard_ramp(o: int) -> torch.Tensor:
    """A hard cut in the middle of the overlap (0 then 1): no blending, for
    showing what a seam looks like."""
    return (torch.arange(o) >= o / 2).double()


def axis_weights(
    tiles: Sequence[Tuple[int, int]],
    ramp: Callable[[int], torch.Tensor] = smooth_ramp,
) -> List[torch.Tensor]:
    """The 1-D blending window of each tile along an axis (float64)."""
    out = []
    for i, (start, size) in enumerate(tiles):
        w = torch.ones(size, dtype=torch.float64)
        if i > 0:  # overlap with the previous tile at this tile's start
            prev_start, prev_size = tiles[i - 1]
            o = prev_start + prev_size - start
            if o > 0:
                w[:o] *= ramp(o)
        if i + 1 < len(tiles):  # overlap with the next tile at this tile's end
            o = start + size - tiles[i + 1][0]
            if o > 0:
                w[size - o :] *= ramp(o).flip(0)
        out.append(w)
    return out


def _crop(t: torch.Tensor, y: int, x: int, h: int, w: int) -> torch.Tensor:
    return t[..., y : y + h, x : x + w]


def count_tiles(
    height: int,
    width: int,
    settings: TileSettings,
    divisor: int,
    grid: int = 8,
) -> int:
    return len(plan_tiles(height, width, settings, divisor, grid))


def tiled_restore(
    model,
    images: torch.Tensor,
    tasks: Sequence[str],
    num_steps: int = 1,
    generator: Union[torch.Generator, List[torch.Generator], None] = None,
    settings: Optional[TileSettings] = None,
    ramp: Callable[[int], torch.Tensor] = smooth_ramp,
) -> Dict[str, torch.Tensor]:
    """Restore a padded batch ``images`` (B, 3, H, W) in [0, 1] tile by tile
    under each of ``tasks``.

    ``model`` is a :class:`~unirestore_mm.models.UniRestore`; ``H`` and ``W``
    must be multiples of its ``size_divisor``.  Returns
    ``{task: (B, 3, H, W)}`` in [0, 1] (unclamped), like ``model.decode`` on
    the whole image.  Differentiable when autograd is on (the memory is then
    not bounded: every tile's graph is kept).
    """
    b, _, height, width = images.shape
    divisor = model.size_divisor
    if height % divisor or width % divisor:
        raise ValueError(
            f'tiled_restore: the image ({height}x{width}) must be padded to '
            f'a multiple of {divisor}'
        )
    vae = model.prior.vae
    # the VAE's factor: pixels per latent pixel
    grid = 2 ** (len(vae.config.block_out_channels) - 1)
    tiles = plan_tiles(height, width, settings, divisor, grid)
    rows = sorted({(y, h) for y, _, h, _ in tiles})
    cols = sorted({(x, w) for _, x, _, w in tiles})
    row_w = dict(zip(rows, axis_weights(rows, ramp)))
    col_w = dict(zip(cols, axis_weights(cols, ramp)))

    # the noises of the whole latent, drawn as the untiled path draws them: the
    # VAE's sample, then DDIM's start
    latent_shape = (
        b,
        vae.config.latent_channels,
        height // grid,
        width // grid,
    )
    # float32 for a float32 or bf16/fp16 restorer (whose latent and scheduler
    # islands are float32), float64 for float64
    dtype = torch.promote_types(
        next(vae.encoder.parameters()).dtype, torch.float32
    )
    enc_noise = randn_tensor(
        latent_shape, generator=generator, device=images.device, dtype=dtype
    )
    ddim_noise = randn_tensor(
        latent_shape, generator=generator, device=images.device, dtype=dtype
    )

    out: Dict[str, torch.Tensor] = {}
    weight_sum = torch.zeros(
        1, 1, height, width, dtype=torch.float64, device=images.device
    )
    for y, x, h, w in tiles:
        ly, lx, lh, lw = y // grid, x // grid, h // grid, w // grid
        encoded = model.encode(
            _crop(images, y, x, h, w), noise=_crop(enc_noise, ly, lx, lh, lw)
        )
        latent = model.sample(
            encoded.latent,
            num_steps=num_steps,
            noise=_crop(ddim_noise, ly, lx, lh, lw),
        )
        weight = (row_w[(y, h)].view(-1, 1) * col_w[(x, w)].view(1, -1)).to(
            images.device
        )
        for task in tasks:
            restored = model.decode(latent, encoded.skips, task)
            if task not in out:
                out[task] = torch.zeros(
                    b,
                    restored.shape[1],
                    height,
                    width,
                    dtype=restored.dtype,
                    device=restored.device,
                )
            # in place: differentiable too (add and copy keep no input for
            # their backward)
            acc = out[task]
            acc[..., y : y + h, x : x + w] = _crop(
                acc, y, x, h, w
            ) + restored * weight.to(restored.dtype)
        weight_sum[..., y : y + h, x : x + w] += weight
        del encoded, latent
    norm = weight_sum.to(next(iter(out.values())).dtype)
    return {task: out[task] / norm for task in tasks}
