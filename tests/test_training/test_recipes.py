"""Every recipe runs a few iterations on the tiny preset (CPU) and the embedded
set, through recognizers of the recipes' own architectures whose (random)
checkpoints the tests write."""

import copy
import os.path as osp

import pytest
import torch
from mmengine.dataset import pseudo_collate
from mmengine.registry import DefaultScope
from mmengine.runner import Runner

from unirestore_mm.datasets.embedded import (
    EMBEDDED_CLASSES,
    EMBEDDED_SEG_CLASSES,
)
from unirestore_mm.engine import load_training_checkpoint
from unirestore_mm.registry import DATASETS, MODELS

from .helpers import (
    CONFIGS,
    cls_dataset,
    load_cfg,
    save_recognizer,
    tiny_runtime,
    write_task_data,
)

UNI = osp.join(CONFIGS, 'unirestore')
STAGE1 = osp.join(UNI, 'stage1_unirestore-tiny_1xb4-20it_embedded.py')
STAGE2 = osp.join(UNI, 'stage2_unirestore-tiny_1xb4-20it_embedded-3tasks.py')
STAGE3 = osp.join(
    UNI, 'stage3-new-prompt-vit_unirestore-tiny_1xb4-20it_embedded.py'
)
FROZEN_CLS = osp.join(
    CONFIGS,
    'mmpretrain',
    'cls-frozen-recognizer_resnet18-cifar-unirestore-tiny_1xb4-20it_embedded.'
    'py',
)
FROZEN_SEG = osp.join(
    CONFIGS,
    'mmseg',
    'pspnet-frozen-recognizer_r18-d8-unirestore-tiny_1xb4-20it_embedded.py',
)
JOINT_CLS = osp.join(
    CONFIGS,
    'mmpretrain',
    'cls-joint_resnet18-unirestore-tiny_1xb4-20it_embedded.py',
)
JOINT_SEG = osp.join(
    CONFIGS,
    'mmseg',
    'pspnet-joint_r18-d8-unirestore-tiny_1xb4-20it_embedded.py',
)
ITERS = 2


@pytest.fixture(scope='module')
def data(tmp_path_factory):
    return write_task_data(str(tmp_path_factory.mktemp('data')))


def shrink(cfg, work, batch=2):
    tiny_runtime(cfg, work, ITERS, interval=ITERS)
    cfg.train_dataloader.batch_size = batch
    if cfg.optim_wrapper.get('lr_scaling'):
        cfg.optim_wrapper.lr_scaling.batch_size = batch
    return cfg


def run(cfg):
    runner = Runner.from_cfg(cfg)
    runner.train()
    return runner


def snapshot(module):
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def changed(before, module):
    after = module.state_dict()
    return {k for k in before if not torch.equal(before[k], after[k])}


def test_stage1_trains_cfrm_controller_and_skip_adapters(tmp_path, embedded):
    runner = Runner.from_cfg(shrink(load_cfg(STAGE1), tmp_path / 'work'))
    r = runner.model.restorer
    before = {
        n: snapshot(getattr(r, n))
        for n in ('cfrm', 'controller', 'skip_adapters', 'tfa', 'prompts')
    }
    runner.train()
    assert all(
        changed(before[n], getattr(r, n))
        for n in ('cfrm', 'controller', 'skip_adapters')
    )
    assert not changed(before['tfa'], r.tfa) and not changed(
        before['prompts'], r.prompts
    )
    logs = runner.message_hub.log_scalars
    assert {
        'train/loss_feat1',
        'train/loss_feat2',
        'train/loss_feat3',
        'train/loss_latent',
    } <= set(logs)


def random_recognizer(spec, path, classes):
    """Save random weights of a recipe's recognizer (config + cfg_options) and
    point the recipe at them."""
    from unirestore_mm.models.recognizers import _load_config

    parsed = _load_config(spec.config, spec.get('cfg_options'))
    spec.checkpoint = save_recognizer(
        parsed['model'].to_dict(),
        str(path),
        classes=classes,
        scope=parsed['scope'],
    )


def stage2_cfg(tmp_path):
    cfg = load_cfg(STAGE2)
    for name, classes in (
        ('cls', EMBEDDED_CLASSES),
        ('seg', EMBEDDED_SEG_CLASSES),
    ):
        random_recognizer(
            cfg.model.recognizers[name], tmp_path / f'{name}.pth', classes
        )
    return cfg


