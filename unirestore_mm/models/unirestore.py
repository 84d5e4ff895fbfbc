"""UniRestore (Chen et al., "UniRestore: Unified Perceptual and Task-Oriented
Image Restoration Model Using Diffusion Prior", CVPR 2025) on diffusers
components.

Inference on a degraded image ``x`` in [0, 1] (DESIGN §2):

1. optionally upscale so the short side is at least ``min_size``; pad H and W
   to the prior's size divisor;
2. ``z0, skips = encode(x)``: the VAE encoder with CFRM restores features,
   keeps them as skips;
3. ``z_t = ddpm.add_noise(z0, noise, 999)``;
4. each DDIM step (1-4): ``eps = UNet(z_t, t, null_embedding)`` with skip
   connections adapted by ``Controller(z0, t)``;
   ``z_t = ddim.step(eps, t, z_t)``;
5. ``decode(z_t, skips, task)``: the VAE decoder with the TFAs under the task
   prompt; crop and resize back.

The restore path is a function of (images, task, steps, generator) with no
hidden state, so tiling, precision and batching can wrap it.
"""

import json
import os
import os.path as osp
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence, Union

import torch
from diffusers.utils.torch_utils import randn_tensor
from torch import nn

from ..registry import MODELS
from ..utils.fileio import atomic_save_safetensors, atomic_write_text
from .autoencoder import (
    EncoderOutput,
    decode_with_tfa,
    encode_with_cfrm,
    needs_grad,
)
from .cfrm import CFRM
from .checkpoint_io import WEIGHTS_NAME, load_restorer_state
from .controller import Controller
from .image_ops import (
    check_geometry,
    check_images,
    pad_to_multiple,
    resize_short_side,
    resize_to,
)
from .precision import (
    FP32_MODULES,
    REDUCED,
    DtypeSpec,
    MemoryFormatSpec,
    compute_dtype,
    island_dtype,
    keep_fp32,
    module_dtype,
    resolve_dtype,
    resolve_memory_format,
    weights_memory_format,
)
from .presets import get_preset, merge_config
from .prior import DiffusionPrior
from .skip_adapters import (
    SkipAdapters,
    check_unet_supported,
    controlled_unet_forward,
    unet_skip_channels,
)
from .tfa import TaskFeatureAdapters, TaskPromptBank
from .tiling import resolve_tiling, tiled_restore, wants_tiles

CONFIG_NAME = 'config.json'
MAX_STEPS = 4
# The restorer's own, trainable parts (everything but the prior).
PARTS = ('cfrm', 'controller', 'skip_adapters', 'tfa', 'prompts')


@dataclass
class UniRestoreOutput:
    """``image``: restored batch in [0, 1] (unclamped, padded size);
    ``latent``: the sampled latent; ``encoded``: the CFRM encoder's output
    (``z0`` and the skips)."""

    image: torch.Tensor
    latent: torch.Tensor
    encoded: EncoderOutput


