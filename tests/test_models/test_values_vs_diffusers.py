"""The block-by-block VAE and UNet passes of UniRestore against diffusers' own
forward, and the DDIM sampler against diffusers' ``DDIMScheduler`` loop written
out plainly (tiny preset, random weights, CPU).

With UniRestore's own modules taken out (no CFRM, no TFA, skip adapters that
add zero) the package's passes are the prior's passes, so the comparisons are
exact: ``torch.equal``, not a tolerance.  Each test also checks that the module
it takes out does act when present, so an equality cannot come from a path that
never runs.
"""

import copy

import pytest
import torch
from diffusers import DDIMScheduler, DDPMScheduler
from torch import nn

from unirestore_mm.models import UniRestore
from unirestore_mm.models.autoencoder import decode_with_tfa, encode_with_cfrm
from unirestore_mm.models.skip_adapters import controlled_unet_forward

# SD 2.1 / SD-Turbo's scheduler, written out here (not read from the package)
# so a wrong package setting shows.
SD_BETAS = dict(
    num_train_timesteps=1000,
    beta_start=0.00085,
    beta_end=0.012,
    beta_schedule='scaled_linear',
)
DDIM_SETTINGS = dict(
    SD_BETAS,
    prediction_type='epsilon',
    clip_sample=False,
    set_alpha_to_one=False,
    steps_offset=1,
    timestep_spacing='trailing',
)
# "trailing" spacing: round(arange(1000, 0, -1000 / n)) - 1, so every schedule
# starts at the last timestep.
TRAILING = {
    1: [999],
    2: [999, 499],
    3: [999, 666, 332],
    4: [999, 749, 499, 249],
}


@pytest.fixture(scope='module')
def model():
    torch.manual_seed(0)
    m = UniRestore('tiny').eval()
    # the zero-initialised branches get weights, so "the module acts" checks
    # below mean something
    with torch.no_grad():
        for name, p in m.named_parameters():
            if not name.startswith('prior.') and (p == 0).all():
                p.normal_(0, 0.05)
    return m


def _gen(seed):
    return torch.Generator().manual_seed(seed)


def _zero_adapters(adapters):
    """A copy of the skip adapters that adds exactly zero: p = proj(c) = 0 and
    the tuner's last conv gives 0."""
    zeroed = copy.deepcopy(adapters)
    with torch.no_grad():
        for a in zeroed.adapters:
            for conv in (a.proj, a.tuner[-1]):
                conv.weight.zero_()
                conv.bias.zero_()
    return zeroed


class _PassTFA(nn.Module):
    """A TFA that changes nothing (neither the feature nor the token)."""

    def forward(self, h, skip, token):
        return h, token


def _max_diff(a, b):
    return float((a.double() - b.double()).abs().max())


