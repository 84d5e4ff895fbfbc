"""The frozen diffusion prior of UniRestore: SD-Turbo's VAE, UNet and
schedulers, and the empty-prompt embedding.

Real weights come from a local diffusers folder
(``DiffusionPrior.from_pretrained(path)``, with the usual ``vae/``, ``unet/``
and ``scheduler/`` sub-folders).  The same code builds a prior of the same
architecture with random weights from config dicts
(``DiffusionPrior.from_config``), for tests, CPU runs and timing.

The UNet never sees text: it always receives one fixed embedding of the empty
prompt.  That embedding is read from a file (``.safetensors`` with key
``null_embedding``, or a ``.pt`` tensor), from
``<folder>/null_embedding.safetensors``, or computed once with the folder's
text encoder (needs ``transformers``) and then cached in that file when the
folder is writable.
"""

import importlib.util
import os
import os.path as osp
from typing import Any, Dict, Optional, Union

import torch
from diffusers import (
    AutoencoderKL,
    DDIMScheduler,
    DDPMScheduler,
    UNet2DConditionModel,
)
from torch import nn

from ..utils.fileio import atomic_save_safetensors
from .checkpoint_io import load_checkpoint_file

# the name earlier code and tests import
_atomic_save_safetensors = atomic_save_safetensors

NULL_EMBEDDING_FILE = 'null_embedding.safetensors'

# Scheduler settings shared by SD 2.1 and SD-Turbo.  "trailing" spacing makes a
# 1-step DDIM start at t=999.
SD_SCHEDULER = dict(
    num_train_timesteps=1000,
    beta_start=0.00085,
    beta_end=0.012,
    beta_schedule='scaled_linear',
    prediction_type='epsilon',
    clip_sample=False,
    set_alpha_to_one=False,
    steps_offset=1,
    timestep_spacing='trailing',
)


def load_null_embedding(path: str) -> torch.Tensor:
    """Read an empty-prompt embedding of shape (1, tokens, dim) from a
    .safetensors or .pt file."""
    # safetensors, or torch.load(weights_only=True): a pickle that would run
    # code is refused, naming the file
    emb = load_checkpoint_file(path, 'null_embedding')
    if path.endswith('.safetensors'):
        if 'null_embedding' not in emb:
            raise ValueError(
                f'null_embedding: {path!r} has keys {sorted(emb)}, expected '
                '"null_embedding"'
            )
        emb = emb['null_embedding']
    if not isinstance(emb, torch.Tensor) or emb.dim() not in (2, 3):
        raise ValueError(
            f'null_embedding: {path!r} must hold a (tokens, dim) or (1, '
            'tokens, dim) tensor'
        )
    return emb[None] if emb.dim() == 2 else emb[:1]


def compute_null_embedding(folder: str) -> torch.Tensor:
    """Encode the empty prompt with the folder's CLIP text encoder
    (``tokenizer/`` and ``text_encoder/``)."""
    try:
        from transformers import CLIPTextModel, CLIPTokenizer
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError(
            f'the diffusers folder {folder!r} has no {NULL_EMBEDDING_FILE}; '
            'computing it once needs '
            '`pip install transformers`, or pass null_embedding=<file>'
        ) from e
    tokenizer = CLIPTokenizer.from_pretrained(folder, subfolder='tokenizer')
    encoder = CLIPTextModel.from_pretrained(folder, subfolder='text_encoder')
    ids = tokenizer(
        [''],
        padding='max_length',
        max_length=tokenizer.model_max_length,
        truncation=True,
        return_tensors='pt',
    ).input_ids
    with torch.no_grad():
        return encoder(ids)[0].float()


