"""Skip adapters (after SCEdit, Jiang et al., CVPR 2024) and the controlled
pass of the frozen UNet.

Every skip connection of the UNet's down path gets one adapter.  For a skip
``x`` with ``C`` channels and the Controller map ``c`` of the same spatial
size::

    p  = Conv1x1(c_cond -> C)(c)
    x' = Tuner(x + p) + p + x,    Tuner = Conv1x1(C -> C) -> GELU -> Conv1x1(C -> C)

The UNet's up path then reads the adapted skips; the down path and the middle
block are untouched.
"""

from typing import Dict, List, Sequence, Tuple

import torch
from diffusers import UNet2DConditionModel
from torch import nn


class SkipAdapter(nn.Module):
    """One conditional skip adapter: ``x' = Tuner(x + p) + p + x`` with ``p``
    the projected control map."""

    def __init__(self, channels: int, cond_channels: int):
        super().__init__()
        self.proj = nn.Conv2d(cond_channels, channels, 1)
        self.tuner = nn.Sequential(
            nn.Conv2d(channels, channels, 1),
            nn.GELU(),
            nn.Conv2d(channels, channels, 1),
        )

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        p = self.proj(cond)
        return self.tuner(x + p) + p + x


def unet_skip_channels(unet_config) -> List[int]:
    """Channels of the skip connections that a diffusers
    ``UNet2DConditionModel`` with this config emits."""
    channels = list(unet_config['block_out_channels'])
    layers = unet_config['layers_per_block']
    if not isinstance(layers, int):
        raise ValueError(
            'skip adapters need an int layers_per_block in the UNet config; '
            f'got {layers!r}'
        )
    skips = [channels[0]]  # conv_in
    for i, c in enumerate(channels):
        skips += [c] * layers
        if i < len(channels) - 1:
            skips.append(c)  # the downsampler's output
    return skips


class SkipAdapters(nn.Module):
    """One :class:`SkipAdapter` per UNet skip connection (12 at SD scale:
    320x4, 640x3, 1280x5)."""

    def __init__(self, skip_channels: Sequence[int], cond_channels: int = 256):
        super().__init__()
        self.adapters = nn.ModuleList(
            SkipAdapter(c, cond_channels) for c in skip_channels
        )

    def __len__(self) -> int:
        return len(self.adapters)

    def forward(
        self,
        skips: Sequence[torch.Tensor],
        control: Dict[Tuple[int, int], torch.Tensor],
    ) -> Tuple[torch.Tensor, ...]:
        if len(skips) != len(self.adapters):
            raise ValueError(
                f'SkipAdapters holds {len(self.adapters)} adapters but the '
                f'UNet emitted {len(skips)} skips; the adapters were built '
                'for another UNet config'
            )
        out = []
        for x, adapter in zip(skips, self.adapters):
            key = tuple(x.shape[-2:])
            if key not in control:
                raise ValueError(
                    f'no Controller map of spatial size {key} for a UNet '
                    f'skip; the Controller gives {sorted(control)} (its '
                    'levels must match the UNet resolutions)'
                )
            out.append(adapter(x, control[key]))
        return tuple(out)


def check_unet_supported(unet: UNet2DConditionModel) -> None:
    """Fail at build time on UNet features that :func:`controlled_unet_forward`
    does not reproduce."""
    cfg = unet.config
    unsupported = {
        'class_embed_type': cfg.class_embed_type,
        'addition_embed_type': cfg.addition_embed_type,
        'encoder_hid_dim_type': cfg.encoder_hid_dim_type,
        'time_embedding_act_fn': getattr(cfg, 'time_embedding_act_fn', None),
    }
    bad = {k: v for k, v in unsupported.items() if v is not None}
    if bad or cfg.center_input_sample:
        raise ValueError(
            'UniRestore supports SD-style UNets without extra embeddings; '
            f'this UNet sets {bad}'
            + (' and center_input_sample' if cfg.center_input_sample else '')
        )


def controlled_unet_forward(
    unet: UNet2DConditionModel,
    sample: torch.Tensor,
    timesteps: torch.Tensor,
    encoder_hidden_states: torch.Tensor,
    control: Dict[Tuple[int, int], torch.Tensor],
    adapters: SkipAdapters,
) -> torch.Tensor:
    """The UNet's noise prediction with its down-path skip connections adapted
    by ``adapters``.

    Mirrors ``UNet2DConditionModel.forward`` for SD-style UNets (time
    embedding, conv_in, down blocks, middle block, up blocks, output head) and
    changes one thing: the up path reads ``adapters(skips, control)``.
    """
    emb = unet.time_embedding(
        unet.get_time_embed(sample=sample, timestep=timesteps)
    )
    h = unet.conv_in(sample)
    skips = (h,)
    for block in unet.down_blocks:
        if getattr(block, 'has_cross_attention', False):
            h, res = block(
                hidden_states=h,
                temb=emb,
                encoder_hidden_states=encoder_hidden_states,
            )
        else:
            h, res = block(hidden_states=h, temb=emb)
        skips += res
    if getattr(unet.mid_block, 'has_cross_attention', False):
        h = unet.mid_block(h, emb, encoder_hidden_states=encoder_hidden_states)
    else:
        h = unet.mid_block(h, emb)

    skips = adapters(skips, control)
    for i, block in enumerate(unet.up_blocks):
        n = len(block.resnets)
        res, skips = skips[-n:], skips[:-n]
        # force the upsampler to the skip's size (matters only for sizes that
        # are not a power-of-two multiple)
        upsample_size = (
            skips[-1].shape[2:] if i < len(unet.up_blocks) - 1 else None
        )
        if getattr(block, 'has_cross_attention', False):
            h = block(
                hidden_states=h,
                temb=emb,
                res_hidden_states_tuple=res,
                encoder_hidden_states=encoder_hidden_states,
                upsample_size=upsample_size,
            )
        else:
            h = block(
                hidden_states=h,
                temb=emb,
                res_hidden_states_tuple=res,
                upsample_size=upsample_size,
            )
    if unet.conv_norm_out is not None:
        h = unet.conv_act(unet.conv_norm_out(h))
    return unet.conv_out(h)
