"""Train a small diffusion prior of the SD family here, and export it as a
diffusers folder.

SD-Turbo's weights cannot be had on a machine without a model hub, so the
``tiny`` preset's prior is trained on clean images, in two recipes, and saved
exactly as SD-Turbo is laid out on disk (``vae/``, ``unet/``, ``scheduler/``,
``null_embedding.safetensors``), so ``prior=dict(pretrained=folder)`` loads it
through the same :meth:`~unirestore_mm.models.DiffusionPrior.from_pretrained`
code path as the real prior.

* :class:`PriorVAEModel` trains the ``AutoencoderKL`` as an autoencoder:
  ``L1(decode(sample), x) + kl_weight * KL``.  L1 rather than MSE because it
  keeps edges sharper at equal PSNR (what SD's own VAE uses as its pixel term;
  SD adds LPIPS and a GAN loss, which need weights from a hub).  The KL term is
  written per image element, as SD's (its 1e-6 weights a per-pixel *sum* of L1
  against the KL *sum*): small enough not to cost reconstruction, large enough
  to keep the posterior from collapsing to a point and the latent scale
  bounded.  At the end the latent ``scaling_factor`` is measured on training
  images (one over the latents' standard deviation, as the latent-diffusion
  recipe did for SD's 0.18215), so the UNet is trained, and UniRestore runs, on
  unit-variance latents.
* :class:`PriorUNetModel` trains the ``UNet2DConditionModel`` as a latent
  denoiser on SD's DDPM schedule:
  epsilon prediction at timesteps drawn uniformly from all 1000, always
  conditioned on the prior's fixed empty-prompt embedding (UniRestore never
  feeds text), with the trained VAE frozen.

Both keep the whole prior in ``self.prior`` (a :class:`DiffusionPrior`); only
the part being trained requires grad, so this package's trained-parts
checkpoints and ``--resume`` work unchanged.  :class:`ExportPriorHook` writes
the folder at the end of training.
"""

import os
import os.path as osp
import shutil
import tempfile
from typing import Any, Dict, List, Optional, Sequence

import torch
from mmengine.dist import is_main_process
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.model import BaseModel, is_model_wrapper
from mmengine.structures import BaseDataElement
from torch.nn import functional as F

from ..registry import HOOKS, MODELS
from .presets import get_preset, merge_config
from .prior import NULL_EMBEDDING_FILE, DiffusionPrior

__all__ = [
    'PriorVAEModel',
    'PriorUNetModel',
    'ExportPriorHook',
    'save_prior',
    'measure_scaling_factor',
]


def save_prior(prior: DiffusionPrior, folder: str) -> str:
    """Write ``prior`` as a diffusers folder (``vae/``, ``unet/``,
    ``scheduler/``, ``null_embedding.safetensors``).

    The folder is written next to its destination and renamed into place when
    complete, so a reader never sees a half-written prior; an existing folder
    at ``folder`` is replaced.
    """
    from diffusers import DDPMScheduler
    from safetensors.torch import save_file

    folder = osp.abspath(folder)
    parent = osp.dirname(folder)
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(
        prefix='.' + osp.basename(folder) + '.', suffix='.tmp', dir=parent
    )
    try:
        prior.vae.save_pretrained(
            osp.join(tmp, 'vae'), safe_serialization=True
        )
        prior.unet.save_pretrained(
            osp.join(tmp, 'unet'), safe_serialization=True
        )
        DDPMScheduler.from_config(prior.ddpm.config).save_pretrained(
            osp.join(tmp, 'scheduler')
        )
        save_file(
            {
                'null_embedding': prior.null_embedding.detach()
                .cpu()
                .float()
                .contiguous()
            },
            osp.join(tmp, NULL_EMBEDDING_FILE),
        )
        if osp.isdir(folder):
            old = folder + '.old'
            shutil.rmtree(old, ignore_errors=True)
            os.replace(folder, old)
            os.replace(tmp, folder)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return folder


def _build_prior(prior: Any, preset: str) -> DiffusionPrior:
    if isinstance(prior, DiffusionPrior):
        return prior
    cfg = merge_config(get_preset(preset)['prior'], dict(prior or {}))
    return DiffusionPrior.build(cfg)


def _clean_images(inputs: torch.Tensor) -> torch.Tensor:
    """The clean batch in [-1, 1] (the pipeline packs clean images as inputs;
    see the prior recipes)."""
    return inputs.clamp(0, 1) * 2 - 1


