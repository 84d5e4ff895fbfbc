"""Reduced precision (bf16/fp16) with float32 islands, the 'auto' default,
batched restoring, and what stage-2 training keeps for the backward pass
(models/precision.py, docs/precision.md)."""

from contextlib import contextmanager

import numpy as np
import pytest
import torch

from unirestore_mm.models import UniRestore, precision
from unirestore_mm.models.precision import (
    FP32_MODULES,
    auto_dtype,
    resolve_dtype,
)

REDUCED = [torch.bfloat16, torch.float16]
# Error of the restored image in [0, 1] against the float32 restoration of the
# tiny preset (random weights, 1x3x64x64, seed 0), measured with
# tools/analysis_tools/precision_islands.py (docs/precision.md), with margin.
# Measured: bf16 max 6.95e-3, mean 1.18e-3 (1.03e-2 and 1.55e-3 without the
# islands); fp16 max 1.11e-3, mean 1.62e-4.
MAX_ERR = {torch.bfloat16: 8.5e-3, torch.float16: 1.5e-3}
MEAN_ERR = {torch.bfloat16: 1.4e-3, torch.float16: 2.0e-4}


def _tiny(**kw):
    """The tiny preset with its zero-initialised parameters (NAFBlock scales,
    the Controller's last convs, the prompts) filled with small random values,
    so every module acts on the output."""
    torch.manual_seed(0)
    model = UniRestore(preset='tiny').eval()
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if not name.startswith('prior.') and p.abs().max() == 0:
                p.copy_(torch.randn(p.shape, generator=gen) * 0.02)
    return model.to(kw['dtype']) if 'dtype' in kw else model


@pytest.fixture(scope='module')
def images():
    x = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    return (torch.nn.functional.avg_pool2d(x, 5, 1, 2) * 0.8 + x * 0.2).clamp(
        0, 1
    )


@pytest.fixture(scope='module')
def reference(images):
    return _tiny().restore(images, seed=0, min_size=None)


@contextmanager
def island_off(name):
    old = precision.FP32_ARITHMETIC[name]
    precision.FP32_ARITHMETIC[name] = False
    try:
        yield
    finally:
        precision.FP32_ARITHMETIC[name] = old


# -- names, errors, auto ------------------------------------------------------
def test_dtype_names_and_bad_values():
    assert (
        resolve_dtype('bf16') is torch.bfloat16
        and resolve_dtype('float16') is torch.float16
    )
    assert (
        resolve_dtype(torch.float32) is torch.float32
        and resolve_dtype('FP32') is torch.float32
    )
    for bad in ('fp8', 'int8', torch.int8, 3):
        with pytest.raises(ValueError, match='dtype'):
            resolve_dtype(bad)
    with pytest.raises(ValueError, match=r'dtype=.fp8'):
        UniRestore(preset='tiny', dtype='fp8')


def test_auto_is_fp32_on_cpu_and_bit_identical(images):
    assert (
        auto_dtype('cpu') is torch.float32
        and resolve_dtype('auto', 'cpu') is torch.float32
    )
    torch.manual_seed(0)
    plain = UniRestore(preset='tiny').eval()
    torch.manual_seed(0)
    auto = UniRestore(preset='tiny', dtype='auto').eval()
    assert all(p.dtype == torch.float32 for p in auto.parameters())
    assert torch.equal(
        plain.restore(images, seed=0, min_size=None),
        auto.restore(images, seed=0, min_size=None),
    )


def test_auto_on_cpu_is_bf16_for_an_sd_class_restorer_only_with_native_bf16(
    monkeypatch,
):
    """Measured on an AVX512-BF16 CPU: bf16 1.9x faster than fp32 for the
    sd-turbo architecture, 2x slower for the tiny preset; without native bf16
    (or when the model is unknown) float32."""
    from types import SimpleNamespace

    from unirestore_mm.models import precision

    # what auto_dtype reads of a restorer: its UNet's first block width
    def fake(width):
        return SimpleNamespace(
            prior=SimpleNamespace(
                unet=SimpleNamespace(
                    config=SimpleNamespace(
                        block_out_channels=(width, 2 * width)
                    )
                )
            )
        )

    tiny = UniRestore(preset='tiny')
    for native in (True, False):
        monkeypatch.setattr(
            precision, 'cpu_has_native_bf16', lambda native=native: native
        )
        sd = torch.bfloat16 if native else torch.float32
        assert (
            auto_dtype('cpu', fake(320)) is sd
            and resolve_dtype('auto', 'cpu', model=fake(320)) is sd
        )
        assert auto_dtype('cpu', fake(160)) is torch.float32
        assert (
            auto_dtype('cpu', tiny) is torch.float32
            and auto_dtype('cpu') is torch.float32
        )
        assert tiny.set_dtype('auto').dtype is torch.float32


