"""TFA: the Task Feature Adapter of UniRestore (Chen et al., CVPR 2025), and
the bank of task prompts.

A small learnable token per task (``ir`` for people, ``cls`` for classifiers,
``seg`` for segmenters, ...) decides what the VAE decoder emphasises.  Before
each of the decoder's first three up blocks a TFA reads the matching CFRM skip,
updates the task token with three gates (token updating), uses the token to
select skip channels (feature transform), fuses the result into the decoder
feature (feature fusion), and hands a narrower token to the next TFA.
"""

from typing import Iterable, List, Optional, Tuple

import torch
from torch import nn
from torch.nn import functional as F


def _gate(c_skip: int, out: int) -> nn.Sequential:
    """InstanceNorm -> Conv3x3 -> GELU -> Conv3x3 -> global average pool: one
    token-sized vector per image."""
    return nn.Sequential(
        nn.InstanceNorm2d(c_skip),
        nn.Conv2d(c_skip, c_skip, 3, padding=1),
        nn.GELU(),
        nn.Conv2d(c_skip, out, 3, padding=1),
        nn.AdaptiveAvgPool2d(1),
    )


def pooled_conv3x3(g: torch.Tensor, conv: nn.Conv2d) -> torch.Tensor:
    """``AdaptiveAvgPool2d(1)(conv(g))`` for a 3x3, stride-1, zero-padded
    ``conv``, without the full-size conv.

    The mean of a linear map is the map of the means: with zero padding, kernel
    tap ``(ky, kx)`` reads ``g`` over the whole image less one edge row and one
    edge column, so each tap's mean input is the image sum less those edges
    (plus their corner), over ``H*W``.  Sums accumulate in float32; the result
    (B, out, 1, 1) equals the pooled conv up to rounding, at a ninth of a 1x1
    conv's cost instead of a full 3x3 conv at the skip's size (174 of the TFAs'
    421 GFLOPs at 512 px, SD scale).
    """
    b, c, h, w = g.shape
    acc = (
        torch.float32
        if g.dtype in (torch.float16, torch.bfloat16)
        else g.dtype
    )
    total = g.sum((-2, -1), dtype=acc)
    zero = torch.zeros_like(total)
    # excluded row of tap ky (0: the last row, 1: none, 2: the first row);
    # likewise columns by kx
    rows = torch.stack(
        [
            g[..., -1, :].sum(-1, dtype=acc),
            zero,
            g[..., 0, :].sum(-1, dtype=acc),
        ],
        -1,
    )
    cols = torch.stack(
        [
            g[..., :, -1].sum(-1, dtype=acc),
            zero,
            g[..., :, 0].sum(-1, dtype=acc),
        ],
        -1,
    )
    corners = torch.zeros(b, c, 3, 3, dtype=acc, device=g.device)
    corners[..., 0, 0] = g[..., -1, -1]
    corners[..., 0, 2] = g[..., -1, 0]
    corners[..., 2, 0] = g[..., 0, -1]
    corners[..., 2, 2] = g[..., 0, 0]
    means = (
        total[..., None, None]
        - rows[..., :, None]
        - cols[..., None, :]
        + corners
    ) / (h * w)
    out = torch.einsum('bckl,ockl->bo', means, conv.weight.to(acc))
    if conv.bias is not None:
        out = out + conv.bias.to(acc)
    return out.to(g.dtype)[..., None, None]


def _is_plain_instance_norm(m: nn.Module) -> bool:
    return (
        isinstance(m, nn.InstanceNorm2d)
        and not m.affine
        and not m.track_running_stats
    )


def _is_pooled_conv3x3(conv: nn.Module, pool: nn.Module) -> bool:
    return (
        isinstance(conv, nn.Conv2d)
        and isinstance(pool, nn.AdaptiveAvgPool2d)
        and pool.output_size in (1, (1, 1))
        and conv.kernel_size == (3, 3)
        and conv.stride == (1, 1)
        and conv.padding == (1, 1)
        and conv.dilation == (1, 1)
        and conv.groups == 1
        and conv.padding_mode == 'zeros'
    )


