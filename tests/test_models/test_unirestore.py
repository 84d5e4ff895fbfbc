"""Core UniRestore behaviour on the tiny preset (CPU, seconds)."""

import json

import pytest
import torch

from unirestore_mm.models import UniRestore
from unirestore_mm.models.unirestore import CONFIG_NAME, PARTS, WEIGHTS_NAME


@pytest.fixture(scope='module')
def model():
    torch.manual_seed(0)
    m = UniRestore(preset='tiny')
    # non-trivial weights for the zero-initialised branches, so tasks and
    # restorer parts matter
    with torch.no_grad():
        for name, p in m.named_parameters():
            if not name.startswith('prior.') and (p == 0).all():
                p.normal_(0, 0.05)
    return m.eval()


def images(b=2, h=64, w=64, seed=0):
    return torch.rand(
        b, 3, h, w, generator=torch.Generator().manual_seed(seed)
    )


@pytest.mark.parametrize(
    'size', [(64, 64), (37, 51), (7, 5), (1, 1), (80, 17)]
)
def test_odd_sizes_are_the_padded_pass_cropped(model, size):
    """An odd-sized image is restored as the forward pass of the image padded
    bottom/right to the size divisor (by reflection, replication where the
    image is too small to reflect), cropped back to its top-left corner."""
    from torch.nn import functional as F

    x = images(1, *size)
    y = model.restore(x, task='ir', seed=0)
    assert y.shape == x.shape and y.dtype == x.dtype
    h, w = size
    d = model.size_divisor
    ph, pw = (-h) % d, (-w) % d
    padded = (
        F.pad(
            x,
            (0, pw, 0, ph),
            mode='reflect' if ph < h and pw < w else 'replicate',
        )
        if ph or pw
        else x
    )
    assert padded.shape[-2] % d == 0 and padded.shape[-1] % d == 0
    full = model(
        padded, task='ir', generator=torch.Generator().manual_seed(0)
    ).image
    torch.testing.assert_close(
        y, full[..., :h, :w].clamp(0, 1), rtol=0, atol=0
    )


@pytest.mark.parametrize(
    'size', [(64, 64), (37, 51), (7, 5), (1, 1), (80, 17), (16, 33)]
)
def test_padding_and_crop_give_back_the_input_region(identity, size):
    """With the networks replaced by the identity, restore returns the input
    exactly: the crop takes the region the image occupies in the padded batch
    (any other region, or a padding on the top/left, shows here)."""
    x = images(2, *size, seed=1)
    assert torch.equal(identity.restore(x, min_size=None), x)
    assert torch.equal(identity.restore(x[0], min_size=None), x[0])


def test_single_image_and_min_size(model):
    x = images(1, 24, 40)[0]
    y = model.restore(x, seed=0, min_size=48)
    assert y.shape == x.shape


def test_seed_makes_results_repeatable(model):
    x = images()
    a = model.restore(x, task='cls', seed=3)
    b = model.restore(x, task='cls', seed=3)
    c = model.restore(x, task='cls', seed=4)
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_task_prompt_changes_output(model):
    x = images()
    outs = {t: model.restore(x, task=t, seed=0) for t in ('ir', 'cls', 'seg')}
    assert not torch.allclose(outs['ir'], outs['cls'])
    assert not torch.allclose(outs['cls'], outs['seg'])


def test_same_prompt_same_output():
    # all prompts start at zero: the tasks are indistinguishable
    m = UniRestore('tiny').eval()
    x = images(1, 32, 32)
    assert torch.equal(
        m.restore(x, task='ir', seed=0), m.restore(x, task='seg', seed=0)
    )


def test_unknown_task_lists_known(model):
    with pytest.raises(
        ValueError, match=r"unknown task 'det'.*'ir', 'cls', 'seg'"
    ):
        model.restore(images(1, 16, 16), task='det')


def test_num_steps(model):
    x = images(1, 32, 32)
    outs = [model.restore(x, num_steps=n, seed=0) for n in (1, 2, 4)]
    assert not torch.equal(outs[0], outs[1])
    for bad in (0, 5, 1.5):
        with pytest.raises(ValueError, match='num_steps'):
            model.restore(x, num_steps=bad)