class DiffusionPrior(nn.Module):
    """Frozen VAE + UNet + DDPM/DDIM schedulers + the empty-prompt embedding.

    The prior is always frozen (``requires_grad=False``) and kept in eval mode.
    """

    def __init__(
        self,
        vae: AutoencoderKL,
        unet: UNet2DConditionModel,
        scheduler_config: Dict[str, Any],
        null_embedding: torch.Tensor,
        source: Optional[str] = None,
    ):
        super().__init__()
        self.vae = vae
        self.unet = unet
        cfg = dict(scheduler_config)
        # sampling always starts at the last training timestep
        cfg['timestep_spacing'] = 'trailing'
        self.ddpm = DDPMScheduler.from_config(cfg)
        self.ddim_config = DDIMScheduler.from_config(cfg).config
        cross = unet.config.cross_attention_dim
        if null_embedding.shape[-1] != cross:
            raise ValueError(
                f'null embedding width {null_embedding.shape[-1]} does not '
                f'match the UNet\'s cross_attention_dim {cross}'
            )
        self.register_buffer(
            'null_embedding', null_embedding.float(), persistent=False
        )
        self.source = source
        # how to rebuild this prior (saved in a restorer's config.json)
        self.build_config: Dict[str, Any] = dict(pretrained=source)
        self.requires_grad_(False)
        self.eval()

    # -- construction ---------------------------------------------------------
    @classmethod
    def from_config(
        cls,
        vae: Dict[str, Any],
        unet: Dict[str, Any],
        scheduler: Optional[Dict[str, Any]] = None,
        seed: int = 0,
        null_tokens: int = 77,
    ) -> 'DiffusionPrior':
        """A prior with random weights (deterministic from ``seed``) and a
        random fixed null embedding."""
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            vae_model = AutoencoderKL(**vae)
            unet_model = UNet2DConditionModel(**unet)
            dim = unet_model.config.cross_attention_dim
            device = next(unet_model.parameters()).device
            null = (
                torch.randn(1, null_tokens, dim, device='cpu').to(device)
                if device.type != 'meta'
                else torch.empty(1, null_tokens, dim, device='meta')
            )
        prior = cls(
            vae_model, unet_model, scheduler or SD_SCHEDULER, null, source=None
        )
        prior.build_config = dict(
            pretrained=None,
            vae=dict(vae),
            unet=dict(unet),
            scheduler=dict(scheduler or SD_SCHEDULER),
            seed=seed,
            null_tokens=null_tokens,
        )
        return prior

    @classmethod
    def from_pretrained(
        cls,
        path: str,
        null_embedding: Optional[str] = None,
        torch_dtype: Optional[torch.dtype] = None,
    ) -> 'DiffusionPrior':
        """Load VAE, UNet and scheduler from a local diffusers folder
        (``vae/``, ``unet/``, ``scheduler/``)."""
        if not osp.isdir(path):
            raise FileNotFoundError(
                f'prior: {path!r} is not a folder; expected a local '
                'diffusers model folder (e.g. a copy of '
                'stabilityai/sd-turbo) with vae/, unet/ and scheduler/ '
                'sub-folders'
            )
        missing = [
            sub
            for sub in ('vae', 'unet')
            if not osp.isdir(osp.join(path, sub))
        ]
        if missing:
            raise FileNotFoundError(
                f'prior: {path!r} lacks the sub-folder(s) {missing}'
            )
        kwargs = (
            dict(torch_dtype=torch_dtype) if torch_dtype is not None else {}
        )
        if importlib.util.find_spec('accelerate') is None:
            # diffusers' default needs accelerate (and warns without it)
            kwargs['low_cpu_mem_usage'] = False
        vae = AutoencoderKL.from_pretrained(
            path, subfolder='vae', local_files_only=True, **kwargs
        )
        unet = UNet2DConditionModel.from_pretrained(
            path, subfolder='unet', local_files_only=True, **kwargs
        )
        if osp.isdir(osp.join(path, 'scheduler')):
            sched = dict(
                DDPMScheduler.load_config(
                    path, subfolder='scheduler', local_files_only=True
                )
            )
            sched = {k: v for k, v in sched.items() if not k.startswith('_')}
        else:
            sched = dict(SD_SCHEDULER)

        cached = osp.join(path, NULL_EMBEDDING_FILE)
        if null_embedding is not None:
            emb = load_null_embedding(null_embedding)
        elif osp.isfile(cached):
            emb = load_null_embedding(cached)
        else:
            emb = compute_null_embedding(path)
            if os.access(path, os.W_OK):
                atomic_save_safetensors({'null_embedding': emb}, cached)
        prior = cls(vae, unet, sched, emb, source=path)
        prior.build_config = dict(
            pretrained=path, null_embedding=null_embedding
        )
        return prior

    @classmethod
    def build(
        cls, cfg: Union[Dict[str, Any], 'DiffusionPrior']
    ) -> 'DiffusionPrior':
        """From ``dict(pretrained=path, null_embedding=None)`` or
        ``dict(vae=..., unet=..., scheduler=..., seed=0)``.

        A ``pretrained`` of ``None`` means random weights from the architecture
        configs.
        """
        if isinstance(cfg, DiffusionPrior):
            return cfg
        cfg = dict(cfg)
        path = cfg.pop('pretrained', None)
        if path is not None:
            return cls.from_pretrained(
                osp.expanduser(str(path)),
                null_embedding=cfg.get('null_embedding'),
            )
        cfg.pop('null_embedding', None)
        return cls.from_config(**cfg)

    # -- behaviour ------------------------------------------------------------
    def train(self, mode: bool = True) -> 'DiffusionPrior':
        # frozen: BN/dropout-free anyway, but never in training mode
        return super().train(False)

    @property
    def scaling_factor(self) -> float:
        return self.vae.config.scaling_factor

    @property
    def size_divisor(self) -> int:
        """Image sizes must be multiples of this: the VAE's /8 times the UNet's
        downsampling."""
        vae_factor = 2 ** (len(self.vae.config.block_out_channels) - 1)
        unet_factor = 2 ** (len(self.unet.config.block_out_channels) - 1)
        return vae_factor * unet_factor

    def ddim(self) -> DDIMScheduler:
        """A fresh DDIM scheduler (sampling never mutates shared state)."""
        return DDIMScheduler.from_config(self.ddim_config)