class TaskFeatureAdapter(nn.Module):
    """One TFA.

    Args:
        c_x: channels of the decoder feature it fuses into.
        c_skip: channels of the CFRM skip; also the token width ``D``.
        prompt_len: number of tokens ``T`` of a task prompt.
        next_dim: token width of the next TFA (``D // 2`` in UniRestore);
            ``None`` for the last TFA.
    """

    def __init__(
        self,
        c_x: int,
        c_skip: int,
        prompt_len: int = 1,
        next_dim: Optional[int] = None,
    ):
        super().__init__()
        self.fast_gates = True  # see gates()
        self.prompt_len = prompt_len
        self.dim = dim = c_skip
        # token updating
        self.filter_gate = _gate(c_skip, prompt_len * dim)
        self.info_gate = _gate(c_skip, prompt_len * dim)
        self.content_gate = _gate(c_skip, prompt_len * dim)
        self.out_gate = nn.Linear(prompt_len * dim, dim)
        # feature transform
        self.skip_in = nn.Conv2d(c_skip, dim, 1)
        self.skip_out = nn.Conv2d(dim, c_skip, 1)
        # feature fusion
        self.fuse = nn.Conv2d(c_skip + c_x, c_x, 1)
        # next token
        self.next_token = (
            nn.Linear(dim, next_dim) if next_dim is not None else None
        )

    def gates(self, skip: torch.Tensor) -> List[torch.Tensor]:
        """The filter, info and content gates of ``skip``, each (B, T*D, 1, 1).

        With :attr:`fast_gates` (the default) the three gates share one
        InstanceNorm of the skip (the norms have no parameters, so they compute
        the same thing) and the last conv + average pool is
        :func:`pooled_conv3x3`; otherwise each gate runs its ``nn.Sequential``
        as written.  The two agree up to float rounding.
        """
        seqs = (self.filter_gate, self.info_gate, self.content_gate)
        if not self.fast_gates or not all(
            len(s) == 5
            and _is_plain_instance_norm(s[0])
            and _is_pooled_conv3x3(s[3], s[4])
            for s in seqs
        ):
            return [s(skip) for s in seqs]
        norms = {(s[0].eps, s[0].num_features) for s in seqs}
        normed = seqs[0][0](skip) if len(norms) == 1 else None
        return [
            pooled_conv3x3(
                s[2](s[1](normed if normed is not None else s[0](skip))), s[3]
            )
            for s in seqs
        ]

    def forward(
        self, x: torch.Tensor, skip: torch.Tensor, token: torch.Tensor
    ) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
        """``x`` (B, c_x, h, w), ``skip`` (B, c_skip, h, w), ``token`` (B, T,
        D) -> (x', next token or None)."""
        b = skip.shape[0]
        shape = (b, self.prompt_len, self.dim)
        gates = self.gates(skip)
        f = F.softmax(gates[0].view(shape), dim=-1)
        i = F.softmax(gates[1].view(shape), dim=-1)
        c = torch.tanh(gates[2].view(shape))
        token = f * token + i * c
        # (B, D, 1, 1)
        o = torch.tanh(self.out_gate(token.flatten(1)))[:, :, None, None]

        skip = skip + self.skip_out(o * self.skip_in(skip))
        x = x + self.fuse(torch.cat([x, skip], dim=1))

        next_token = (
            F.gelu(self.next_token(token))
            if self.next_token is not None
            else None
        )
        return x, next_token


class TaskFeatureAdapters(nn.Module):
    """The decoder's TFAs, deepest first; ``skip_channels`` and ``x_channels``
    are given deepest first too."""

    def __init__(
        self,
        x_channels: Iterable[int],
        skip_channels: Iterable[int],
        prompt_len: int = 1,
    ):
        super().__init__()
        x_channels, skip_channels = list(x_channels), list(skip_channels)
        if len(x_channels) != len(skip_channels):
            raise ValueError(
                f'TaskFeatureAdapters: {len(x_channels)} decoder widths but '
                f'{len(skip_channels)} skip widths; give one of each per TFA'
            )
        nexts = skip_channels[1:] + [None]
        self.adapters = nn.ModuleList(
            TaskFeatureAdapter(cx, cs, prompt_len, nxt)
            for cx, cs, nxt in zip(x_channels, skip_channels, nexts)
        )
        self.prompt_len = prompt_len
        self.prompt_dim = skip_channels[0]

    def __len__(self) -> int:
        return len(self.adapters)

    def __getitem__(self, idx: int) -> TaskFeatureAdapter:
        return self.adapters[idx]


class TaskPromptBank(nn.Module):
    """Named learnable task prompts, each of shape ``(prompt_len, dim)`` and
    initialised to zero.

    ``bank['cls']`` returns the prompt; an unknown name raises ``ValueError``
    listing the known tasks. ``bank.add_task('det')`` adds a prompt for a new
    task (optionally copied from an existing one).
    """

    def __init__(
        self,
        tasks: Iterable[str] = ('ir', 'cls', 'seg'),
        prompt_len: int = 1,
        dim: int = 512,
    ):
        super().__init__()
        self.prompt_len = prompt_len
        self.dim = dim
        self.prompts = nn.ParameterDict()
        for task in tasks:
            self.add_task(task)

    @property
    def tasks(self) -> Tuple[str, ...]:
        return tuple(self.prompts.keys())

    def add_task(
        self, name: str, init_from: Optional[str] = None
    ) -> nn.Parameter:
        if not isinstance(name, str) or not name.isidentifier():
            raise ValueError(
                'task name must be a Python identifier such as "det"; got '
                f'{name!r}'
            )
        if name in self.prompts:
            raise ValueError(
                f'task {name!r} already has a prompt; known tasks: '
                f'{list(self.tasks)}'
            )
        ref = next(iter(self.prompts.values()), None)
        kwargs = (
            dict(device=ref.device, dtype=ref.dtype) if ref is not None else {}
        )
        if init_from is not None:
            value = self[init_from].detach().clone()
        else:
            value = torch.zeros(self.prompt_len, self.dim, **kwargs)
        self.prompts[name] = nn.Parameter(value)
        return self.prompts[name]

    def __contains__(self, name: str) -> bool:
        return name in self.prompts

    def __getitem__(self, name: str) -> nn.Parameter:
        if name not in self.prompts:
            raise ValueError(
                f'unknown task {name!r}; known tasks: {list(self.tasks)} '
                '(add one with add_task(name))'
            )
        return self.prompts[name]

    def extra_repr(self) -> str:
        return (
            f'tasks={list(self.tasks)}, prompt_len={self.prompt_len}, '
            f'dim={self.dim}'
        )
