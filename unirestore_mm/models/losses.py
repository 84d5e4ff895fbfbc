"""UniRestore's training losses (DESIGN §3).

Stage 1 (CFRM, Controller, skip adapters)::

    0.1*MSE(s1, s1_hq) + 0.1*MSE(s2, s2_hq) + 0.01*MSE(s3, s3_hq) + MSE(pred_z0, h0)

``s_i`` are the CFRM skips of the degraded image, ``s_i_hq`` the plain encoder
features of the clean image, ``h0`` the clean latent,
``z_t = add_noise(h0, noise, t)`` with ``t`` drawn from {249, 499, 749, 999,
999, 999}, the Controller conditioned on the degraded latent, and
``pred_z0 = (z_t - sqrt(1-a_t) eps) / sqrt(a_t)``.

Stage 2 (TFAs and prompts), per task: ``ir``: ``10*L1(pred, hq)``;
``cls``/``seg``: ``0.1*CE(recognizer(pred), target) + L1(pred_ir, hq)`` where
``pred_ir`` decodes the same latent under ``ir``.
"""

from typing import Dict, Optional, Sequence

import torch
from diffusers.utils.torch_utils import randn_tensor
from torch.nn import functional as F

from .autoencoder import encode_with_cfrm
from .unirestore import UniRestore

STAGE1_TIMESTEPS = (249, 499, 749, 999, 999, 999)
STAGE1_FEATURE_WEIGHTS = (0.1, 0.1, 0.01)


def predicted_x0(
    model: UniRestore, z_t: torch.Tensor, eps: torch.Tensor, t: torch.Tensor
) -> torch.Tensor:
    """``(z_t - sqrt(1 - a_t) * eps) / sqrt(a_t)`` with the prior's DDPM
    ``alphas_cumprod``."""
    a = model.prior.ddpm.alphas_cumprod.to(
        device=z_t.device, dtype=torch.float32
    )[t.long()]
    a = a.view(-1, *([1] * (z_t.dim() - 1))).to(z_t.dtype)
    return (z_t - (1 - a).sqrt() * eps) / a.sqrt()


def stage1_loss(
    model: UniRestore,
    lq: torch.Tensor,
    gt: torch.Tensor,
    generator: Optional[torch.Generator] = None,
    timesteps: Sequence[int] = STAGE1_TIMESTEPS,
    feature_weights: Sequence[float] = STAGE1_FEATURE_WEIGHTS,
) -> Dict[str, torch.Tensor]:
    """Stage-1 losses for degraded ``lq`` and clean ``gt`` batches in [0, 1]
    (padded to the size divisor)."""
    if len(feature_weights) != len(model.cfrm):
        raise ValueError(
            f'stage1_loss: {len(feature_weights)} feature weights for '
            f'{len(model.cfrm)} CFRM stages'
        )
    lq_enc = model.encode(lq, generator=generator)
    with torch.no_grad():
        hq_enc = encode_with_cfrm(
            model.prior.vae, None, gt * 2 - 1, generator=generator
        )
    losses = {}
    for i, (w, s, s_hq) in enumerate(
        zip(feature_weights, lq_enc.skips, hq_enc.skips)
    ):
        losses[f'loss_feat{i + 1}'] = w * F.mse_loss(s, s_hq)

    b = lq.shape[0]
    rng_device = generator.device if generator is not None else lq.device
    choice = torch.randint(
        len(timesteps), (b,), generator=generator, device=rng_device
    )
    t = torch.as_tensor(timesteps, device=lq.device)[choice.to(lq.device)]
    h0 = hq_enc.latent
    noise = randn_tensor(
        h0.shape, generator=generator, device=h0.device, dtype=h0.dtype
    )
    z_t = model.prior.ddpm.add_noise(h0, noise, t)
    eps = model.predict_noise(z_t, t, lq_enc.latent)
    losses['loss_latent'] = F.mse_loss(predicted_x0(model, z_t, eps, t), h0)
    return losses


def ir_loss(
    pred: torch.Tensor, gt: torch.Tensor, weight: float = 10.0
) -> torch.Tensor:
    """Stage-2 ``ir`` loss: ``weight * L1(pred, gt)`` (10 in the paper)."""
    return weight * F.l1_loss(pred, gt)
