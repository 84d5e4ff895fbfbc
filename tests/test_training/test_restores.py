"""The product's central promise at test scale: UniRestore trained briefly on a
tiny prior trained here restores held-out images above their degraded PSNR (the
main job measures it at full length; this guards the chain).

The chain is the main job's own recipes: the prior's VAE and UNet
(configs/prior/), stage 1 and the stage-2 `ir` recipe (configs/demo/), each a
few hundred iterations on the embedded set, on four strong corruptions (fog,
haze, low light, contrast) so that a short run has room to show it."""

import os.path as osp

import pytest
import torch
from mmengine.runner import Runner

from unirestore_mm import UniRestore
from unirestore_mm.evaluation.metrics import psnr
from unirestore_mm.evaluation.task_benchmark import degrade_set, to_tensor

from .helpers import CONFIGS, load_cfg, tiny_runtime

CORRUPTIONS = ['fog', 'haze', 'low_light', 'contrast']
VAE = osp.join(CONFIGS, 'prior', 'vae_unirestore-tiny_1xb32-1k_embedded.py')
UNET = osp.join(
    CONFIGS, 'prior', 'unet_unirestore-tiny_1xb64-600it_embedded.py'
)
STAGE1 = osp.join(
    CONFIGS, 'demo', 'stage1_unirestore-tiny-prior_1xb32-400it_embedded.py'
)
IR = osp.join(
    CONFIGS,
    'demo',
    'stage2-ir-only_unirestore-tiny-prior_1xb32-600it_embedded-baseline.py',
)


def train(path, work, iters, batch, **options):
    cfg = load_cfg(path)
    tiny_runtime(cfg, work, iters, interval=iters)
    cfg.train_dataloader.batch_size = batch
    cfg.merge_from_dict(options)
    runner = Runner.from_cfg(cfg)
    runner.train()
    return runner


def degradation(cfg_pipeline):
    return next(
        t
        for t in cfg_pipeline
        if t['type'] == 'unirestore_mm.RandomDegradation'
    )


@pytest.fixture(scope='module')
def restorer(tmp_path_factory, embedded):
    root = tmp_path_factory.mktemp('chain')
    train(VAE, root / 'vae', 300, 16, **{'model.scaling_images': 128})
    prior = str(root / 'unet' / 'prior')
    train(
        UNET,
        root / 'unet',
        150,
        32,
        **{'model.prior.pretrained': str(root / 'vae' / 'prior')},
    )

    cfg = load_cfg(STAGE1)
    tiny_runtime(cfg, root / 's1', 200, interval=200)
    cfg.train_dataloader.batch_size = 16
    cfg.model.restorer.prior.pretrained = prior
    degradation(cfg.train_dataloader.dataset.pipeline)['corruptions'] = (
        CORRUPTIONS
    )
    Runner.from_cfg(cfg).train()

    cfg = load_cfg(IR)
    tiny_runtime(cfg, root / 's2', 300, interval=300)
    cfg.train_dataloader.batch_size = 16
    cfg.model.restorer.prior.pretrained = prior
    cfg.model.checkpoint = str(root / 's1' / 'unirestore.safetensors')
    degradation(cfg.train_dataloader.dataset.datasets.ir.pipeline)[
        'corruptions'
    ] = CORRUPTIONS
    Runner.from_cfg(cfg).train()

    model = UniRestore(preset='tiny', prior=dict(pretrained=prior))
    model.load_weights(str(root / 's2' / 'unirestore.safetensors'))
    return model.eval()


def test_restores_held_out_images_above_their_degraded_psnr(
    restorer, embedded
):
    from unirestore_mm.apis.demo_eval import load_test_set

    # the test split: items never seen in training
    clean, _, _ = load_test_set(embedded, 100)
    gt = to_tensor(clean)
    gains = {}
    for corruption in CORRUPTIONS:
        x = to_tensor(degrade_set(clean, corruption, 3, seed=0))
        with torch.no_grad():
            out = restorer.restore(x, task='ir', seed=0)
        gains[corruption] = (
            float(psnr(x, gt).mean()),
            float(psnr(out, gt).mean()),
        )
    mean_in = sum(v[0] for v in gains.values()) / len(gains)
    mean_out = sum(v[1] for v in gains.values()) / len(gains)
    assert mean_out > mean_in + 2.0, gains
    assert all(after > before for before, after in gains.values()), gains
