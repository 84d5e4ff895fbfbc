"""The VAE paths of UniRestore: the encoder with CFRM taps and the decoder with
TFA fusion.

Both functions drive a *frozen* diffusers ``AutoencoderKL`` block by block and
insert UniRestore's trainable modules where the paper puts them:

* encoder: after each down block but the last, a CFRM stage restores the
  feature; the restored feature goes on down the encoder and is kept as a skip.
  The last down block's input is detached, so the latent's gradients never
  reach CFRM.
* decoder: before each of the first up blocks, a TFA fuses the matching skip
  (deepest first) under the task prompt.

Frozen parts run without autograd wherever nothing upstream of them needs a
gradient.  Where a gradient must go through frozen convolutions (the decoder
blocks between the TFAs and the image in stage 2), they keep their weight only,
not their input: a frozen conv's input is needed for its weight's gradient
alone (docs/precision.md measures the saving).
"""

import functools
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterable, List, Optional

import torch
from diffusers import AutoencoderKL
from diffusers.models.autoencoders.vae import DiagonalGaussianDistribution
from torch import nn
from torch.nn import functional as F

from .cfrm import CFRM
from .precision import island_dtype, module_dtype, run_in_own_dtype
from .tfa import TaskFeatureAdapters


@dataclass
class EncoderOutput:
    """``latent``: scaled latent sample ``z0`` (B, 4, H/8, W/8); ``skips``: the
    CFRM outputs, shallowest first."""

    latent: torch.Tensor
    skips: List[torch.Tensor]


def needs_grad(*things) -> bool:
    """True when autograd is on and any given tensor, or any parameter of any
    given module, requires grad."""
    if not torch.is_grad_enabled():
        return False
    for t in things:
        if isinstance(t, torch.Tensor):
            if t.requires_grad:
                return True
        elif t is not None and any(p.requires_grad for p in t.parameters()):
            return True
    return False


class _FrozenConv2dFn(torch.autograd.Function):
    """``conv2d`` with a weight that takes no gradient: saves the weight (a
    parameter, no new memory) and the input's shape, not the input; the
    backward gives the input's gradient only, with the kernel autograd itself
    uses."""

    @staticmethod
    def forward(ctx, x, weight, bias, stride, padding, dilation, groups):
        ctx.save_for_backward(weight)
        ctx.conf = (x.shape, stride, padding, dilation, groups)
        return F.conv2d(x, weight, bias, stride, padding, dilation, groups)

    @staticmethod
    def backward(ctx, grad_out):
        (weight,) = ctx.saved_tensors
        shape, stride, padding, dilation, groups = ctx.conf
        grad_in = torch.nn.grad.conv2d_input(
            shape, weight, grad_out, stride, padding, dilation, groups
        )
        return grad_in, None, None, None, None, None, None


def _frozen_conv_forward(conv: nn.Conv2d, x: torch.Tensor) -> torch.Tensor:
    if (
        torch.is_grad_enabled()
        and x.requires_grad
        and not conv.weight.requires_grad
        and (conv.bias is None or not conv.bias.requires_grad)
    ):
        return _FrozenConv2dFn.apply(
            x,
            conv.weight,
            conv.bias,
            conv.stride,
            conv.padding,
            conv.dilation,
            conv.groups,
        )
    return nn.Conv2d.forward(conv, x)


@contextmanager
def frozen_convs_keep_weights_only(modules: Iterable[nn.Module]):
    """Within the block, the frozen ``nn.Conv2d`` (zero padding) among
    ``modules`` and their children save only their weight for the backward
    pass.  Outputs and gradients are those of ``nn.Conv2d``."""
    patched = []
    for module in modules:
        for m in module.modules():
            if (
                type(m) is nn.Conv2d
                and m.padding_mode == 'zeros'
                and not isinstance(m.padding, str)
                and not m.weight.requires_grad
                and 'forward' not in m.__dict__
            ):
                m.forward = functools.partial(_frozen_conv_forward, m)
                patched.append(m)
    try:
        yield
    finally:
        for m in patched:
            del m.forward