@pytest.mark.parametrize('size', [(64, 64), (48, 80), (16, 32)])
def test_plain_encoder_is_diffusers_encode(model, size):
    vae = model.prior.vae
    x = torch.rand(2, 3, *size, generator=_gen(1)) * 2 - 1
    feats = []
    hooks = [
        b.register_forward_hook(lambda mod, inp, out: feats.append(out))
        for b in vae.encoder.down_blocks[:-1]
    ]
    try:
        with torch.no_grad():
            dist = vae.encode(x).latent_dist
    finally:
        for h in hooks:
            h.remove()
    sf = vae.config.scaling_factor
    ours = encode_with_cfrm(vae, None, x, generator=_gen(5))
    ref = dist.sample(generator=_gen(5)) * sf
    assert ours.latent.shape == (2, 4, size[0] // 8, size[1] // 8)
    assert torch.equal(ours.latent, ref), _max_diff(ours.latent, ref)
    assert torch.equal(
        encode_with_cfrm(vae, None, x, sample=False).latent, dist.mode() * sf
    )
    # the skips (stage-1 targets) are the outputs of down blocks 0, 1, 2,
    # shallowest first
    assert len(ours.skips) == len(feats) == 3
    for s, f in zip(ours.skips, feats):
        assert torch.equal(s, f)


def test_encode_with_identity_cfrm_is_diffusers_encode(model, monkeypatch):
    vae = model.prior.vae
    img = torch.rand(1, 3, 32, 48, generator=_gen(2))
    with torch.no_grad():
        ref = (
            vae.encode(img * 2 - 1).latent_dist.sample(generator=_gen(3))
            * vae.config.scaling_factor
        )
    with_cfrm = model.encode(img, generator=_gen(3)).latent
    # CFRM acts on the latent path when present
    assert not torch.equal(with_cfrm, ref)
    monkeypatch.setattr(
        model.cfrm,
        'stages',
        nn.ModuleList([nn.Identity() for _ in model.cfrm.stages]),
    )
    assert torch.equal(model.encode(img, generator=_gen(3)).latent, ref)


@pytest.mark.parametrize('latent_size', [(8, 8), (6, 10), (2, 4)])
def test_plain_decoder_is_diffusers_decode(model, latent_size):
    vae = model.prior.vae
    z = torch.randn(2, 4, *latent_size, generator=_gen(4))
    with torch.no_grad():
        ref = vae.decode(z / vae.config.scaling_factor).sample
    ours = decode_with_tfa(vae, None, z)
    assert ours.shape == (2, 3, latent_size[0] * 8, latent_size[1] * 8)
    assert torch.equal(ours, ref), _max_diff(ours, ref)


def test_decode_with_pass_through_tfas_is_diffusers_decode(model, monkeypatch):
    vae = model.prior.vae
    img = torch.rand(1, 3, 32, 32, generator=_gen(5))
    enc = model.encode(img, generator=_gen(6))
    with torch.no_grad():
        ref = (
            vae.decode(enc.latent / vae.config.scaling_factor).sample + 1
        ) / 2
    # the TFAs act when present
    assert not torch.equal(model.decode(enc.latent, enc.skips, 'ir'), ref)
    monkeypatch.setattr(
        model, 'tfa', nn.ModuleList([_PassTFA() for _ in model.tfa.adapters])
    )
    assert torch.equal(model.decode(enc.latent, enc.skips, 'ir'), ref)


@pytest.mark.parametrize('latent_size', [(8, 8), (4, 12), (2, 2)])
@pytest.mark.parametrize('t', [999, 500, 1])
def test_controlled_unet_with_zero_adapters_is_diffusers_unet(
    model, latent_size, t
):
    unet = model.prior.unet
    z = torch.randn(2, 4, *latent_size, generator=_gen(7))
    z0 = torch.randn(2, 4, *latent_size, generator=_gen(8))
    ts = torch.full((2,), t)
    emb = model.prior.null_embedding.expand(2, -1, -1)
    with torch.no_grad():
        ref = unet(z, ts, encoder_hidden_states=emb).sample
        control = model.controller(z0, ts)
        adapted = controlled_unet_forward(
            unet, z, ts, emb, control, model.skip_adapters
        )
        ours = controlled_unet_forward(
            unet, z, ts, emb, control, _zero_adapters(model.skip_adapters)
        )
    # the adapters act when they add something
    assert not torch.equal(adapted, ref)
    assert torch.equal(ours, ref), _max_diff(ours, ref)


def test_predict_noise_with_zero_adapters_is_diffusers_unet(
    model, monkeypatch
):
    z = torch.randn(3, 4, 8, 8, generator=_gen(9))
    z0 = torch.randn(3, 4, 8, 8, generator=_gen(10))
    ts = torch.tensor([999, 499, 3])
    monkeypatch.setattr(
        model, 'skip_adapters', _zero_adapters(model.skip_adapters)
    )
    with torch.no_grad():
        ref = model.prior.unet(
            z,
            ts,
            encoder_hidden_states=model.prior.null_embedding.expand(3, -1, -1),
        ).sample
        assert torch.equal(model.predict_noise(z, ts, z0), ref)


@pytest.mark.parametrize('num_steps', [1, 2, 3, 4])
def test_sample_is_the_plain_ddim_loop(model, monkeypatch, num_steps):
    """``UniRestore.sample`` (adapters adding zero) = add_noise at the first
    timestep, then DDIM steps of the UNet."""
    monkeypatch.setattr(
        model, 'skip_adapters', _zero_adapters(model.skip_adapters)
    )
    unet = model.prior.unet
    z0 = torch.randn(2, 4, 8, 8, generator=_gen(11))
    ours = model.sample(z0, num_steps=num_steps, generator=_gen(12))

    scheduler = DDIMScheduler(**DDIM_SETTINGS)
    scheduler.set_timesteps(num_steps)
    assert scheduler.timesteps.tolist() == TRAILING[num_steps]
    noise = torch.randn(z0.shape, generator=_gen(12))
    x = DDPMScheduler(**SD_BETAS).add_noise(
        z0, noise, scheduler.timesteps[:1].repeat(2)
    )
    emb = model.prior.null_embedding.expand(2, -1, -1)
    with torch.no_grad():
        for t in scheduler.timesteps:
            eps = unet(x, t, encoder_hidden_states=emb).sample
            x = scheduler.step(eps, t, x).prev_sample
    assert torch.equal(ours, x), _max_diff(ours, x)


def test_one_step_ddim_is_the_closed_form(model, monkeypatch):
    """One trailing DDIM step from t=999 to the end (alpha_prev =
    alphas_cumprod[0], set_alpha_to_one=False), with alphas_cumprod from the
    scaled-linear betas computed here: x = sqrt(a0) * x0_pred + sqrt(1 - a0) *
    eps."""
    monkeypatch.setattr(
        model, 'skip_adapters', _zero_adapters(model.skip_adapters)
    )
    betas = (
        torch.linspace(0.00085**0.5, 0.012**0.5, 1000, dtype=torch.float64)
        ** 2
    )
    a = torch.cumprod(1 - betas, 0)
    z0 = torch.randn(1, 4, 8, 8, generator=_gen(13))
    ours = model.sample(z0, num_steps=1, generator=_gen(14))
    noise = torch.randn(z0.shape, generator=_gen(14)).double()
    zt = a[999].sqrt() * z0.double() + (1 - a[999]).sqrt() * noise
    with torch.no_grad():
        eps = model.prior.unet(
            zt.float(),
            torch.tensor([999]),
            encoder_hidden_states=model.prior.null_embedding,
        ).sample.double()
    x0 = (zt - (1 - a[999]).sqrt() * eps) / a[999].sqrt()
    expected = a[0].sqrt() * x0 + (1 - a[0]).sqrt() * eps
    # float32 arithmetic in diffusers against float64 here: the UNet's output
    # differs at float32 rounding, and dividing by sqrt(a_999) = 0.068
    # amplifies that ~15x; the effect checked (a wrong timestep or alpha) is
    # O(1)
    torch.testing.assert_close(ours.double(), expected, rtol=0, atol=2e-4)