# -- the islands stay float32 -------------------------------------------------
@pytest.mark.parametrize('dtype', REDUCED)
@pytest.mark.parametrize('how', ['constructor', 'to', 'method', 'set_dtype'])
def test_cast_keeps_fp32_islands(dtype, how):
    model = UniRestore(preset='tiny')
    if how == 'constructor':
        model = UniRestore(preset='tiny', dtype=dtype)
    elif how == 'to':
        model.to(dtype=dtype)
    elif how == 'method':
        model.half() if dtype is torch.float16 else model.bfloat16()
    else:
        model.set_dtype(precision.dtype_name(dtype))
    assert model.dtype is dtype
    islands = {
        n
        for path in FP32_MODULES
        for n, _ in model.get_submodule(path).named_parameters(prefix=path)
    }
    assert islands
    for name, p in model.named_parameters():
        assert p.dtype == (torch.float32 if name in islands else dtype), name
    assert model.prior.null_embedding.dtype == torch.float32
    model.to(torch.float32)  # and back
    assert all(p.dtype == torch.float32 for p in model.parameters())


@pytest.mark.parametrize('dtype', REDUCED)
def test_island_outputs_are_fp32(dtype, images):
    model = _tiny(dtype=dtype)
    seen = {}
    model.prior.vae.decoder.conv_out.register_forward_hook(
        lambda m, a, o: seen.setdefault('head', o.dtype) and None
    )
    model.prior.unet.conv_out.register_forward_hook(
        lambda m, a, o: seen.setdefault('unet', o.dtype) and None
    )
    with torch.no_grad():
        enc = model.encode(images.to(dtype))
        z = model.sample(
            enc.latent, generator=torch.Generator().manual_seed(0)
        )
        y = model.decode(z, enc.skips, 'ir')
    # latent + scheduler islands
    assert enc.latent.dtype == torch.float32 and z.dtype == torch.float32
    # the rest computes in the reduced precision
    assert enc.skips[0].dtype == dtype and seen['unet'] == dtype
    assert seen['head'] == torch.float32 and y.dtype == torch.float32
    out = model.restore(images.double(), seed=0, min_size=None)
    assert out.dtype == torch.float64  # the caller's dtype comes back


# -- error against float32 ----------------------------------------------------
def _err(model, images, reference):
    y = model.restore(images, seed=0, min_size=None)
    assert torch.isfinite(y).all()
    return (y - reference).abs()


@pytest.mark.parametrize('dtype', REDUCED)
def test_reduced_precision_error_vs_fp32(dtype, images, reference):
    err = _err(_tiny(dtype=dtype), images, reference)
    assert (
        float(err.max()) < MAX_ERR[dtype]
        and float(err.mean()) < MEAN_ERR[dtype]
    ), (err.max(), err.mean())
    assert float(err.max()) > 0  # it did run in the reduced precision


def test_removing_the_islands_breaks_the_error_bound(images, reference):
    """The bound above is tight enough to see the islands: bf16 without them
    exceeds it."""
    model = _tiny(dtype=torch.bfloat16)
    for path in FP32_MODULES:
        model.get_submodule(path).to(torch.bfloat16)
    with island_off('scheduler'), island_off('latent'), island_off('geometry'):
        err = _err(model, images, reference)
    assert (
        float(err.mean()) > MEAN_ERR[torch.bfloat16]
        or float(err.max()) > MAX_ERR[torch.bfloat16]
    )


# -- batched restoring --------------------------------------------------------
def test_restore_arrays_equals_per_image():
    from unirestore_mm.datasets.transforms.restore_image import RestoreImage

    t = RestoreImage(
        restorer=dict(preset='tiny'),
        allow_random_weights=True,
        batch_size=4,
        seed=3,
    )
    rng = np.random.default_rng(0)
    imgs = [
        rng.integers(0, 256, (32, 48, 3), dtype=np.uint8) for _ in range(5)
    ]
    # another size: its own batch
    imgs.insert(2, rng.integers(0, 256, (40, 40, 3), dtype=np.uint8))
    floats = [i.astype(np.float32) for i in imgs]
    assert t.model.dtype is torch.float32  # 'auto' on the CPU
    for batch, single in zip(
        t.restore_arrays(floats), [t.restore_array(i) for i in floats]
    ):
        # 0-255 scale: ~1e-5 in [0, 1]
        np.testing.assert_allclose(batch, single, atol=2e-3, rtol=0)
    for batch, single in zip(
        t.restore_arrays(imgs), [t.restore_array(i) for i in imgs]
    ):
        assert (
            batch.dtype == np.uint8
            and np.abs(batch.astype(int) - single).max() <= 1
        )