def test_stage2_three_tasks_through_frozen_recognizers(tmp_path, embedded):
    cfg = shrink(stage2_cfg(tmp_path), tmp_path / 'work')
    # one mixed batch first: every task's loss, gradients only where they
    # belong
    with DefaultScope.overwrite_default_scope('unirestore_mm'):
        model = MODELS.build(copy.deepcopy(cfg.model))
        ds = DATASETS.build(copy.deepcopy(cfg.train_dataloader.dataset))
    # ir, cls, seg samples (4000 of each)
    batch = pseudo_collate([ds[i] for i in (0, 4000, 8000)])
    assert [s.task for s in batch['data_samples']] == ['ir', 'cls', 'seg']
    model.train()
    losses = model(**model.data_preprocessor(batch, True), mode='loss')
    assert set(losses) == {
        'loss_ir',
        'loss_cls_ce',
        'loss_cls_ir',
        'loss_seg_ce',
        'loss_seg_ir',
    }
    sum(losses.values()).backward()
    r = model.restorer
    assert all(p.grad is not None for p in r.tfa.parameters())
    assert all(r.prompts[t].grad is not None for t in ('ir', 'cls', 'seg'))
    assert all(
        not p.requires_grad
        for m in (
            r.cfrm,
            r.controller,
            r.skip_adapters,
            r.prior,
            model.recognizers,
        )
        for p in m.parameters()
    )
    assert not model.recognizers['cls'].model.training

    runner = Runner.from_cfg(cfg)
    frozen = {
        n: snapshot(getattr(runner.model.restorer, n))
        for n in ('cfrm', 'controller', 'skip_adapters')
    }
    rec = snapshot(runner.model.recognizers)
    tfa = snapshot(runner.model.restorer.tfa)
    runner.train()
    assert all(
        not changed(frozen[n], getattr(runner.model.restorer, n))
        for n in frozen
    )
    # frozen, BN statistics included
    assert not changed(rec, runner.model.recognizers)
    assert changed(tfa, runner.model.restorer.tfa)
    ckpt = load_training_checkpoint(
        str(tmp_path / 'work' / f'iter_{ITERS}.pth')
    )
    assert {k.split('.')[1] for k in ckpt['state_dict']} == {'tfa', 'prompts'}


def test_stage3_new_prompt_only(tmp_path, embedded):
    cfg = load_cfg(STAGE3)
    vit = cfg.model.recognizers.vit
    from unirestore_mm.models.recognizers import _load_config

    vit.checkpoint = save_recognizer(
        _load_config(vit.config)['model'].to_dict(),
        str(tmp_path / 'vit.pth'),
        classes=EMBEDDED_CLASSES,
        scope='mmpretrain',
    )
    cfg = shrink(cfg, tmp_path / 'work')
    runner = Runner.from_cfg(cfg)
    before = snapshot(runner.model)
    runner.train()
    assert changed(before, runner.model) == {
        'restorer.prompts.prompts.cls_vit'
    }
    ckpt = load_training_checkpoint(
        str(tmp_path / 'work' / f'iter_{ITERS}.pth')
    )
    assert list(ckpt['state_dict']) == ['restorer.prompts.prompts.cls_vit']
    # chaining: the exported restorer (with the new prompt) is the next run's
    # checkpoint
    nxt = copy.deepcopy(cfg.model)
    nxt.checkpoint = str(tmp_path / 'work' / 'unirestore.safetensors')
    with DefaultScope.overwrite_default_scope('unirestore_mm'):
        model = MODELS.build(nxt)
    assert torch.equal(
        model.restorer.prompts['cls_vit'],
        runner.model.restorer.prompts['cls_vit'],
    )


@pytest.mark.parametrize(
    'recipe,kind', [(FROZEN_CLS, 'cls'), (FROZEN_SEG, 'seg')]
)
def test_frozen_recognizer_from_library_configs(
    tmp_path, embedded, recipe, kind
):
    cfg = load_cfg(recipe)
    spec = cfg.model.recognizers[kind]
    classes = EMBEDDED_CLASSES if kind == 'cls' else EMBEDDED_SEG_CLASSES
    from unirestore_mm.models.recognizers import _load_config

    parsed = _load_config(spec.config, spec.get('cfg_options'))
    spec.checkpoint = save_recognizer(
        parsed['model'].to_dict(),
        str(tmp_path / 'rec.pth'),
        classes=classes,
        scope=parsed['scope'],
    )
    runner = Runner.from_cfg(shrink(cfg, tmp_path / 'work'))
    rec = snapshot(runner.model.recognizers)
    runner.train()
    assert not changed(rec, runner.model.recognizers)
    assert runner.iter == ITERS