def test_add_task():
    m = UniRestore('tiny')
    m.add_task('det', init_from='cls')
    assert m.tasks == ['ir', 'cls', 'seg', 'det']
    assert torch.equal(m.prompts['det'], m.prompts['cls'])
    with pytest.raises(ValueError, match='already'):
        m.add_task('det')
    with pytest.raises(ValueError, match='identifier'):
        m.add_task('bad name')


def test_gradients_reach_trainable_parts_only():
    m = UniRestore('tiny').train()
    x = images(2, 32, 32)
    out = m(x, task='cls', generator=torch.Generator().manual_seed(0))
    out.image.mean().backward()
    for name, p in m.named_parameters():
        if name.startswith('prior.'):
            assert not p.requires_grad and p.grad is None, name
        elif name.startswith('prompts.') and not name.endswith('.cls'):
            assert p.grad is None, name  # prompts of other tasks play no part
        else:
            assert p.grad is not None, name
    # the zero-initialised branches still learn: their gradients are not all
    # zero
    assert m.prompts['cls'].grad.abs().sum() > 0
    assert m.controller.level_outs[0].conv2.weight.grad.abs().sum() > 0
    assert m.cfrm.stages[0][0].beta.grad.abs().sum() > 0


def test_prior_frozen_and_in_eval():
    m = UniRestore('tiny').train()
    assert (
        not m.prior.training
        and not m.prior.vae.training
        and not m.prior.unet.training
    )
    assert not any(p.requires_grad for p in m.prior.parameters())
    assert m.cfrm.training


def test_no_activations_where_no_gradient_is_needed():
    m = UniRestore('tiny')
    x = images(1, 32, 32)
    # stage 2: only TFA and prompts learn -> encoder, UNet and the first
    # decoder part keep no graph
    m.set_trainable(('tfa', 'prompts'))
    out = m(x, task='ir')
    assert (
        not out.latent.requires_grad and not out.encoded.latent.requires_grad
    )
    assert not any(s.requires_grad for s in out.encoded.skips)
    assert out.image.requires_grad
    # stage 1: the latent path is detached before the last encoder block, the
    # UNet pass keeps its graph
    m.set_trainable(('cfrm', 'controller', 'skip_adapters'))
    out = m(x, task='ir')
    assert not out.encoded.latent.requires_grad
    assert all(s.requires_grad for s in out.encoded.skips)
    assert out.latent.requires_grad
    # nothing trainable -> no graph at all
    m.set_trainable(())
    assert not m(x).image.requires_grad


def test_set_trainable_single_prompt():
    m = UniRestore('tiny')
    m.add_task('det')
    m.set_trainable(('prompts',), prompts=['det'])
    trainable = [n for n, p in m.named_parameters() if p.requires_grad]
    assert trainable == ['prompts.prompts.det']
    with pytest.raises(ValueError, match='unknown trainable part'):
        m.set_trainable(('unet',))
    with pytest.raises(ValueError, match='unknown task'):
        m.set_trainable(('prompts',), prompts=['nope'])


def test_state_dict_holds_restorer_only(model):
    keys = list(model.state_dict())
    assert keys and not any(k.startswith('prior.') for k in keys)
    assert {k.split('.')[0] for k in keys} == set(PARTS)
    # loading a restorer-only state dict is strict about the restorer's keys
    # but not the prior's
    fresh = UniRestore('tiny')
    result = fresh.load_state_dict(model.state_dict())
    assert not result.missing_keys and not result.unexpected_keys
    with pytest.raises(RuntimeError, match='cfrm'):
        fresh.load_state_dict(
            {
                k: v
                for k, v in model.state_dict().items()
                if not k.startswith('cfrm.')
            }
        )


def test_save_load_round_trip_is_exact(model, tmp_path):
    model.add_task('det') if 'det' not in model.tasks else None
    model.save_pretrained(str(tmp_path))
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        CONFIG_NAME,
        WEIGHTS_NAME,
    ]
    config = json.loads((tmp_path / CONFIG_NAME).read_text())
    assert config['preset'] == 'tiny' and config['tasks'] == [
        'ir',
        'cls',
        'seg',
        'det',
    ]
    loaded = UniRestore.from_pretrained(str(tmp_path)).eval()
    for (k1, v1), (k2, v2) in zip(
        model.state_dict().items(), loaded.state_dict().items()
    ):
        assert k1 == k2 and torch.equal(v1, v2), k1
    x = images(1, 32, 48)
    for task in ('cls', 'det'):
        assert torch.equal(
            model.restore(x, task=task, seed=1),
            loaded.restore(x, task=task, seed=1),
        )