def test_backbone_batch_equals_per_image():
    from unirestore_mm.models import RestoredBackbone

    m = RestoredBackbone(
        backbone=torch.nn.Identity(),
        restorer=dict(type='unirestore_mm.UniRestore', preset='tiny'),
        mean=[0.0] * 3,
        std=[255.0] * 3,
        bgr_to_rgb=True,
        task='cls',
        seed=2,
    ).eval()
    x = torch.rand(3, 3, 24, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        batch = m(x)
        single = torch.cat([m(x[i : i + 1]) for i in range(3)])
    torch.testing.assert_close(batch, single, atol=1e-5, rtol=0)


def test_backbone_dtype():
    from unirestore_mm.models import RestoredBackbone

    kw = dict(
        backbone=torch.nn.Identity(),
        restorer=dict(type='unirestore_mm.UniRestore', preset='tiny'),
        mean=[0.0] * 3,
        std=[255.0] * 3,
        bgr_to_rgb=True,
    )
    m = RestoredBackbone(dtype='bf16', **kw).eval()
    assert m.restorer.dtype is torch.bfloat16
    y = m(torch.rand(2, 3, 16, 16))
    assert y.dtype == torch.float32 and torch.isfinite(y).all()
    auto = RestoredBackbone(dtype='auto', **kw).eval()
    auto(torch.rand(1, 3, 16, 16))
    assert auto.restorer.dtype is torch.float32  # 'auto' on the CPU
    with pytest.raises(ValueError, match='dtype'):
        RestoredBackbone(dtype='int8', **kw)
    with pytest.raises(ValueError, match='freeze_restorer'):
        RestoredBackbone(dtype='fp16', freeze_restorer=False, **kw)


# -- stage-2 training keeps no activations of the frozen parts ----------------
GROUPS = {  # the restorer's modules as driven by the restore path, by name
    'encoder': lambda r: list(r.prior.vae.encoder.children())
    + [r.prior.vae.quant_conv],
    'cfrm': lambda r: list(r.cfrm.stages),
    'controller': lambda r: [r.controller],
    'skip_adapters': lambda r: [r.skip_adapters],
    'unet': lambda r: [
        m
        for m in r.prior.unet.children()
        if not isinstance(m, torch.nn.ModuleList)
    ]
    + list(r.prior.unet.down_blocks)
    + list(r.prior.unet.up_blocks),
    'decoder before the TFAs': lambda r: [
        r.prior.vae.post_quant_conv,
        r.prior.vae.decoder.conv_in,
        r.prior.vae.decoder.mid_block,
    ],
    'decoder after the first TFA': lambda r: list(
        r.prior.vae.decoder.up_blocks
    )
    + [r.prior.vae.decoder.conv_norm_out, r.prior.vae.decoder.conv_out],
    'tfa': lambda r: list(r.tfa.adapters),
}


def _saved_by_group(model, inputs, gt):
    """Run one stage-2 loss and backward; count the tensors autograd saves, by
    the module group running."""
    r = model.restorer
    stack, counts, hooks = ['other'], {g: 0 for g in GROUPS}, []
    counts['other'] = 0
    for group, mods in GROUPS.items():
        for m in mods(r):
            hooks.append(
                m.register_forward_pre_hook(
                    lambda *a, g=group: stack.append(g)
                )
            )
            hooks.append(
                m.register_forward_hook(lambda *a: stack.pop() and None)
            )

    def pack(t):
        counts[stack[-1]] += 1
        return t

    try:
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            loss = sum(model.compute_losses(inputs, gt).values())
        loss.backward()
    finally:
        for h in hooks:
            h.remove()
    return counts


@pytest.fixture(scope='module')
def stage2():
    from unirestore_mm.models.restorer_model import UniRestoreModel

    torch.manual_seed(0)
    model = UniRestoreModel(
        restorer=dict(type='unirestore_mm.UniRestore', preset='tiny'), stage=2
    ).train()
    x, gt = torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 32)
    return model, x, gt


def test_stage2_keeps_no_activations_of_frozen_parts(stage2):
    model, x, gt = stage2
    counts = _saved_by_group(model, x, gt)
    frozen = (
        'encoder',
        'cfrm',
        'controller',
        'skip_adapters',
        'unet',
        'decoder before the TFAs',
    )
    assert {g: counts[g] for g in frozen} == {g: 0 for g in frozen}, counts
    # the TFAs and the decoder blocks between them and the image are what the
    # gradients go through
    assert counts['tfa'] > 0 and counts['decoder after the first TFA'] > 0, (
        counts
    )


