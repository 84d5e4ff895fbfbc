"""Size presets of UniRestore.

``sd-turbo``: the SD 2.1 / SD-Turbo architecture of the paper.  Set
``prior=dict(pretrained='/path/to/sd-turbo')`` to load the real prior from a
local diffusers folder; without it the prior has random weights (timing and
shape checks only).  ``tiny``: the same family at toy width, for tests and CPU
demos (a 64x64 image in well under a second).
"""

import copy
from typing import Any, Dict

from .prior import SD_SCHEDULER

SD_TURBO_VAE = dict(
    in_channels=3,
    out_channels=3,
    latent_channels=4,
    layers_per_block=2,
    norm_num_groups=32,
    sample_size=768,
    block_out_channels=(128, 256, 512, 512),
    down_block_types=('DownEncoderBlock2D',) * 4,
    up_block_types=('UpDecoderBlock2D',) * 4,
    act_fn='silu',
    scaling_factor=0.18215,
)

SD_TURBO_UNET = dict(
    sample_size=64,
    in_channels=4,
    out_channels=4,
    layers_per_block=2,
    block_out_channels=(320, 640, 1280, 1280),
    down_block_types=(
        'CrossAttnDownBlock2D',
        'CrossAttnDownBlock2D',
        'CrossAttnDownBlock2D',
        'DownBlock2D',
    ),
    up_block_types=(
        'UpBlock2D',
        'CrossAttnUpBlock2D',
        'CrossAttnUpBlock2D',
        'CrossAttnUpBlock2D',
    ),
    cross_attention_dim=1024,
    attention_head_dim=(5, 10, 20, 20),
    use_linear_projection=True,
    flip_sin_to_cos=True,
    freq_shift=0,
    norm_num_groups=32,
    act_fn='silu',
)

PRESETS: Dict[str, Dict[str, Any]] = {
    'sd-turbo': dict(
        prior=dict(
            pretrained=None,
            vae=SD_TURBO_VAE,
            unet=SD_TURBO_UNET,
            scheduler=SD_SCHEDULER,
            seed=0,
        ),
        cfrm=dict(num_naf_blocks=(1, 1, 9), expansion=4, groups=16),
        controller=dict(
            model_channels=256,
            out_channels=256,
            channel_mult=(1, 1, 2, 2),
            num_res_blocks=2,
            down_block_types=(
                'AttnDownBlock2D',
                'AttnDownBlock2D',
                'AttnDownBlock2D',
                'DownBlock2D',
            ),
            num_heads=4,
            norm_num_groups=32,
        ),
        prompt_len=1,
        tasks=('ir', 'cls', 'seg'),
        min_size=512,
        # tiled restoration (see tiling.py): images whose scaled, padded side
        # exceeds tile_threshold are restored in tiles of at most tile_size px
        # (8 size divisors), at least tile_overlap px (4 latent px) apart
        tiling=dict(tile_size=512, tile_overlap=32, tile_threshold=768),
    ),
    'tiny': dict(
        prior=dict(
            pretrained=None,
            vae=dict(
                in_channels=3,
                out_channels=3,
                latent_channels=4,
                layers_per_block=1,
                norm_num_groups=8,
                sample_size=64,
                block_out_channels=(16, 32, 64, 64),
                down_block_types=('DownEncoderBlock2D',) * 4,
                up_block_types=('UpDecoderBlock2D',) * 4,
                act_fn='silu',
                scaling_factor=0.18215,
            ),
            unet=dict(
                sample_size=8,
                in_channels=4,
                out_channels=4,
                layers_per_block=1,
                block_out_channels=(32, 64),
                down_block_types=('CrossAttnDownBlock2D', 'DownBlock2D'),
                up_block_types=('UpBlock2D', 'CrossAttnUpBlock2D'),
                cross_attention_dim=32,
                attention_head_dim=8,
                use_linear_projection=True,
                norm_num_groups=8,
                act_fn='silu',
            ),
            scheduler=SD_SCHEDULER,
            seed=0,
        ),
        cfrm=dict(num_naf_blocks=(1, 1, 1), expansion=4, groups=16),
        controller=dict(
            model_channels=32,
            out_channels=32,
            channel_mult=(1, 2),
            num_res_blocks=1,
            down_block_types=('AttnDownBlock2D', 'DownBlock2D'),
            num_heads=2,
            norm_num_groups=8,
        ),
        prompt_len=1,
        tasks=('ir', 'cls', 'seg'),
        min_size=None,
        # sd-turbo's scaled: 8 divisors, 4 latent px
        tiling=dict(tile_size=128, tile_overlap=32, tile_threshold=192),
    ),
}


def get_preset(name: str) -> Dict[str, Any]:
    """A deep copy of a preset's config; unknown names raise ``ValueError``
    listing the presets."""
    if name not in PRESETS:
        raise ValueError(
            f'unknown UniRestore preset {name!r}; known presets: '
            f'{sorted(PRESETS)}'
        )
    return copy.deepcopy(PRESETS[name])


def merge_config(
    base: Dict[str, Any], override: Dict[str, Any]
) -> Dict[str, Any]:
    """Recursively merge ``override`` into a copy of ``base`` (dicts merge,
    other values replace)."""
    out = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge_config(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out