def test_load_weights_mismatch_is_clear(model, tmp_path):
    model.save_pretrained(str(tmp_path))
    other = UniRestore('tiny', cfrm=dict(num_naf_blocks=(1, 1, 2)))
    with pytest.raises(ValueError, match='do not match this model'):
        other.load_weights(str(tmp_path / WEIGHTS_NAME))
    with pytest.raises(FileNotFoundError, match='no file'):
        other.load_weights(str(tmp_path / 'missing.safetensors'))
    # a torch checkpoint in MMEngine's layout loads with weights_only=True
    ckpt = tmp_path / 'iter_1.pth'
    torch.save({'state_dict': model.state_dict(), 'meta': {'iter': 1}}, ckpt)
    fresh = UniRestore('tiny', tasks=model.tasks)
    fresh.load_weights(str(ckpt))
    assert torch.equal(
        fresh.tfa.adapters[0].fuse.weight, model.tfa.adapters[0].fuse.weight
    )


def test_unknown_preset():
    with pytest.raises(
        ValueError, match=r"known presets: \['sd-turbo', 'tiny'\]"
    ):
        UniRestore(preset='sd-xl')


# -- restore geometry: the release's (default) and the antialiased one --------
@pytest.fixture
def identity(model, monkeypatch):
    """The model with its encode/sample/decode replaced by the identity: only
    the geometry acts."""
    from types import SimpleNamespace

    monkeypatch.setattr(
        model,
        'encode',
        lambda x, generator=None: SimpleNamespace(latent=x, skips=[]),
    )
    monkeypatch.setattr(
        model, 'sample', lambda z, num_steps=1, generator=None: z
    )
    monkeypatch.setattr(model, 'decode', lambda latent, skips, task: latent)
    return model


def test_release_geometry_is_the_authors_resize_and_clamp(identity):
    from torch.nn import functional as F

    x = images(1, 24, 40)
    # no clamp
    up = F.interpolate(x, size=(48, 80), mode='bicubic', align_corners=False)
    assert up.min() < 0 or up.max() > 1  # the overshoot the release keeps
    expected = F.interpolate(
        up, size=(24, 40), mode='bicubic', align_corners=False, antialias=False
    ).clamp(0, 1)
    torch.testing.assert_close(
        identity.restore(x, min_size=48, geometry='release'), expected
    )
    # the default
    torch.testing.assert_close(identity.restore(x, min_size=48), expected)
    torch.testing.assert_close(
        identity.restore_tasks(x, ['ir', 'cls'], min_size=48)['cls'], expected
    )
    anti = F.interpolate(
        up.clamp(0, 1),
        size=(24, 40),
        mode='bicubic',
        align_corners=False,
        antialias=True,
    ).clamp(0, 1)
    torch.testing.assert_close(
        identity.restore(x, min_size=48, geometry='antialias'), anti
    )
    # why it is the default: the release's round trip keeps the image,
    # antialiasing low-passes it
    assert (expected - x).abs().mean() * 4 < (anti - x).abs().mean()


@pytest.mark.parametrize(
    'size, differ',
    [
        ((24, 40), True),
        ((100, 130), True),
        ((512, 520), False),
        ((600, 512), False),
    ],
)
def test_geometries_differ_only_below_min_size(model, size, differ):
    x = images(1, *size)
    a = model.restore(x, seed=0, min_size=512, geometry='release')
    b = model.restore(x, seed=0, min_size=512, geometry='antialias')
    assert a.shape == b.shape == x.shape
    assert (not torch.equal(a, b)) == differ
    # at 512 px and above nothing is resized: the two are the same computation
    if not differ:
        assert torch.equal(a, model.restore(x, seed=0, min_size=None))


def test_unknown_geometry_fails_before_compute(model):
    with pytest.raises(ValueError, match="geometry must be 'release'"):
        model.restore(images(1, 8, 8), geometry='default')
    with pytest.raises(ValueError, match='geometry'):
        model.restore_tasks(images(1, 8, 8), ['ir'], geometry='authors')