def _jsonable(obj):
    if isinstance(obj, dict):
        return {k: _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    return obj


@MODELS.register_module()
class UniRestore(nn.Module):
    """The UniRestore restorer: frozen SD prior + CFRM + Controller + skip
    adapters + TFAs + task prompts.

    Args:
        preset: ``'sd-turbo'`` or ``'tiny'``; the other arguments override its
            entries.
        prior: ``dict(pretrained='/local/diffusers/folder')`` for real weights,
            or architecture configs (``vae``, ``unet``, ``scheduler``,
            ``seed``) for a random prior, or a built :class:`DiffusionPrior`.
        cfrm, controller: overrides of the preset's CFRM and Controller
            settings.
        tasks: names of the task prompts.
        min_size: default short-side policy of :meth:`restore` (``None``: never
            upscale).
        dtype: precision of the weights and of :meth:`restore`: ``None``
            (float32, as built), ``'auto'`` (the faster one measured per device
            and size: float32 on the CPU, bf16 there for an SD-class restorer
            where oneDNN has native bf16; bf16/fp16 on CUDA, see
            :mod:`.precision`), ``'fp32'``, ``'bf16'``, ``'fp16'`` or a torch
            dtype.  ``model.to(torch.bfloat16)`` and :meth:`set_dtype` do the
            same later.  In bf16/fp16 the scheduler arithmetic, the latent
            sampling and scaling, the null embedding, the decoder's output head
            and the final resize/clamp stay in float32 (:mod:`.precision` says
            why).  Train in float32 (the optimiser needs float32 weights).
        memory_format: layout of the convolution weights, and so of the
            activations: ``None`` (contiguous, as built), ``'auto'``
            (channels-last on the CPU, measured faster; contiguous on CUDA,
            not measured; see :mod:`.precision`), ``'channels_last'`` or
            ``'contiguous'``.  :meth:`set_memory_format` and
            ``model.to(memory_format=...)`` do the same later.  Inputs of any
            layout are accepted and outputs are contiguous either way.

    Example::

        model = UniRestore(preset='sd-turbo', prior=dict(pretrained='/models/sd-turbo'))
        model.load_weights('work_dirs/unirestore.safetensors')
        out = model.restore(images, task='cls', num_steps=1)   # images: (B, 3, H, W) floats in [0, 1]
    """  # noqa: E501

    def __init__(
        self,
        preset: str = 'tiny',
        prior: Union[Dict[str, Any], DiffusionPrior, None] = None,
        cfrm: Optional[Dict[str, Any]] = None,
        controller: Optional[Dict[str, Any]] = None,
        tasks: Optional[Sequence[str]] = None,
        prompt_len: Optional[int] = None,
        min_size: Union[int, None, str] = 'preset',
        dtype: DtypeSpec = None,
        memory_format: MemoryFormatSpec = None,
    ):
        super().__init__()
        override: Dict[str, Any] = {}
        if isinstance(prior, dict):
            override['prior'] = prior
        for key, value in dict(
            cfrm=cfrm,
            controller=controller,
            tasks=tasks,
            prompt_len=prompt_len,
        ).items():
            if value is not None:
                override[key] = value
        if min_size != 'preset':
            override['min_size'] = min_size
        config = merge_config(get_preset(preset), override)
        config['preset'] = preset

        self.prior = (
            prior
            if isinstance(prior, DiffusionPrior)
            else DiffusionPrior.build(config['prior'])
        )
        config['prior'] = self.prior.build_config
        check_unet_supported(self.prior.unet)
        vae_cfg, unet_cfg = self.prior.vae.config, self.prior.unet.config

        enc_channels = list(vae_cfg.block_out_channels)
        # CFRM after every encoder down block but the last
        taps = enc_channels[:-1]
        self.cfrm = CFRM(taps, **config['cfrm'])
        self.controller = Controller(
            in_channels=vae_cfg.latent_channels, **config['controller']
        )
        self.skip_adapters = SkipAdapters(
            unet_skip_channels(unet_cfg),
            cond_channels=self.controller.out_channels,
        )
        # decoder up block i reads dec_in[max(i-1, 0)] channels
        dec_in = list(reversed(enc_channels))
        x_channels = [dec_in[max(i - 1, 0)] for i in range(len(taps))]
        self.tfa = TaskFeatureAdapters(
            x_channels, list(reversed(taps)), prompt_len=config['prompt_len']
        )
        self.prompts = TaskPromptBank(
            config['tasks'],
            prompt_len=config['prompt_len'],
            dim=self.tfa.prompt_dim,
        )
        self.config = config
        self.min_size = config['min_size']
        self._prior_keys = tuple('prior.' + k for k in self.prior.state_dict())
        # checkpoints hold the restorer's own modules; the prior stays in its
        # folder
        self.register_state_dict_post_hook(_drop_prior_keys)
        self.register_load_state_dict_post_hook(_ignore_missing_prior_keys)
        if dtype is not None:
            self.set_dtype(dtype)
        if memory_format is not None:
            self.set_memory_format(memory_format)

    # -- bookkeeping ----------------------------------------------------------
    @property
    def tasks(self) -> List[str]:
        return list(self.prompts.tasks)

    @property
    def size_divisor(self) -> int:
        return self.prior.size_divisor

    @property
    def dtype(self) -> torch.dtype:
        """The precision the restorer computes in (its CFRM weights'; the fp32
        islands aside)."""
        return compute_dtype(self)

    def set_dtype(self, dtype: DtypeSpec = 'auto') -> 'UniRestore':
        """Cast to ``dtype`` (``'auto'``: the default of the device the model
        is on); returns the model."""
        return self.to(dtype=resolve_dtype(dtype, self._device(), model=self))

    @property
    def memory_format(self) -> torch.memory_format:
        """The layout of the convolution weights (``torch.channels_last`` or
        ``torch.contiguous_format``)."""
        return weights_memory_format(self)

    def set_memory_format(
        self, memory_format: MemoryFormatSpec = 'auto'
    ) -> 'UniRestore':
        """Lay the convolution weights out as ``memory_format`` (``'auto'``:
        the default of the device the model is on); returns the model."""
        return self.to(
            memory_format=resolve_memory_format(memory_format, self._device())
        )

    def _apply(self, fn, *args, **kwargs):
        # every cast (.to(dtype), .half(), .bfloat16(), a parent's .to) goes
        # through _apply: put the fp32 islands back after it, so that a
        # reduced-precision restorer keeps them whichever way it was cast
        out = super()._apply(fn, *args, **kwargs)
        if self._modules.get('cfrm') is not None and self.dtype in REDUCED:
            keep_fp32(self, FP32_MODULES, buffers=('prior.null_embedding',))
        return out

    def add_task(
        self, name: str, init_from: Optional[str] = None
    ) -> nn.Parameter:
        """Add a learnable prompt for a new task (zeros, or a copy of
        ``init_from``'s prompt)."""
        param = self.prompts.add_task(name, init_from=init_from)
        self.config['tasks'] = self.tasks
        return param

    def set_trainable(
        self,
        parts: Sequence[str] = PARTS,
        prompts: Optional[Sequence[str]] = None,
    ) -> None:
        """Train only ``parts`` (of :data:`PARTS`); with ``prompts`` given,
        only those task prompts learn."""
        unknown = set(parts) - set(PARTS)
        if unknown:
            raise ValueError(
                f'unknown trainable part(s) {sorted(unknown)}; choose from '
                f'{list(PARTS)}'
            )
        for part in PARTS:
            getattr(self, part).requires_grad_(part in parts)
        if prompts is not None:
            for task in prompts:
                self.prompts[task]  # raises for unknown tasks
            for task, p in self.prompts.prompts.items():
                p.requires_grad_('prompts' in parts and task in prompts)
        self.prior.requires_grad_(False)

    # -- the model ------------------------------------------------------------
    def encode(
        self,
        images: torch.Tensor,
        generator: Optional[torch.Generator] = None,
        noise: Optional[torch.Tensor] = None,
    ) -> EncoderOutput:
        """``images`` in [0, 1], padded to :attr:`size_divisor` -> scaled
        latent ``z0`` and the CFRM skips (``noise``: the latent sample's
        standard normal noise, instead of drawing it from ``generator``)."""
        return encode_with_cfrm(
            self.prior.vae,
            self.cfrm,
            images * 2 - 1,
            generator=generator,
            noise=noise,
        )

    def predict_noise(
        self, latent: torch.Tensor, timesteps: torch.Tensor, z0: torch.Tensor
    ) -> torch.Tensor:
        """The frozen UNet's noise prediction with its skips adapted by the
        Controller's maps of ``z0``."""
        b = latent.shape[0]
        with torch.set_grad_enabled(
            needs_grad(latent, z0, self.controller, self.skip_adapters)
        ):
            control = self.controller(
                z0.to(module_dtype(self.controller, z0.dtype)), timesteps
            )
            unet_dtype = module_dtype(self.prior.unet, latent.dtype)
            null = self.prior.null_embedding.to(unet_dtype).expand(b, -1, -1)
            return controlled_unet_forward(
                self.prior.unet,
                latent.to(unet_dtype),
                timesteps,
                null,
                control,
                self.skip_adapters,
            )

    def sample(
        self,
        z0: torch.Tensor,
        num_steps: int = 1,
        generator: Optional[torch.Generator] = None,
        noise: Optional[torch.Tensor] = None,
    ) -> torch.Tensor:
        """DDIM from t=999 (``num_steps`` in 1-4) starting at
        ``add_noise(z0, noise, 999)`` (``noise``: given, or drawn from
        ``generator``).

        The scheduler arithmetic runs on float32 latents whatever the model's
        precision (an fp32 island); the result is float32 for a
        reduced-precision model (the input's dtype otherwise)."""
        if not isinstance(num_steps, int) or not 1 <= num_steps <= MAX_STEPS:
            raise ValueError(
                f'num_steps must be an int in 1..{MAX_STEPS}; got '
                f'{num_steps!r}'
            )
        ddim = self.prior.ddim()
        ddim.set_timesteps(num_steps, device=z0.device)
        b = z0.shape[0]
        sched_dtype = (
            island_dtype('scheduler', self.dtype)
            if self.dtype in REDUCED
            else z0.dtype
        )
        if noise is None:
            noise = randn_tensor(
                z0.shape,
                generator=generator,
                device=z0.device,
                dtype=sched_dtype,
            )
        else:
            noise = noise.to(device=z0.device, dtype=sched_dtype)
        t0 = ddim.timesteps[:1].expand(b)
        z = self.prior.ddpm.add_noise(z0.to(sched_dtype), noise, t0)
        for t in ddim.timesteps:
            eps = self.predict_noise(z, t.expand(b), z0)
            z = ddim.step(eps.to(sched_dtype), t, z).prev_sample
        return z

    def decode(
        self, latent: torch.Tensor, skips: List[torch.Tensor], task: str
    ) -> torch.Tensor:
        """Decode with the TFAs under ``task``'s prompt; returns an image in
        [0, 1] (unclamped)."""
        prompt = self.prompts[task]
        return (
            decode_with_tfa(self.prior.vae, self.tfa, latent, skips, prompt)
            + 1
        ) / 2

    def forward(
        self,
        images: torch.Tensor,
        task: str = 'ir',
        num_steps: int = 1,
        generator: Optional[torch.Generator] = None,
    ) -> UniRestoreOutput:
        """One restore pass on a batch already padded to :attr:`size_divisor`
        (no input checks, no cropping)."""
        self.prompts[task]  # fail before any compute on an unknown task
        encoded = self.encode(images, generator=generator)
        latent = self.sample(
            encoded.latent, num_steps=num_steps, generator=generator
        )
        return UniRestoreOutput(
            image=self.decode(latent, encoded.skips, task),
            latent=latent,
            encoded=encoded,
        )

    @torch.no_grad()
    def restore(
        self,
        images: torch.Tensor,
        task: str = 'ir',
        num_steps: int = 1,
        min_size: Union[int, None, str] = 'default',
        generator: Optional[torch.Generator] = None,
        seed: Optional[int] = None,
        geometry: str = 'release',
        tiling: Union[str, bool] = 'auto',
        tile_size: Optional[int] = None,
        tile_overlap: Optional[int] = None,
        tile_threshold: Optional[int] = None,
    ) -> torch.Tensor:
        """Restore float images in [0, 1] of any size: (B, 3, H, W) or (3, H,
        W) in, same shape out, in [0, 1].

        ``min_size``: upscale so the short side is at least this before
        restoring (default: the preset's, 512 for ``sd-turbo``); ``seed`` or
        ``generator`` make the result repeatable (a list of generators, one per
        image, makes each image's result independent of the batch it is
        restored in). ``geometry``: ``'release'`` (default) as the authors'
        release: no clamp after upscaling, the result resized back without
        antialiasing (the more faithful round trip, see :mod:`.image_ops`);
        ``'antialias'`` clamps the upscaled input to [0, 1] and resizes back
        with antialiasing.  The two differ only for images whose short side is
        below ``min_size``.
        ``tiling``: ``'auto'`` (default) restores an image whose scaled, padded
        height or width exceeds ``tile_threshold`` in overlapping tiles of at
        most ``tile_size`` px, at least ``tile_overlap`` px apart, blended with
        a smooth window (bounded memory; see :mod:`.tiling`); ``True`` always,
        ``False`` never.  ``None`` settings take the preset's (``sd-turbo``:
        512-px tiles, 32-px overlap, threshold 768; ``tiny``: 128, 32, 192).
        """
        return self.restore_tasks(
            images,
            [task],
            num_steps,
            min_size,
            generator,
            seed,
            geometry=geometry,
            tiling=tiling,
            tile_size=tile_size,
            tile_overlap=tile_overlap,
            tile_threshold=tile_threshold,
        )[task]

    @torch.no_grad()
    def restore_tasks(
        self,
        images: torch.Tensor,
        tasks: Sequence[str],
        num_steps: int = 1,
        min_size: Union[int, None, str] = 'default',
        generator: Union[torch.Generator, List[torch.Generator], None] = None,
        seed: Optional[int] = None,
        geometry: str = 'release',
        tiling: Union[str, bool] = 'auto',
        tile_size: Optional[int] = None,
        tile_overlap: Optional[int] = None,
        tile_threshold: Optional[int] = None,
    ) -> Dict[str, torch.Tensor]:
        """:meth:`restore` under several task prompts at the cost of one
        encoding and one sampling: the prompts act in the decoder only, so
        ``restore_tasks(x, tasks, seed=s)[t]`` equals
        ``restore(x, t, seed=s)``."""
        check_geometry(geometry)
        antialias = geometry == 'antialias'
        single = isinstance(images, torch.Tensor) and images.dim() == 3
        x = check_images(images)
        tasks = list(tasks)
        if not tasks:
            raise ValueError('restore_tasks: no task given')
        for task in tasks:
            self.prompts[task]  # unknown task: fail before any compute
        tile_mode, tiles = self.tile_settings(
            tiling, tile_size, tile_overlap, tile_threshold
        )
        if generator is None and seed is not None:
            generator = torch.Generator(device=self._device()).manual_seed(
                int(seed)
            )
        size = tuple(x.shape[-2:])
        param = next(self.cfrm.parameters())
        # contiguous: the same values give the same result whatever the input's
        # memory layout (channels-last or strided inputs would otherwise run
        # kernels that sum in another order)
        # the resize and padding run in float32 for a bf16/fp16 model (an fp32
        # island); then the model's dtype
        geo_dtype = island_dtype('geometry', param.dtype)
        x = x.to(device=param.device, dtype=geo_dtype).contiguous()
        x = resize_short_side(
            x,
            self.min_size if min_size == 'default' else min_size,
            clamp=antialias,
        )
        scaled = tuple(x.shape[-2:])
        x, _ = pad_to_multiple(x, self.size_divisor)
        x = x.to(param.dtype)
        tiled = None
        # bounded memory: tile by tile, blended (see .tiling)
        if wants_tiles(tile_mode, tiles, *x.shape[-2:]):
            tiled = tiled_restore(
                self,
                x,
                tasks,
                num_steps=num_steps,
                generator=generator,
                settings=tiles,
            )
        else:
            encoded = self.encode(x, generator=generator)
            latent = self.sample(
                encoded.latent, num_steps=num_steps, generator=generator
            )
        out = {}
        for task in tasks:
            y = (
                tiled[task]
                if tiled is not None
                else self.decode(latent, encoded.skips, task)
            )
            # float32 island: the final crop, resize and clamp (a no-op cast
            # for float32 and float64 models)
            y = y.to(island_dtype('geometry', y.dtype))
            y = (
                resize_to(
                    y[..., : scaled[0], : scaled[1]], size, antialias=antialias
                )
                .clamp_(0, 1)
                .to(images.dtype)
                # NCHW whatever the model's layout (channels-last weights
                # give channels-last activations)
                .contiguous()
            )
            out[task] = y[0] if single else y
        return out

    def tile_settings(
        self,
        tiling: Union[str, bool] = 'auto',
        tile_size: Optional[int] = None,
        tile_overlap: Optional[int] = None,
        tile_threshold: Optional[int] = None,
    ):
        """Validated ``(mode, TileSettings)``; ``None`` settings take the
        preset's (:mod:`.tiling`)."""
        return resolve_tiling(
            self.config.get('tiling')
            or get_preset(self.config['preset'])['tiling'],
            self.size_divisor,
            tiling,
            tile_size,
            tile_overlap,
            tile_threshold,
        )

    def _device(self) -> torch.device:
        return next(self.cfrm.parameters()).device

    # -- persistence ----------------------------------------------------------
    def save_pretrained(self, save_directory: str) -> None:
        """Write ``config.json`` and ``model.safetensors`` (the restorer's own
        weights, not the prior)."""
        os.makedirs(save_directory, exist_ok=True)
        config = _jsonable(dict(self.config, tasks=self.tasks))
        atomic_save_safetensors(
            self.state_dict(),
            osp.join(save_directory, WEIGHTS_NAME),
            metadata={'format': 'pt'},
        )
        atomic_write_text(
            json.dumps(config, indent=2, sort_keys=True) + '\n',
            osp.join(save_directory, CONFIG_NAME),
        )

    @classmethod
    def from_pretrained(
        cls,
        directory: str,
        prior: Union[Dict[str, Any], DiffusionPrior, str, None] = None,
        map_location: Union[str, torch.device] = 'cpu',
    ) -> 'UniRestore':
        """Rebuild from :meth:`save_pretrained`'s folder; ``prior`` (a
        diffusers folder path, a config dict or a built prior) replaces the
        saved prior setting, e.g. when the SD folder lives elsewhere."""
        cfg_path = osp.join(directory, CONFIG_NAME)
        if not osp.isfile(cfg_path):
            raise FileNotFoundError(
                f'UniRestore.from_pretrained: no {CONFIG_NAME} in '
                f'{directory!r}'
            )
        with open(cfg_path, encoding='utf-8') as f:
            config = json.load(f)
        if isinstance(prior, str):
            prior = dict(pretrained=prior)
        model = cls(
            preset=config['preset'],
            prior=prior if prior is not None else config['prior'],
            cfrm=config['cfrm'],
            controller=config['controller'],
            tasks=config['tasks'],
            prompt_len=config['prompt_len'],
            min_size=config['min_size'],
        )
        model.load_weights(
            osp.join(directory, WEIGHTS_NAME), map_location=map_location
        )
        return model

    def load_weights(
        self,
        path: str,
        map_location: Union[str, torch.device] = 'cpu',
        strict: bool = True,
    ) -> None:
        """Load restorer weights from a ``save_pretrained`` folder, a
        ``.safetensors`` file or a ``weights_only`` torch checkpoint (a bare
        state dict, MMEngine's ``{'state_dict': ...}``, a training checkpoint
        of this package whatever the prefix).  A file that does not match
        raises ``ValueError`` naming the keys."""
        load_restorer_state(self, path, map_location, strict=strict)


def _drop_prior_keys(
    module: UniRestore, state_dict, prefix: str, local_metadata
) -> None:
    for key in [k for k in state_dict if k.startswith(prefix + 'prior.')]:
        del state_dict[key]


def _ignore_missing_prior_keys(module: UniRestore, incompatible_keys) -> None:
    missing = incompatible_keys.missing_keys
    prior = module._prior_keys
    missing[:] = [
        k
        for k in missing
        if not any(k == p or k.endswith('.' + p) for p in prior)
    ]
