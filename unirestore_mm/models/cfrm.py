"""CFRM: the Complementary Feature Restoration Module of UniRestore (Chen et
al., CVPR 2025).

CFRM restores the features of the frozen VAE encoder.  After each of the
encoder's first three down blocks a :class:`CFRMStage` (a few NAFNet blocks and
one :class:`CFRMBlock`) cleans the feature; the restored feature both continues
down the encoder and is kept as a skip for the decoder's Task Feature Adapters.

``NAFBlock`` follows NAFNet (Chen et al., ECCV 2022): LayerNorm2d, 1x1
expansion, depthwise 3x3, SimpleGate, simplified channel attention, and a
SimpleGate FFN, with both residual branches scaled by β and γ that start at
zero, so a new block is the identity.
"""

from typing import Sequence

import torch
from torch import nn
from torch.nn import functional as F


class LayerNorm2d(nn.Module):
    """LayerNorm over the channel dimension of an NCHW tensor, with a weight
    and a bias per channel."""

    def __init__(self, channels: int, eps: float = 1e-6):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # F.layer_norm normalises trailing dims: move channels last and back.
        x = F.layer_norm(
            x.permute(0, 2, 3, 1),
            (x.shape[1],),
            self.weight,
            self.bias,
            self.eps,
        )
        return x.permute(0, 3, 1, 2)


class SimpleGate(nn.Module):
    """Split the channels in two halves and multiply them (NAFNet's replacement
    for an activation)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, b = x.chunk(2, dim=1)
        return a * b


class NAFBlock(nn.Module):
    """NAFNet's baseline-free block: a gated depthwise-conv branch and a gated
    FFN, each with a zero-init scale."""

    def __init__(self, channels: int, dw_expand: int = 2, ffn_expand: int = 2):
        super().__init__()
        dw = channels * dw_expand
        ffn = channels * ffn_expand
        self.norm1 = LayerNorm2d(channels)
        self.conv1 = nn.Conv2d(channels, dw, 1)
        self.conv2 = nn.Conv2d(dw, dw, 3, padding=1, groups=dw)
        self.gate = SimpleGate()
        # simplified channel attention
        self.sca = nn.Sequential(
            nn.AdaptiveAvgPool2d(1), nn.Conv2d(dw // 2, dw // 2, 1)
        )
        self.conv3 = nn.Conv2d(dw // 2, channels, 1)

        self.norm2 = LayerNorm2d(channels)
        self.conv4 = nn.Conv2d(channels, ffn, 1)
        self.conv5 = nn.Conv2d(ffn // 2, channels, 1)

        self.beta = nn.Parameter(torch.zeros(1, channels, 1, 1))
        self.gamma = nn.Parameter(torch.zeros(1, channels, 1, 1))

    def forward(self, inp: torch.Tensor) -> torch.Tensor:
        x = self.gate(self.conv2(self.conv1(self.norm1(inp))))
        x = self.conv3(x * self.sca(x))
        y = inp + x * self.beta
        x = self.conv5(self.gate(self.conv4(self.norm2(y))))
        return y + x * self.gamma


class CFRMBlock(nn.Module):
    """The CFRM block: enhance, attend within channel groups, integrate across
    groups, recover.

    With ``d = expansion * c`` channels in ``g`` groups:

    1. feature enhancement: ``Conv1x1(c -> d)`` then ``GroupNorm(g, d)``;
    2. intra-group channel attention: ``y = GELU(GroupConv3x3(y))``, then
       ``y * GroupConv1x1(AvgPool(y))``;
    3. inter-group channel integration: one weight per group from
       ``Conv1x1(d -> g)(AvgPool(y))``;
    4. feature recovery: ``Conv1x1(d -> c)``, the block input added back, then
       one more :class:`NAFBlock`.
    """

    def __init__(self, channels: int, expansion: int = 4, groups: int = 16):
        super().__init__()
        hidden = channels * expansion
        if hidden % groups:
            raise ValueError(
                f'CFRMBlock: channels*expansion={hidden} must be divisible '
                f'by groups={groups}'
            )
        self.groups = groups
        # 1. feature enhancement
        self.conv_in = nn.Conv2d(channels, hidden, 1)
        self.norm = nn.GroupNorm(groups, hidden)
        # 2. intra-group channel attention
        self.group_conv = nn.Conv2d(
            hidden, hidden, 3, padding=1, groups=groups
        )
        self.intra_group_attn = nn.Conv2d(hidden, hidden, 1, groups=groups)
        # 3. inter-group channel integration
        self.inter_group_attn = nn.Conv2d(hidden, groups, 1)
        # 4. feature recovery
        self.conv_out = nn.Conv2d(hidden, channels, 1)
        self.naf = NAFBlock(channels)

    def forward(self, inp: torch.Tensor) -> torch.Tensor:
        y = self.norm(self.conv_in(inp))
        y = F.gelu(self.group_conv(y))
        y = y * self.intra_group_attn(F.adaptive_avg_pool2d(y, 1))
        # (B, g, 1, 1): one weight per group
        w = self.inter_group_attn(F.adaptive_avg_pool2d(y, 1))
        b, d, h, wd = y.shape
        y = (
            y.view(b, self.groups, d // self.groups, h, wd) * w.unsqueeze(2)
        ).view(b, d, h, wd)
        return self.naf(inp + self.conv_out(y))


class CFRMStage(nn.Sequential):
    """``num_naf_blocks`` NAFBlocks followed by one CFRMBlock, all at
    ``channels``."""

    def __init__(
        self,
        channels: int,
        num_naf_blocks: int = 1,
        expansion: int = 4,
        groups: int = 16,
    ):
        super().__init__(
            *[NAFBlock(channels) for _ in range(num_naf_blocks)],
            CFRMBlock(channels, expansion=expansion, groups=groups),
        )


class CFRM(nn.Module):
    """The three CFRM stages placed after the VAE encoder's down blocks 0, 1
    and 2.

    Args:
        channels: output channels of those down blocks (128, 256, 512 for the
            SD VAE).
        num_naf_blocks: NAFBlocks before each stage's CFRMBlock ((1, 1, 9) in
            UniRestore).
    """

    def __init__(
        self,
        channels: Sequence[int],
        num_naf_blocks: Sequence[int] = (1, 1, 9),
        expansion: int = 4,
        groups: int = 16,
    ):
        super().__init__()
        if len(channels) != len(num_naf_blocks):
            raise ValueError(
                f'CFRM: got {len(channels)} channel sizes but '
                f'{len(num_naf_blocks)} '
                'num_naf_blocks entries; give one per stage'
            )
        self.stages = nn.ModuleList(
            CFRMStage(c, n, expansion=expansion, groups=groups)
            for c, n in zip(channels, num_naf_blocks)
        )

    def __len__(self) -> int:
        return len(self.stages)