def encode_with_cfrm(
    vae: AutoencoderKL,
    cfrm: Optional[CFRM],
    images: torch.Tensor,
    generator: Optional[torch.Generator] = None,
    sample: bool = True,
    noise: Optional[torch.Tensor] = None,
) -> EncoderOutput:
    """Encode ``images`` in [-1, 1] into a scaled latent, restoring features
    with ``cfrm`` (``None``: plain VAE).

    Without CFRM the skips are the plain encoder features at the same places
    (the stage-1 targets).  ``noise`` (the latent's shape): the standard normal
    noise of the latent sample instead of drawing it from ``generator`` (tiled
    restoration crops it from the whole image's noise).
    """
    enc = vae.encoder
    blocks = enc.down_blocks
    n_taps = len(blocks) - 1
    if cfrm is not None and len(cfrm) != n_taps:
        raise ValueError(
            f'CFRM has {len(cfrm)} stages but the VAE encoder has {n_taps} '
            'taps'
        )
    skips = []
    grad_cfrm = needs_grad(images, cfrm)
    with torch.set_grad_enabled(needs_grad(images)):
        h = enc.conv_in(images)
    for i, block in enumerate(blocks[:-1]):
        # blocks after a trainable CFRM stage must keep activations so the
        # earlier stages get gradients
        with torch.set_grad_enabled(
            grad_cfrm if i > 0 else needs_grad(images)
        ):
            h = block(h)
        if cfrm is not None:
            with torch.set_grad_enabled(grad_cfrm):
                h = cfrm.stages[i](h)
        skips.append(h)
    with torch.no_grad():
        h = blocks[-1](h.detach())
        h = enc.mid_block(h)
        h = enc.conv_out(enc.conv_act(enc.conv_norm_out(h)))
        if vae.quant_conv is not None:
            h = vae.quant_conv(h)
        # fp32 island: the latent distribution, its noise, the scaling
        h = h.to(island_dtype('latent', h.dtype))
        dist = DiagonalGaussianDistribution(h)
        # what dist.sample computes, with the noise given
        if sample and noise is not None:
            z = dist.mean + dist.std * noise.to(
                device=dist.mean.device, dtype=dist.mean.dtype
            )
        else:
            z = dist.sample(generator=generator) if sample else dist.mode()
        z = z * vae.config.scaling_factor
    return EncoderOutput(latent=z, skips=skips)


def decode_with_tfa(
    vae: AutoencoderKL,
    tfas: Optional[TaskFeatureAdapters],
    latent: torch.Tensor,
    skips: Optional[List[torch.Tensor]] = None,
    prompt: Optional[torch.Tensor] = None,
) -> torch.Tensor:
    """Decode a scaled latent to an image in [-1, 1]; with ``tfas``, fuse
    ``skips`` under ``prompt`` (T, D)."""
    dec = vae.decoder
    use_tfa = tfas is not None
    if use_tfa:
        if skips is None or prompt is None:
            raise ValueError(
                'decode_with_tfa: skips and a task prompt are required when '
                'TFAs are given'
            )
        if len(skips) != len(tfas):
            raise ValueError(
                f'decode_with_tfa: {len(tfas)} TFAs but {len(skips)} skips'
            )
        deepest_first = list(reversed(skips))
        token = (
            prompt.unsqueeze(0)
            .expand(latent.shape[0], -1, -1)
            .to(module_dtype(tfas, latent.dtype))
        )
    with torch.set_grad_enabled(needs_grad(latent)):
        # the latent's scaling in float32 for a bf16/fp16 decoder (the 'latent'
        # island; the sampler gives float32)
        z = (
            latent.to(island_dtype('latent', module_dtype(dec, latent.dtype)))
            / vae.config.scaling_factor
        )
        if vae.post_quant_conv is not None:
            z = run_in_own_dtype(vae.post_quant_conv, z)
        h = dec.mid_block(run_in_own_dtype(dec.conv_in, z), None)
    # a conv's (a norm may run in float32)
    up_dtype = dec.up_blocks[0].resnets[0].conv1.weight.dtype
    h = h.to(up_dtype)
    grad_after = needs_grad(latent, tfas, prompt, *(skips or []))
    # gradients pass through, weights learn nothing
    frozen = [dec.up_blocks, dec.conv_out] if grad_after else []
    with (
        torch.set_grad_enabled(grad_after),
        frozen_convs_keep_weights_only(frozen),
    ):
        for i, block in enumerate(dec.up_blocks):
            if use_tfa and i < len(tfas):
                h, token = tfas[i](h, deepest_first[i], token)
            h = block(h, None)
        # the output head runs in its own dtype (float32 for a bf16/fp16
        # restorer, see precision.FP32_MODULES)
        h = dec.conv_out(dec.conv_act(run_in_own_dtype(dec.conv_norm_out, h)))
    return h
