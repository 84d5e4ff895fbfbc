"""The time-aware Controller of UniRestore (Chen et al., CVPR 2025), after
StableSR's time-aware encoder.

The Controller reads the degraded image's latent ``z0`` and the diffusion
timestep and returns one ``out_channels`` map per UNet resolution, keyed by
spatial size ``(h, w)`` (64, 32, 16 and 8 pixels for a 512x512 image at SD
scale).  The skip adapters turn these maps into corrections of the frozen
UNet's skip connections.  The last conv of every ResNet block and the attention
output projections start at zero, so the Controller starts by emitting only
bias-free, near-trivial maps and learning begins from the prior.
"""

from typing import Dict, Sequence, Tuple

import torch
from diffusers.models.attention_processor import Attention
from diffusers.models.embeddings import TimestepEmbedding, Timesteps
from diffusers.models.resnet import ResnetBlock2D
from diffusers.models.unets.unet_2d_blocks import (
    UNetMidBlock2D,
    get_down_block,
)
from torch import nn


class Controller(nn.Module):
    """Time-aware encoder of the LQ latent.

    Args:
        in_channels: latent channels (4).
        model_channels: base width (256).
        out_channels: width of every output map (256).
        channel_mult: width multiplier per level ((1, 1, 2, 2)); one level per
            UNet resolution.
        num_res_blocks: ResNet blocks per level (2).
        down_block_types: diffusers down-block names per level.
        num_heads: attention heads (4).
        norm_num_groups: GroupNorm groups of the ResNet blocks (32).
    """

    def __init__(
        self,
        in_channels: int = 4,
        model_channels: int = 256,
        out_channels: int = 256,
        channel_mult: Sequence[int] = (1, 1, 2, 2),
        num_res_blocks: int = 2,
        down_block_types: Sequence[str] = (
            'AttnDownBlock2D',
            'AttnDownBlock2D',
            'AttnDownBlock2D',
            'DownBlock2D',
        ),
        num_heads: int = 4,
        norm_num_groups: int = 32,
    ):
        super().__init__()
        if len(channel_mult) != len(down_block_types):
            raise ValueError(
                f'Controller: channel_mult has {len(channel_mult)} levels '
                f'but down_block_types has {len(down_block_types)}; give one '
                'block type per level'
            )
        temb = model_channels * 4
        self.time_proj = Timesteps(
            model_channels, flip_sin_to_cos=True, downscale_freq_shift=0
        )
        self.time_embedding = TimestepEmbedding(
            model_channels, temb, act_fn='silu'
        )
        self.conv_in = nn.Conv2d(in_channels, model_channels, 3, padding=1)

        self.down_blocks = nn.ModuleList()
        widths = []
        width = model_channels
        for i, (mult, block_type) in enumerate(
            zip(channel_mult, down_block_types)
        ):
            out = model_channels * mult
            self.down_blocks.append(
                get_down_block(
                    block_type,
                    num_layers=num_res_blocks,
                    in_channels=width,
                    out_channels=out,
                    temb_channels=temb,
                    add_downsample=i < len(channel_mult) - 1,
                    resnet_eps=1e-5,
                    resnet_act_fn='silu',
                    resnet_groups=norm_num_groups,
                    downsample_padding=1,
                    attention_head_dim=out // num_heads,
                    downsample_type='conv',
                    dropout=0.0,
                )
            )
            widths.append(out)
            width = out
        self.mid_block = UNetMidBlock2D(
            in_channels=width,
            temb_channels=temb,
            dropout=0.0,
            resnet_eps=1e-5,
            resnet_act_fn='silu',
            resnet_groups=norm_num_groups,
            attention_head_dim=width // num_heads,
        )
        # each level's output -> out_channels, conditioned on time
        self.level_outs = nn.ModuleList(
            ResnetBlock2D(
                in_channels=w,
                out_channels=out_channels,
                temb_channels=temb,
                groups=norm_num_groups,
                eps=1e-5,
                non_linearity='silu',
            )
            for w in widths
        )
        self.out_channels = out_channels
        self._zero_init()

    def _zero_init(self) -> None:
        for module in self.modules():
            if isinstance(module, ResnetBlock2D):
                nn.init.zeros_(module.conv2.weight)
                nn.init.zeros_(module.conv2.bias)
            elif isinstance(module, Attention):
                nn.init.zeros_(module.to_out[0].weight)
                nn.init.zeros_(module.to_out[0].bias)

    def forward(
        self, z0: torch.Tensor, timesteps: torch.Tensor
    ) -> Dict[Tuple[int, int], torch.Tensor]:
        """``z0`` (B, C, h, w), ``timesteps`` (B,) ->
        ``{(h_i, w_i): (B, out_channels, h_i, w_i)}``."""
        t = self.time_proj(timesteps).to(dtype=z0.dtype)
        emb = self.time_embedding(t)
        h = self.conv_in(z0)
        levels = []
        for block in self.down_blocks:
            h, states = block(h, emb)
            # the level's feature before its downsampler: the output of its
            # last ResNet (+attention) layer
            levels.append(states[len(block.resnets) - 1])
        # the deepest level reports the middle block's output
        levels[-1] = self.mid_block(h, emb)
        # .contiguous() as in the authors' release: the attention blocks leave
        # some levels non-contiguous, and the GroupNorm/conv kernels then sum
        # in another order (differences up to ~1e-6 relative)
        return {
            tuple(f.shape[-2:]): out(f.contiguous(), emb)
            for f, out in zip(levels, self.level_outs)
        }