def test_saved_tensor_count_sees_a_graph_through_frozen_parts(
    stage2, monkeypatch
):
    """The check above can fail: an input that requires grad (what a missing
    no_grad/detach upstream gives) makes the frozen encoder, CFRM and decoder
    record their activations, and the hooks see them."""
    model, x, gt = stage2
    r = model.restorer
    encode = r.encode

    def leaky(images, generator=None):
        out = encode(images.detach().requires_grad_(True), generator=generator)
        out.latent.requires_grad_(True)
        return out

    monkeypatch.setattr(r, 'encode', leaky)
    counts = _saved_by_group(model, x, gt)
    for group in (
        'encoder',
        'cfrm',
        'controller',
        'unet',
        'decoder before the TFAs',
    ):
        assert counts[group] > 0, (group, counts)


def test_frozen_decoder_convs_save_weights_only_same_gradients(
    stage2, monkeypatch
):
    """The decoder's frozen convs keep their weight, not their input, for the
    backward pass: fewer saved bytes, and the TFA/prompt gradients of plain
    nn.Conv2d (which saves its input) to float32 rounding."""
    from contextlib import nullcontext

    from unirestore_mm.models import autoencoder

    model, x, gt = stage2

    def step():
        model.zero_grad()
        # the stage-2 latent draws its noise from the global generator
        torch.manual_seed(0)
        saved = []
        with torch.autograd.graph.saved_tensors_hooks(
            lambda t: saved.append(t) or t, lambda t: t
        ):
            loss = sum(model.compute_losses(x, gt).values())
        loss.backward()
        acts = {
            t.untyped_storage().data_ptr(): t.untyped_storage().nbytes()
            for t in saved
            if not isinstance(t, torch.nn.Parameter)
        }
        return sum(acts.values()), {
            n: p.grad.clone()
            for n, p in model.named_parameters()
            if p.requires_grad
        }

    lean, grads = step()
    monkeypatch.setattr(
        autoencoder,
        'frozen_convs_keep_weights_only',
        lambda modules: nullcontext(),
    )
    plain, ref = step()
    assert lean < 0.8 * plain, (lean, plain)
    assert grads.keys() == ref.keys() and len(grads) > 3
    for name in ref:
        torch.testing.assert_close(
            grads[name], ref[name], rtol=1e-5, atol=1e-7, msg=name
        )


def test_transform_inferencer_and_cli_take_a_dtype(tmp_path):
    from unirestore_mm.apis.inferencer import UniRestoreInferencer
    from unirestore_mm.datasets.transforms.restore_image import RestoreImage

    img = np.random.default_rng(0).integers(
        0, 256, (24, 24, 3), dtype=np.uint8
    )
    t = RestoreImage(
        restorer=dict(preset='tiny'), allow_random_weights=True, dtype='bf16'
    )
    out = t.restore_array(img)
    assert (
        t.model.dtype is torch.bfloat16
        and out.dtype == np.uint8
        and out.shape == img.shape
    )
    assert (
        RestoreImage(
            restorer=dict(preset='tiny'), allow_random_weights=True
        ).model.dtype
        is torch.float32
    )
    with pytest.raises(ValueError, match='RestoreImage: dtype'):
        RestoreImage(
            restorer=dict(preset='tiny'),
            allow_random_weights=True,
            dtype='fp64',
        )
    inf = UniRestoreInferencer(
        'tiny',
        allow_random_weights=True,
        device='cpu',
        dtype='bf16',
        show_progress=False,
    )
    assert inf.model.dtype is torch.bfloat16 and inf.cfg.dtype == 'bfloat16'
    pred = inf(torch.rand(1, 3, 16, 16))['predictions'][0]
    assert pred.dtype == torch.float32 and torch.isfinite(pred).all()
    assert (
        UniRestoreInferencer(
            'tiny',
            allow_random_weights=True,
            device='cpu',
            # 'auto' on the CPU
            show_progress=False,
        ).model.dtype
        is torch.float32
    )
    with pytest.raises(ValueError, match='UniRestoreInferencer: dtype'):
        UniRestoreInferencer(
            'tiny', allow_random_weights=True, device='cpu', dtype='int8'
        )
    import importlib.util
    import os.path as osp

    spec = importlib.util.spec_from_file_location(
        'restore_cli',
        osp.join(osp.dirname(__file__), '..', '..', 'tools', 'restore.py'),
    )
    cli = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(cli)
    assert cli.parse_args(['x.png', '--out', 'o']).dtype == 'auto'
    assert (
        cli.parse_args(['x.png', '--out', 'o', '--dtype', 'bf16']).dtype
        == 'bf16'
    )