class _PriorModel(BaseModel):
    """Common part of the two prior trainers: the prior, what trains, the data
    preprocessor."""

    trained: str = ''

    def __init__(
        self,
        prior=None,
        preset: str = 'tiny',
        data_preprocessor: Optional[dict] = None,
        init_cfg: Optional[dict] = None,
    ):
        if data_preprocessor is None:
            data_preprocessor = dict(
                type='unirestore_mm.PairedDataPreprocessor'
            )
        super().__init__(
            data_preprocessor=data_preprocessor, init_cfg=init_cfg
        )
        self.prior = _build_prior(prior, preset)
        self.prior.requires_grad_(False)
        getattr(self.prior, self.trained).requires_grad_(True)
        if getattr(self.data_preprocessor, 'pad_size_divisor', 0) is None:
            self.data_preprocessor.pad_size_divisor = self.prior.size_divisor

    def init_weights(self):
        """Weights come from the prior's constructor (deterministic from its
        seed) or its folder."""

    def train(self, mode: bool = True):
        super().train(mode)
        # DiffusionPrior.train() keeps the whole prior in eval mode; the part
        # that learns follows `mode`
        getattr(self.prior, self.trained).train(mode)
        return self

    def forward(
        self,
        inputs: torch.Tensor,
        data_samples: Optional[List[BaseDataElement]] = None,
        mode: str = 'tensor',
    ):
        if mode == 'loss':
            return self.loss(inputs)
        if mode == 'predict':
            return self.predict(inputs, data_samples)
        if mode == 'tensor':
            return self.predict_tensor(inputs)
        raise ValueError(
            f"mode must be 'loss', 'predict' or 'tensor', got {mode!r}"
        )

    def predict(
        self,
        inputs: torch.Tensor,
        data_samples: Optional[List[BaseDataElement]] = None,
    ):
        out = self.predict_tensor(inputs)
        if data_samples is None:
            data_samples = [BaseDataElement() for _ in range(out.shape[0])]
        for img, clean, sample in zip(out, inputs, data_samples):
            h, w = sample.metainfo.get('img_shape', img.shape[-2:])[:2]
            sample.pred_img = img[:, :h, :w].clamp(0, 1)
            # the clean input is the target of a reconstruction
            if 'gt_img' not in sample:
                sample.gt_img = clean[:, :h, :w]
        return list(data_samples)

    def export(self, folder: str) -> str:
        return save_prior(self.prior, folder)


@MODELS.register_module()
class PriorVAEModel(_PriorModel):
    """Train the prior's VAE as an autoencoder (see the module docstring).

    Args:
        prior: overrides of the preset's prior config (``vae=dict(...)``,
            ``seed``), or a built prior.
        preset: the UniRestore preset whose prior architecture is trained
            (``'tiny'``).
        kl_weight: weight of the KL term, per image element (SD's VAE: 1e-6).
        scaling_images: how many training images :class:`ExportPriorHook`
            encodes to measure the latent scaling factor before export.
    """

    trained = 'vae'

    def __init__(
        self,
        prior=None,
        preset: str = 'tiny',
        kl_weight: float = 1e-6,
        scaling_images: int = 512,
        data_preprocessor: Optional[dict] = None,
        init_cfg: Optional[dict] = None,
    ):
        super().__init__(prior, preset, data_preprocessor, init_cfg)
        if kl_weight < 0:
            raise ValueError(f'kl_weight must be >= 0, got {kl_weight}')
        self.kl_weight = float(kl_weight)
        self.scaling_images = int(scaling_images)

    def loss(self, inputs: torch.Tensor) -> Dict[str, torch.Tensor]:
        x = _clean_images(inputs)
        vae = self.prior.vae
        posterior = vae.encode(x).latent_dist
        recon = vae.decode(posterior.sample()).sample
        kl = posterior.kl().mean() / x[0].numel()
        return dict(loss_l1=F.l1_loss(recon, x), loss_kl=self.kl_weight * kl)

    @torch.no_grad()
    def predict_tensor(self, inputs: torch.Tensor) -> torch.Tensor:
        """Reconstruction through the posterior mode, in [0, 1] (unclamped)."""
        vae = self.prior.vae
        return (
            vae.decode(
                vae.encode(_clean_images(inputs)).latent_dist.mode()
            ).sample
            + 1
        ) / 2


