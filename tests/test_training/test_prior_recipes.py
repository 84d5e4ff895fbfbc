"""The tiny prior's recipes (configs/prior/) learn, and export a diffusers
folder that UniRestore loads as it loads SD-Turbo."""

import os.path as osp

import numpy as np
import pytest
import torch
from mmengine.runner import Runner

from unirestore_mm import UniRestore
from unirestore_mm.models import DiffusionPrior

from .helpers import CONFIGS, load_cfg, tiny_runtime

VAE = osp.join(CONFIGS, 'prior', 'vae_unirestore-tiny_1xb32-1k_embedded.py')
UNET = osp.join(
    CONFIGS, 'prior', 'unet_unirestore-tiny_1xb64-600it_embedded.py'
)


def losses(runner, key):
    values, _ = runner.message_hub.get_scalar(f'train/{key}').data
    return np.asarray(values, np.float64)


def prior_cfg(path, work, iters, batch):
    cfg = load_cfg(path)
    tiny_runtime(cfg, work, iters, interval=iters)
    cfg.train_dataloader.batch_size = batch
    return cfg


@pytest.fixture(scope='module')
def trained(tmp_path_factory, embedded):
    """The two prior recipes, 60 and 40 iterations, the second on the first's
    folder."""
    root = tmp_path_factory.mktemp('prior')
    cfg = prior_cfg(VAE, root / 'vae', 60, 16)
    cfg.model.scaling_images = 64
    vae_runner = Runner.from_cfg(cfg)
    vae_runner.train()
    cfg = prior_cfg(UNET, root / 'unet', 40, 32)
    cfg.model.prior.pretrained = str(root / 'vae' / 'prior')
    unet_runner = Runner.from_cfg(cfg)
    unet_runner.train()
    return vae_runner, unet_runner, root


def test_short_runs_lower_the_losses(trained):
    vae_runner, unet_runner, _ = trained
    l1 = losses(vae_runner, 'loss_l1')
    assert len(l1) == 60
    # the reconstruction error of the last iterations is far below that of the
    # first ones
    assert l1[-10:].mean() < 0.7 * l1[:5].mean(), l1
    eps = losses(unet_runner, 'loss_eps')
    assert len(eps) == 40
    assert eps[-10:].mean() < 0.9 * eps[:5].mean(), eps


def test_exported_folder_loads_like_sd_turbo(trained, embedded):
    vae_runner, unet_runner, root = trained
    folder = str(root / 'unet' / 'prior')
    for sub in (
        'vae/config.json',
        'vae/diffusion_pytorch_model.safetensors',
        'unet/config.json',
        'unet/diffusion_pytorch_model.safetensors',
        'scheduler/scheduler_config.json',
        'null_embedding.safetensors',
    ):
        assert osp.isfile(osp.join(folder, sub)), sub
    model = UniRestore(preset='tiny', prior=dict(pretrained=folder))
    assert model.prior.source == folder
    trained_vae = vae_runner.model.prior.vae.state_dict()
    trained_unet = unet_runner.model.prior.unet.state_dict()
    for k, v in model.prior.vae.state_dict().items():
        assert torch.equal(v, trained_vae[k]), k
    for k, v in model.prior.unet.state_dict().items():
        assert torch.equal(v, trained_unet[k]), k
    # the UNet was trained on the VAE recipe's null embedding, and the folder
    # carries exactly that one
    assert torch.equal(
        model.prior.null_embedding, vae_runner.model.prior.null_embedding
    )
    assert torch.equal(
        model.prior.null_embedding, unet_runner.model.prior.null_embedding
    )
    # the latent scaling factor was measured (1 / std of training latents), not
    # SD's 0.18215
    factor = model.prior.vae.config.scaling_factor
    assert factor == vae_runner.model.prior.vae.config.scaling_factor
    assert abs(factor - 0.18215) > 1e-3
    from unirestore_mm.apis.demo_eval import load_test_set

    clean, _, _ = load_test_set(embedded, 64)
    x = torch.from_numpy(clean).permute(0, 3, 1, 2).float() / 255
    with torch.no_grad():
        z = model.prior.vae.encode(x * 2 - 1).latent_dist.sample() * factor
    # held-out images give (near) unit-variance latents, what SD's noise
    # schedule assumes
    assert 0.7 < float(z.std()) < 1.4, float(z.std())
    # the folder's prior restores through the whole model, and the scheduler is
    # SD's
    assert model.prior.ddpm.config.beta_schedule == 'scaled_linear'
    assert model.restore(x[:2], task='ir', seed=0).shape == (2, 3, 32, 32)


def test_vae_reconstructs_better_than_its_random_start(trained, embedded):
    """The validation hook's PSNR on the clean test images, against the same
    VAE at initialisation."""
    vae_runner, _, _ = trained
    from unirestore_mm.apis.demo_eval import load_test_set, vae_ceiling

    clean, _, _ = load_test_set(embedded, 64)
    fresh = DiffusionPrior.build(
        dict(UniRestore(preset='tiny').config['prior'])
    ).vae
    assert (
        vae_ceiling(vae_runner.model.prior.vae, clean)['psnr']
        > vae_ceiling(fresh, clean)['psnr'] + 3.0
    )
