"""Stage-2 choices with the paper's and the release's behaviour: the trainable
set and the training latent."""

import inspect

import pytest
import torch
from mmengine.structures import BaseDataElement

from unirestore_mm.models import TaskRestorer, UniRestoreModel
from unirestore_mm.models.restorer_model import DEFAULT_LATENT, TRAINABLE_SETS

FROZEN_PARTS = ('cfrm', 'controller', 'skip_adapters', 'prior')


def _grads(module):
    return {p.requires_grad for p in module.parameters()}


def _ir_restorer(**kw):
    torch.manual_seed(0)
    return TaskRestorer(tasks=dict(ir=dict(type='ir')), **kw)


def _batch(n=2, size=32):
    g = torch.Generator().manual_seed(0)
    x, gt = (
        torch.rand(n, 3, size, size, generator=g),
        torch.rand(n, 3, size, size, generator=g),
    )
    return (
        x,
        gt,
        [
            BaseDataElement(metainfo=dict(img_shape=(size, size)))
            for _ in range(n)
        ],
    )


@pytest.mark.parametrize('name, tfa', [('paper', True), ('release', False)])
def test_trainable_set_trains_exactly_what_it_names(name, tfa):
    m = _ir_restorer(trainable=name)
    r = m.restorer
    assert m.trainable_parts == TRAINABLE_SETS[name]
    assert _grads(r.tfa) == {tfa} and _grads(r.prompts) == {True}
    for part in FROZEN_PARTS:
        assert _grads(getattr(r, part)) == {False}, part
    # and one step's gradients reach exactly those parts
    x, gt, samples = _batch()
    sum(m.compute_losses(x, gt, samples).values()).backward()
    assert all((p.grad is not None) == tfa for p in r.tfa.parameters())
    assert (
        r.prompts['ir'].grad is not None
        and r.prompts['ir'].grad.abs().sum() > 0
    )
    for part in FROZEN_PARTS:
        assert all(p.grad is None for p in getattr(r, part).parameters()), part


def test_trainable_default_is_the_papers_and_lists_still_work():
    assert (
        inspect.signature(TaskRestorer).parameters['trainable'].default
        == 'paper'
    )
    assert TRAINABLE_SETS == {
        'paper': ('tfa', 'prompts'),
        'release': ('prompts',),
    }
    m = _ir_restorer(trainable=['prompts'])
    assert _grads(m.restorer.tfa) == {False} and m.trainable_parts == (
        'prompts',
    )
    with pytest.raises(ValueError, match="'paper'.*'release'"):
        _ir_restorer(trainable='authors')


@pytest.mark.parametrize('name, tfa', [('paper', True), ('release', False)])
def test_unirestore_model_stage2_takes_the_named_sets(name, tfa):
    torch.manual_seed(0)
    m = UniRestoreModel(stage=2, trainable=name)
    r = m.restorer
    assert _grads(r.tfa) == {tfa}
    # as with the default stage-2 set, only the trained task's prompt learns
    assert {t: p.requires_grad for t, p in r.prompts.prompts.items()} == {
        t: t == 'ir' for t in r.tasks
    }
    for part in FROZEN_PARTS:
        assert _grads(getattr(r, part)) == {False}, part


def test_one_latent_policy_with_one_default_in_both_classes():
    default = inspect.signature(UniRestoreModel).parameters['latent'].default
    assert (
        default
        == inspect.signature(TaskRestorer).parameters['latent'].default
        == DEFAULT_LATENT
        == 'sample'
    )
    assert (
        UniRestoreModel(stage=2).latent_mode
        == _ir_restorer().latent_mode
        == DEFAULT_LATENT
    )
    for cls in (UniRestoreModel, TaskRestorer):
        with pytest.raises(ValueError, match="latent must be 'sample'"):
            cls(
                stage=2, latent='pred_z0'
            ) if cls is UniRestoreModel else _ir_restorer(latent='pred_z0')


@pytest.mark.parametrize('latent', ['sample', 'authors'])
@pytest.mark.parametrize('kind', ['UniRestoreModel', 'TaskRestorer'])
def test_both_classes_train_on_the_latent_the_policy_names(
    kind, latent, monkeypatch
):
    m = (
        UniRestoreModel(stage=2, latent=latent)
        if kind == 'UniRestoreModel'
        else _ir_restorer(latent=latent)
    )
    r = m.restorer
    calls = dict(sample=0, noise=0)
    sample, predict_noise = r.sample, r.predict_noise

    def counting_sample(*a, **k):
        calls['sample'] += 1
        return sample(*a, **k)

    def counting_noise(latent_, t, z0):
        calls['noise'] += 1
        # the release's timesteps, on the clean latent noised
        if latent == 'authors':
            assert set(t.tolist()) <= {249, 499, 749, 999}
        return predict_noise(latent_, t, z0)

    monkeypatch.setattr(r, 'sample', counting_sample)
    monkeypatch.setattr(r, 'predict_noise', counting_noise)
    x, gt, samples = _batch()
    losses = m.compute_losses(x, gt, samples)
    assert torch.isfinite(sum(losses.values()))
    # 'sample': one DDIM sample (one UNet call inside it); 'authors': one UNet
    # call on the noised clean latent
    assert calls == (
        dict(sample=1, noise=1)
        if latent == 'sample'
        else dict(sample=0, noise=1)
    )