@MODELS.register_module()
class PriorUNetModel(_PriorModel):
    """Train the prior's UNet as an epsilon-predicting latent denoiser over all
    timesteps (module docstring).

    Args:
        prior: the prior to start from:
            ``dict(pretrained=<folder exported by the VAE recipe>)``; its VAE
            is frozen and its UNet (and null embedding) are what train and get
            exported.
        unet: optional architecture override: a fresh UNet of this config
            (merged into the preset's) replaces the folder's, e.g. to train
            another width on the same VAE.
        seed: seed of that fresh UNet.
    """

    trained = 'unet'

    def __init__(
        self,
        prior=None,
        preset: str = 'tiny',
        unet: Optional[dict] = None,
        seed: int = 0,
        data_preprocessor: Optional[dict] = None,
        init_cfg: Optional[dict] = None,
    ):
        built = _build_prior(prior, preset)
        if unet is not None:
            from diffusers import UNet2DConditionModel

            cfg = merge_config(get_preset(preset)['prior']['unet'], unet)
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)
                built.unet = UNet2DConditionModel(**cfg)
        super().__init__(built, preset, data_preprocessor, init_cfg)

    def _latents(self, inputs: torch.Tensor) -> torch.Tensor:
        vae = self.prior.vae
        with torch.no_grad():
            return (
                vae.encode(_clean_images(inputs)).latent_dist.sample()
                * vae.config.scaling_factor
            )

    def loss(self, inputs: torch.Tensor) -> Dict[str, torch.Tensor]:
        z0 = self._latents(inputs)
        b = z0.shape[0]
        ddpm = self.prior.ddpm
        t = torch.randint(
            0, ddpm.config.num_train_timesteps, (b,), device=z0.device
        )
        noise = torch.randn_like(z0)
        z_t = ddpm.add_noise(z0, noise, t)
        null = self.prior.null_embedding.to(z0.dtype).expand(b, -1, -1)
        eps = self.prior.unet(z_t, t, encoder_hidden_states=null).sample
        return dict(loss_eps=F.mse_loss(eps, noise))

    @torch.no_grad()
    def predict_tensor(self, inputs: torch.Tensor) -> torch.Tensor:
        """One-step reconstruction from ``t = 499`` (half the schedule),
        decoded, in [0, 1]."""
        z0 = self._latents(inputs)
        b = z0.shape[0]
        ddpm = self.prior.ddpm
        t = torch.full((b,), 499, device=z0.device, dtype=torch.long)
        gen = torch.Generator(device=z0.device).manual_seed(0)
        noise = torch.randn(
            z0.shape, generator=gen, device=z0.device, dtype=z0.dtype
        )
        z_t = ddpm.add_noise(z0, noise, t)
        null = self.prior.null_embedding.to(z0.dtype).expand(b, -1, -1)
        eps = self.prior.unet(z_t, t, encoder_hidden_states=null).sample
        a = ddpm.alphas_cumprod.to(z0.device)[t].view(-1, 1, 1, 1).to(z0.dtype)
        x0 = (z_t - (1 - a).sqrt() * eps) / a.sqrt()
        vae = self.prior.vae
        return (vae.decode(x0 / vae.config.scaling_factor).sample + 1) / 2


@torch.no_grad()
def measure_scaling_factor(vae, batches: Sequence[torch.Tensor]) -> float:
    """One over the standard deviation of the unscaled latent samples of
    ``batches`` (images in [-1, 1])."""
    latents = [vae.encode(x).latent_dist.sample() for x in batches]
    std = torch.cat([z.flatten() for z in latents]).float().std().item()
    if not std > 0:
        raise ValueError(
            'cannot measure the latent scaling factor: latent standard '
            f'deviation is {std}'
        )
    return 1.0 / std


@HOOKS.register_module()
class ExportPriorHook(Hook):
    """At the end of training, write the model's prior as a diffusers folder
    ``<work_dir>/<folder>``.

    With a :class:`PriorVAEModel`, the latent ``scaling_factor`` is first
    measured on training images (see :func:`measure_scaling_factor`) and
    written into the VAE's config, unless ``measure_scaling=False``.
    """

    priority = 'LOWEST'

    def __init__(self, folder: str = 'prior', measure_scaling: bool = True):
        self.folder = folder
        self.measure_scaling = measure_scaling

    def after_train(self, runner) -> None:
        if not is_main_process():
            return
        model = (
            runner.model.module
            if is_model_wrapper(runner.model)
            else runner.model
        )
        if not isinstance(model, _PriorModel):
            raise TypeError(
                'ExportPriorHook needs a PriorVAEModel or PriorUNetModel, '
                f'got {type(model).__name__}'
            )
        if isinstance(model, PriorVAEModel) and self.measure_scaling:
            batches, seen = [], 0
            for data in runner.train_dataloader:
                inputs = model.data_preprocessor(data, False)['inputs']
                batches.append(_clean_images(inputs))
                seen += inputs.shape[0]
                if seen >= model.scaling_images:
                    break
            model.eval()
            factor = measure_scaling_factor(model.prior.vae, batches)
            model.prior.vae.register_to_config(scaling_factor=factor)
            print_log(
                f'latent scaling factor measured on {seen} training images: '
                f'{factor:.5f}',
                logger='current',
            )
        path = model.export(osp.join(runner.work_dir, self.folder))
        print_log(
            f'prior written to {path} (a diffusers folder: '
            f'prior=dict(pretrained={path!r}))',
            logger='current',
        )