def test_dataset_classes_that_do_not_match_the_recognizer_stop_before_training(
    tmp_path, data
):
    cfg = load_cfg(FROZEN_CLS)
    spec = cfg.model.recognizers.cls
    from unirestore_mm.models.recognizers import _load_config

    parsed = _load_config(spec.config)
    spec.checkpoint = save_recognizer(
        parsed['model'].to_dict(),
        str(tmp_path / 'rec.pth'),
        classes=tuple(f'c{i}' for i in range(10)),
        scope=parsed['scope'],
    )
    cfg.train_dataloader.dataset = cls_dataset(data)  # 4 classes
    runner = Runner.from_cfg(shrink(cfg, tmp_path / 'work'))
    with pytest.raises(ValueError, match='4 classes but recognizer'):
        runner.train()
    assert runner.iter == 0


@pytest.mark.parametrize(
    'recipe,kind', [(JOINT_CLS, 'cls'), (JOINT_SEG, 'seg')]
)
def test_joint_training_through_restored_backbone(
    tmp_path, embedded, recipe, kind
):
    cfg = load_cfg(recipe)
    runner = Runner.from_cfg(shrink(cfg, tmp_path / 'work'))
    bb = runner.model.backbone
    before_r = {n: snapshot(getattr(bb.restorer, n)) for n in ('tfa', 'cfrm')}
    before_b = snapshot(bb.backbone)
    runner.train()
    assert changed(before_r['tfa'], bb.restorer.tfa) and not changed(
        before_r['cfrm'], bb.restorer.cfrm
    )
    assert changed(before_b, bb.backbone)  # the recognizer learns too
    groups = runner.optim_wrapper.optimizer.param_groups
    restorer_ids = {id(p) for p in bb.restorer.parameters()}
    peak = {
        (
            'restorer' if id(g['params'][0]) in restorer_ids else 'recognizer'
        ): g['initial_lr']
        for g in groups
    }
    assert peak['restorer'] == pytest.approx(peak['recognizer'] * 0.1)
    ckpt = load_training_checkpoint(
        str(tmp_path / 'work' / f'iter_{ITERS}.pth')
    )
    assert not any('.prior.' in k for k in ckpt['state_dict'])
    assert any('restorer.tfa' in k for k in ckpt['state_dict']) and not any(
        'restorer.cfrm' in k for k in ckpt['state_dict']
    )
    from unirestore_mm.models import UniRestore

    exported = UniRestore(preset='tiny')
    exported.load_weights(str(tmp_path / 'work' / 'unirestore.safetensors'))
    assert torch.equal(
        exported.tfa.adapters[0].fuse.weight,
        bb.restorer.tfa.adapters[0].fuse.weight,
    )


@pytest.mark.parametrize(
    'trainer,frozen,kind',
    [
        (
            'mmpretrain/cls_resnet18-cifar_1xb32-1k_clean-embedded.py',
            FROZEN_CLS,
            'cls',
        ),
        ('mmseg/pspnet_r18-d8_1xb16-2k_clean-embedded.py', FROZEN_SEG, 'seg'),
        (
            'mmpretrain/cls_vit-tiny-p4_1xb32-1k_clean-embedded.py',
            STAGE3,
            'vit',
        ),
    ],
)
def test_recognizer_recipes_feed_the_frozen_recipes(
    tmp_path, embedded, trainer, frozen, kind
):
    cfg = shrink(
        load_cfg(osp.join(CONFIGS, trainer)), tmp_path / 'rec', batch=2
    )
    run(cfg)
    ckpt = str(tmp_path / 'rec' / f'iter_{ITERS}.pth')
    frozen_cfg = load_cfg(frozen)
    frozen_cfg.model.recognizers[kind].checkpoint = ckpt
    with DefaultScope.overwrite_default_scope('unirestore_mm'):
        # strict load: the same architecture, weights_only
        model = MODELS.build(frozen_cfg.model)
    rec = model.recognizers[kind]
    assert rec.classes == list(
        EMBEDDED_SEG_CLASSES if kind == 'seg' else EMBEDDED_CLASSES
    )
    saved = load_training_checkpoint(ckpt)['state_dict']
    assert all(
        torch.equal(rec.model.state_dict()[k], v) for k, v in saved.items()
    )
