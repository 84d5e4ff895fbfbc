"""TFA: the Task Feature Adapter of UniRestore (Chen et al., CVPR 2025), and the bank of task prompts.

A small learnable token per task (``ir`` for people, ``cls`` for classifiers, ``seg`` for segmenters, ...)
decides what the VAE decoder emphasises.  Before each of the decoder's first three up blocks a TFA reads the
matching CFRM skip, updates the task token with three gates (token updating), uses the token to select skip
channels (feature transform), fuses the result into the decoder feature (feature fusion), and hands a
narrower token to the next TFA.
"""
from typing import Iterable, Optional, Tuple

import torch
from torch import nn
from torch.nn import functional as F


def _gate(c_skip: int, out: int) -> nn.Sequential:
    """InstanceNorm -> Conv3x3 -> GELU -> Conv3x3 -> global average pool: one token-sized vector per image."""
    return nn.Sequential(
        nn.InstanceNorm2d(c_skip),
        nn.Conv2d(c_skip, c_skip, 3, padding=1),
        nn.GELU(),
        nn.Conv2d(c_skip, out, 3, padding=1),
        nn.AdaptiveAvgPool2d(1),
    )


class TaskFeatureAdapter(nn.Module):
    """One TFA.

    Args:
        c_x: channels of the decoder feature it fuses into.
        c_skip: channels of the CFRM skip; also the token width ``D``.
        prompt_len: number of tokens ``T`` of a task prompt.
        next_dim: token width of the next TFA (``D // 2`` in UniRestore); ``None`` for the last TFA.
    """

    def __init__(self, c_x: int, c_skip: int, prompt_len: int = 1, next_dim: Optional[int] = None):
        super().__init__()
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
        self.next_token = nn.Linear(dim, next_dim) if next_dim is not None else None

    def forward(self, x: torch.Tensor, skip: torch.Tensor,
                token: torch.Tensor) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
        """``x`` (B, c_x, h, w), ``skip`` (B, c_skip, h, w), ``token`` (B, T, D) -> (x', next token or None)."""
        b = skip.shape[0]
        shape = (b, self.prompt_len, self.dim)
        f = F.softmax(self.filter_gate(skip).view(shape), dim=-1)
        i = F.softmax(self.info_gate(skip).view(shape), dim=-1)
        c = torch.tanh(self.content_gate(skip).view(shape))
        token = f * token + i * c
        o = torch.tanh(self.out_gate(token.flatten(1)))[:, :, None, None]  # (B, D, 1, 1)

        skip = skip + self.skip_out(o * self.skip_in(skip))
        x = x + self.fuse(torch.cat([x, skip], dim=1))

        next_token = F.gelu(self.next_token(token)) if self.next_token is not None else None
        return x, next_token


class TaskFeatureAdapters(nn.Module):
    """The decoder's TFAs, deepest first; ``skip_channels`` and ``x_channels`` are given deepest first too."""

    def __init__(self, x_channels: Iterable[int], skip_channels: Iterable[int], prompt_len: int = 1):
        super().__init__()
        x_channels, skip_channels = list(x_channels), list(skip_channels)
        if len(x_channels) != len(skip_channels):
            raise ValueError(f'TaskFeatureAdapters: {len(x_channels)} decoder widths but '
                             f'{len(skip_channels)} skip widths; give one of each per TFA')
        nexts = skip_channels[1:] + [None]
        self.adapters = nn.ModuleList(
            TaskFeatureAdapter(cx, cs, prompt_len, nxt) for cx, cs, nxt in zip(x_channels, skip_channels, nexts))
        self.prompt_len = prompt_len
        self.prompt_dim = skip_channels[0]

    def __len__(self) -> int:
        return len(self.adapters)

    def __getitem__(self, idx: int) -> TaskFeatureAdapter:
        return self.adapters[idx]


class TaskPromptBank(nn.Module):
    """Named learnable task prompts, each of shape ``(prompt_len, dim)`` and initialised to zero.

    ``bank['cls']`` returns the prompt; an unknown name raises ``ValueError`` listing the known tasks.
    ``bank.add_task('det')`` adds a prompt for a new task (optionally copied from an existing one).
    """

    def __init__(self, tasks: Iterable[str] = ('ir', 'cls', 'seg'), prompt_len: int = 1, dim: int = 512):
        super().__init__()
        self.prompt_len = prompt_len
        self.dim = dim
        self.prompts = nn.ParameterDict()
        for task in tasks:
            self.add_task(task)

    @property
    def tasks(self) -> Tuple[str, ...]:
        return tuple(self.prompts.keys())

    def add_task(self, name: str, init_from: Optional[str] = None) -> nn.Parameter:
        if not isinstance(name, str) or not name.isidentifier():
            raise ValueError(f'task name must be a Python identifier such as "det"; got {name!r}')
        if name in self.prompts:
            raise ValueError(f'task {name!r} already has a prompt; known tasks: {list(self.tasks)}')
        ref = next(iter(self.prompts.values()), None)
        kwargs = dict(device=ref.device, dtype=ref.dtype) if ref is not None else {}
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
            raise ValueError(f'unknown task {name!r}; known tasks: {list(self.tasks)} '
                             '(add one with add_task(name))')
        return self.prompts[name]

    def extra_repr(self) -> str:
        return f'tasks={list(self.tasks)}, prompt_len={self.prompt_len}, dim={self.dim}'

