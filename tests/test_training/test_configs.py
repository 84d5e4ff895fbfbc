"""Every recipe parses; the paper-scale ones carry the paper's settings and
name configs that exist."""

import glob
import os.path as osp

import pytest
from mmengine.hub import get_config

from .helpers import CONFIGS, load_cfg

MINE = sorted(
    glob.glob(osp.join(CONFIGS, 'unirestore', 'stage[0-9]*.py'))
    + glob.glob(osp.join(CONFIGS, '*', '*joint*.py'))
    + glob.glob(osp.join(CONFIGS, '*', '*frozen*.py'))
    +
    # the frozen recipes' recognizers
    glob.glob(osp.join(CONFIGS, 'mm*', '*_clean-embedded.py'))
)


def test_there_is_a_recipe_for_every_stage_and_mode():
    names = [osp.basename(p) for p in MINE]
    # tiny smoke recipes (CPU, 20 iterations) and paper scale; stage 1 and the
    # people-only stage 2 also come as 1k-iteration CPU runs that learn on the
    # embedded set
    counts = {
        'stage1_': 3,
        'stage2_': 2,
        'stage2-ir_': 1,
        'stage3-new-prompt': 2,
    }
    for prefix, count in counts.items():
        assert sum(n.startswith(prefix) for n in names) == count, prefix
    assert (
        sum('joint' in n for n in names) == 2
        and sum('-frozen-recognizer_' in n for n in names) == 2
    )


@pytest.mark.parametrize('path', MINE, ids=[osp.basename(p) for p in MINE])
def test_recipes_parse_and_use_the_safe_training_machinery(path):
    cfg = load_cfg(path)
    assert cfg.train_cfg.type == 'unirestore_mm.ExactResumeIterBasedTrainLoop'
    assert (
        cfg.default_hooks.checkpoint.type
        == 'unirestore_mm.TrainedPartsCheckpointHook'
    )
    assert (
        cfg.optim_wrapper.constructor
        == 'unirestore_mm.SqrtScaledOptimWrapperConstructor'
    )
    assert cfg.optim_wrapper.optimizer.type == 'AdamW'
    assert (
        cfg.param_scheduler[0].type == 'unirestore_mm.OneCycleCosineLR'
        and cfg.param_scheduler[0].pct_start == 0.1
    )


@pytest.mark.parametrize(
    'path,iters',
    [
        ('stage1_unirestore-sd-turbo_8xb6-200k_div2k.py', 200000),
        (
            'stage2_unirestore-sd-turbo_8xb6-250k_imagenet-foggycityscapes-'
            'div2k.py',
            250000,
        ),
        (
            'stage3-new-prompt-vit-b_unirestore-sd-turbo_8xb6-250k_imagenet.'
            'py',
            250000,
        ),
    ],
)
def test_paper_scale_settings(path, iters):
    cfg = load_cfg(osp.join(CONFIGS, 'unirestore', path))
    assert cfg.train_cfg.max_iters == iters
    assert cfg.train_dataloader.batch_size == 6  # x 8 GPUs = 48
    assert cfg.optim_wrapper.lr_scaling == dict(
        batch_size=6, base_batch_size=64
    )
    assert (
        cfg.optim_wrapper.optimizer.lr == 1e-4
        and cfg.optim_wrapper.optimizer.weight_decay == 0.01
    )
    assert cfg.model.restorer.preset == 'sd-turbo'
    if 'stage2' in path:
        assert dict(cfg.train_dataloader.dataset.weights) == dict(
            ir=1.0, cls=0.2, seg=10.0
        )
        # TFAs + prompts, as the paper describes stage 2
        assert cfg.model.trainable == 'paper'
        # the release's recognizer geometry: ImageNet classifier at 224x224,
        # segmenter logits align_corners=True
        assert cfg.model.recognizers.cls.input_size == 224
        assert (
            cfg.model.recognizers.seg.input_size is None
            and cfg.model.recognizers.seg.align_corners is True
        )
    if 'stage1' not in path:
        # the package's one default (TaskRestorer and UniRestoreModel)
        assert cfg.model.latent == 'sample'
    if 'stage3' in path:
        # the ViT-B/16-384's own size
        assert cfg.model.recognizers.vit.input_size == 384
    for rec in (cfg.model.get('recognizers') or {}).values():
        # the named library config exists
        assert get_config(rec.config, pretrained=False).model
