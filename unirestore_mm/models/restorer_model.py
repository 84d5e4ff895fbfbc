"""Train and test the UniRestore restorer itself with MMEngine (DESIGN §3, §5).

* :class:`PairedDataPreprocessor` turns the packed (degraded, clean) pairs of
  :class:`~unirestore_mm.datasets.transforms.PackRestorationInputs` into what
  the restorer reads: a degraded batch of floats in [0, 1], RGB, padded (by
  reflection) to the restorer's size divisor; each data sample's ``gt_img``
  becomes a float RGB image in [0, 1] of the sample's own size.
* :class:`UniRestoreModel` wraps a :class:`~unirestore_mm.models.UniRestore` as
  an MMEngine ``BaseModel``:
  ``loss`` (stage 1: CFRM + Controller + skip adapters; stage 2: the ``ir``
  prompt and TFAs under ``10*L1``), ``predict`` (data samples with ``pred_img``
  and ``gt_img``, read by :class:`~unirestore_mm.evaluation.PSNR` /
  :class:`~unirestore_mm.evaluation.SSIM`) and ``tensor``.  Subclasses add
  tasks by overriding :meth:`UniRestoreModel.compute_losses`.
* :func:`build_restorer` / :func:`load_restorer_weights`: the one way every
  entry point of the package (this model,
  :class:`~unirestore_mm.models.RestoredBackbone`, the ``RestoreImage``
  transform, ``tools/restore.py``) turns a config, a folder or a checkpoint
  into a restorer, failing at build time on a checkpoint that does not match.
"""

import copy
import os.path as osp
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
from mmengine.model import BaseDataPreprocessor, BaseModel
from mmengine.registry import DefaultScope
from mmengine.structures import BaseDataElement
from torch.nn import functional as F

from ..registry import MODELS
from .autoencoder import encode_with_cfrm
from .checkpoint_io import (
    load_checkpoint_state,  # noqa: F401
    load_restorer_state,  # noqa: F401
    mmengine_safe_globals,  # noqa: F401
)
from .losses import STAGE1_TIMESTEPS, ir_loss, predicted_x0, stage1_loss
from .unirestore import CONFIG_NAME, PARTS, WEIGHTS_NAME, UniRestore

RestorerSpec = Union[dict, str, UniRestore]
STAGE_TRAINABLE = {
    1: ('cfrm', 'controller', 'skip_adapters'),
    2: ('tfa', 'prompts'),
}
# Named stage-2 trainable sets: 'paper' as the paper (and the release's
# comments and yaml header) describe it, the TFAs and the prompts; 'release' as
# the release's stage-2 engine actually does, the prompts only (its TFAs stay
# frozen at their initialisation, since its stage-2 yaml loads no TFA weights).
TRAINABLE_SETS = {'paper': ('tfa', 'prompts'), 'release': ('prompts',)}
# The latent the stage-2 decoders learn on (see UniRestoreModel):
LATENT_POLICIES = ('sample', 'authors')
DEFAULT_LATENT = 'sample'


def resolve_trainable(trainable: Union[str, Sequence[str]]) -> Tuple[str, ...]:
    """A named set of :data:`TRAINABLE_SETS` or a list of restorer parts -> the
    parts."""
    if isinstance(trainable, str):
        if trainable not in TRAINABLE_SETS:
            raise ValueError(
                f"trainable={trainable!r}: give a named set ('paper': TFAs "
                "and prompts, as the paper describes; 'release': the "
                "prompts only, as the release's stage-2 code does) or a "
                f"list of parts from {list(PARTS)}"
            )
        return TRAINABLE_SETS[trainable]
    return tuple(trainable)


# -----------------------------------------------------------------------------
# Building and loading restorers
# -----------------------------------------------------------------------------
def build_restorer(
    restorer: RestorerSpec, checkpoint: Optional[str] = None
) -> UniRestore:
    """A :class:`UniRestore` from a config dict, a
    :meth:`UniRestore.save_pretrained` folder or an instance.

    ``dict(type='unirestore_mm.UniRestore', preset='tiny')`` (``type`` may be
    left out) is built in the ``unirestore_mm`` scope whatever the caller's
    default scope.  ``checkpoint`` (see :func:`load_restorer_weights`) is
    loaded right away, so a mismatch fails here, not at the first batch.
    """
    if isinstance(restorer, UniRestore):
        model = restorer
    elif isinstance(restorer, str):
        if not osp.isdir(restorer) or not osp.isfile(
            osp.join(restorer, CONFIG_NAME)
        ):
            raise FileNotFoundError(
                f'restorer {restorer!r}: expected a '
                f'UniRestore.save_pretrained folder (with {CONFIG_NAME} and '
                f'{WEIGHTS_NAME}) or a config dict such as '
                'dict(type="unirestore_mm.UniRestore", preset="tiny")'
            )
        model = UniRestore.from_pretrained(restorer)
    elif isinstance(restorer, dict):
        cfg = copy.deepcopy(dict(restorer))
        cfg.setdefault('type', 'unirestore_mm.UniRestore')
        with DefaultScope.overwrite_default_scope('unirestore_mm'):
            model = MODELS.build(cfg)
        if not isinstance(model, UniRestore):
            raise TypeError(
                f'restorer config {restorer} built a {type(model).__name__}, '
                'not a UniRestore'
            )
    else:
        raise TypeError(
            'restorer must be a config dict, a save_pretrained folder or a '
            f'UniRestore; got {type(restorer).__name__}'
        )
    if checkpoint:
        load_restorer_weights(model, checkpoint)
    return model


def load_restorer_weights(
    model: UniRestore,
    path: str,
    map_location: Union[str, torch.device] = 'cpu',
) -> None:
    """Strictly load restorer weights into ``model``; see
    :func:`~.checkpoint_io.load_restorer_state`."""
    load_restorer_state(model, path, map_location, strict=True)


# -----------------------------------------------------------------------------
# Data preprocessor
# -----------------------------------------------------------------------------
def pad_batch(
    images: Sequence[torch.Tensor],
    divisor: int = 1,
    size: Optional[Tuple[int, int]] = None,
) -> torch.Tensor:
    """Stack (C, H, W) images into one batch, padding bottom/right by
    reflection (replication where an image is too small to reflect) to
    ``size``, or to the largest size rounded up to ``divisor``."""
    if size is None:
        h = max(int(x.shape[-2]) for x in images)
        w = max(int(x.shape[-1]) for x in images)
        size = (-(-h // divisor) * divisor, -(-w // divisor) * divisor)
    h, w = size
    out = []
    for x in images:
        ph, pw = h - x.shape[-2], w - x.shape[-1]
        if ph < 0 or pw < 0:
            raise ValueError(
                f'pad_batch: image of size {tuple(x.shape[-2:])} is larger '
                f'than {tuple(size)}'
            )
        if ph or pw:
            mode = (
                'reflect'
                if ph < x.shape[-2] and pw < x.shape[-1]
                else 'replicate'
            )
            x = F.pad(x[None], (0, pw, 0, ph), mode=mode)[0]
        out.append(x)
    return torch.stack(out)


@MODELS.register_module()
class PairedDataPreprocessor(BaseDataPreprocessor):
    """Degraded/clean pairs from the data pipeline -> the restorer's input.

    ``inputs`` (a list of ``C x H x W`` tensors, or a batch) are divided by
    ``scale`` (255 for mmcv's uint8 and float pipelines), flipped BGR -> RGB
    when ``bgr_to_rgb``, clamped to [0, 1] and stacked with reflection padding
    to ``pad_size_divisor`` (``None``: :class:`UniRestoreModel` sets the
    restorer's).  Each data sample's ``gt_img``, when present, goes through the
    same conversion but keeps its own size; its metainfo gets ``img_shape``
    (the real size) and ``pad_shape``.  Gray inputs are repeated to three
    channels.
    """

    def __init__(
        self,
        bgr_to_rgb: bool = True,
        scale: float = 255.0,
        pad_size_divisor: Optional[int] = None,
        non_blocking: bool = False,
    ):
        super().__init__(non_blocking=non_blocking)
        if scale <= 0:
            raise ValueError(f'scale must be positive, got {scale}')
        if pad_size_divisor is not None and int(pad_size_divisor) < 1:
            raise ValueError(
                'pad_size_divisor must be a positive int or None, got '
                f'{pad_size_divisor}'
            )
        self.bgr_to_rgb = bool(bgr_to_rgb)
        self.scale = float(scale)
        self.pad_size_divisor = (
            None if pad_size_divisor is None else int(pad_size_divisor)
        )

    def to_unit(self, img: torch.Tensor, name: str = 'inputs') -> torch.Tensor:
        """One ``(C, H, W)`` image of the pipeline -> float RGB in [0, 1]."""
        if not isinstance(img, torch.Tensor) or img.dim() != 3:
            raise ValueError(
                f'PairedDataPreprocessor: {name} must be (C, H, W) tensors; '
                f'got {getattr(img, "shape", type(img).__name__)}'
            )
        if img.shape[0] == 1:
            img = img.expand(3, -1, -1)
        elif img.shape[0] == 4:
            img = img[:3]
        elif img.shape[0] != 3:
            raise ValueError(
                f'PairedDataPreprocessor: {name} has {img.shape[0]} '
                'channels; expected 1, 3 or 4 (channels first: C x H x W)'
            )
        img = img.float() / self.scale
        if self.bgr_to_rgb:
            img = img.flip(0)
        return img.clamp(0, 1)

    def forward(self, data: dict, training: bool = False) -> dict:
        data = self.cast_data(data)
        inputs = data['inputs']
        if isinstance(inputs, torch.Tensor):
            inputs = list(inputs) if inputs.dim() == 4 else [inputs]
        images = [self.to_unit(x) for x in inputs]
        divisor = self.pad_size_divisor or 1
        batch = pad_batch(images, divisor)
        samples = data.get('data_samples')
        if samples is not None:
            for sample, img in zip(samples, images):
                if 'gt_img' in sample:
                    gt = self.to_unit(sample.gt_img, 'gt_img')
                    if gt.shape[-2:] != img.shape[-2:]:
                        raise ValueError(
                            'PairedDataPreprocessor: gt_img size '
                            f'{tuple(gt.shape[-2:])} differs from the '
                            f'degraded image size {tuple(img.shape[-2:])}'
                        )
                    sample.gt_img = gt
                sample.set_metainfo(
                    dict(
                        img_shape=tuple(img.shape[-2:]),
                        pad_shape=tuple(batch.shape[-2:]),
                    )
                )
        return dict(inputs=batch, data_samples=samples)


# -----------------------------------------------------------------------------
# The model
# -----------------------------------------------------------------------------
@MODELS.register_module()
class UniRestoreModel(BaseModel):
    """MMEngine model that trains and tests a :class:`UniRestore` on
    degraded/clean pairs.

    Args:
        restorer: a UniRestore config
            (``dict(type='unirestore_mm.UniRestore', preset='tiny')``), a
            ``save_pretrained`` folder, or a built model.
        checkpoint: restorer weights to start from (folder, ``.safetensors`` or
            a checkpoint of this model).
        stage: ``1`` (CFRM, Controller, skip adapters;
            :func:`~unirestore_mm.models.losses.stage1_loss`) or ``2`` (TFAs
            and the ``task`` prompt; ``ir_weight * L1`` of the restored image).
        trainable: the restorer parts that learn (default: the stage's, see
            :data:`STAGE_TRAINABLE`), or a named stage-2 set
            (:data:`TRAINABLE_SETS`): ``'paper'`` (TFAs + prompts) or
            ``'release'`` (prompts only).
        task: the prompt used to restore (and trained in stage 2).
        num_steps: DDIM steps of ``predict``/``tensor`` and of the stage-2
            loss.
        latent: the latent the stage-2 decoder learns on: ``'sample'``
            (default, :data:`DEFAULT_LATENT`) the deployed path, the DDIM
            sample from ``add_noise(z0, noise, 999)`` of the degraded image's
            latent (train as you test; it also scored higher in a 200-iteration
            comparison on the demo, see the README); ``'authors'`` as in the
            authors' release, ``pred_z0`` of the *clean* image's latent noised
            at a ``t`` drawn from {249, 499, 749, 999, 999, 999}, the
            Controller conditioned on the degraded latent.
        ir_weight: weight of the stage-2 L1 loss (10 in the paper).
        seed: seed of the noise in ``predict`` (repeatable evaluation);
            ``None`` for fresh noise.
        data_preprocessor: defaults to :class:`PairedDataPreprocessor` padding
            to the restorer's divisor.

    ``predict`` returns the input data samples (or new ``BaseDataElement``)
    with ``pred_img``: the restored image, float RGB in [0, 1], cropped to the
    sample's size, next to ``gt_img`` in the same format.
    """

    def __init__(
        self,
        restorer: RestorerSpec = dict(
            type='unirestore_mm.UniRestore', preset='tiny'
        ),
        checkpoint: Optional[str] = None,
        stage: int = 1,
        trainable: Optional[Sequence[str]] = None,
        task: str = 'ir',
        num_steps: int = 1,
        ir_weight: float = 10.0,
        seed: Optional[int] = 0,
        latent: str = DEFAULT_LATENT,
        data_preprocessor: Optional[dict] = None,
        init_cfg: Optional[dict] = None,
    ):
        if latent not in LATENT_POLICIES:
            raise ValueError(
                "latent must be 'sample' (the deployed path) or 'authors' "
                f"(the release's training path); got {latent!r}"
            )
        named = isinstance(trainable, str)
        if trainable is not None:
            trainable = resolve_trainable(trainable)
        if data_preprocessor is None:
            data_preprocessor = dict(
                type='unirestore_mm.PairedDataPreprocessor'
            )
        super().__init__(
            data_preprocessor=data_preprocessor, init_cfg=init_cfg
        )
        if stage not in STAGE_TRAINABLE:
            raise ValueError(
                f'stage must be one of {sorted(STAGE_TRAINABLE)}, got '
                f'{stage!r}'
            )
        self.restorer = build_restorer(restorer, checkpoint)
        # unknown task: ValueError listing the known ones
        self.restorer.prompts[task]
        if not isinstance(num_steps, int) or not 1 <= num_steps <= 4:
            raise ValueError(
                f'num_steps must be an int in 1..4, got {num_steps!r}'
            )
        self.stage, self.task, self.num_steps = stage, task, num_steps
        self.ir_weight, self.seed = float(ir_weight), seed
        self.latent_mode = latent
        parts = (
            tuple(trainable)
            if trainable is not None
            else STAGE_TRAINABLE[stage]
        )
        self.restorer.set_trainable(
            parts,
            prompts=[task]
            if stage == 2 and (trainable is None or named)
            else None,
        )
        self.trainable_parts = parts
        if getattr(self.data_preprocessor, 'pad_size_divisor', 0) is None:
            self.data_preprocessor.pad_size_divisor = (
                self.restorer.size_divisor
            )
        divisor = getattr(self.data_preprocessor, 'pad_size_divisor', None)
        if divisor is not None and divisor % self.restorer.size_divisor:
            raise ValueError(
                f'data_preprocessor.pad_size_divisor={divisor} is not a '
                'multiple of the restorer\'s size divisor '
                f'{self.restorer.size_divisor}'
            )

    def init_weights(self):
        """The restorer is initialised by its constructor (and checkpoint);
        nothing to re-initialise."""

    # -- helpers --------------------------------------------------------------
    @staticmethod
    def gt_batch(
        data_samples: Sequence[BaseDataElement], size: Tuple[int, int]
    ) -> torch.Tensor:
        """The samples' ``gt_img`` stacked and padded like the inputs (to
        ``size``)."""
        if not data_samples or any('gt_img' not in s for s in data_samples):
            raise ValueError(
                'UniRestoreModel.loss needs a gt_img in every data sample '
                '(pack the clean image)'
            )
        return pad_batch([s.gt_img for s in data_samples], size=size)

    def _generator(self, device: torch.device) -> Optional[torch.Generator]:
        if self.seed is None:
            return None
        return torch.Generator(device=device).manual_seed(int(self.seed))

    def _sample_generators(
        self,
        device: torch.device,
        data_samples: Optional[Sequence[BaseDataElement]],
    ):
        """One generator per sample, seeded by
        ``(seed, 'restore', sample_idx)`` as ``tools/benchmark.py`` does, so a
        restored test image does not depend on the batch it lands in (batch
        size, process count, skipped samples); the batch's single generator
        where a sample has no ``sample_idx``."""
        if (
            self.seed is None
            or not data_samples
            or any('sample_idx' not in s.metainfo for s in data_samples)
        ):
            return self._generator(device)
        from ..datasets.transforms.degradations import sample_seed

        return [
            torch.Generator(device=device).manual_seed(
                sample_seed(
                    int(self.seed), 'restore', int(s.metainfo['sample_idx'])
                )
            )
            for s in data_samples
        ]

    def compute_losses(
        self,
        inputs: torch.Tensor,
        gt: torch.Tensor,
        data_samples: Optional[List[BaseDataElement]] = None,
    ) -> Dict[str, torch.Tensor]:
        """Losses of one padded batch (degraded ``inputs`` and clean ``gt`` in
        [0, 1]); extend in subclasses."""
        if self.stage == 1:
            return stage1_loss(self.restorer, inputs, gt)
        enc = self.restorer.encode(inputs)
        pred = self.restorer.decode(
            self.training_latent(enc.latent, gt), enc.skips, self.task
        )
        return {f'loss_{self.task}': ir_loss(pred, gt, weight=self.ir_weight)}

    def training_latent(
        self, z0: torch.Tensor, gt: torch.Tensor
    ) -> torch.Tensor:
        """The latent the stage-2 decoder learns on, by :attr:`latent_mode`
        (``z0``: the degraded image's latent, ``gt``: the clean image in [0,
        1])."""
        r = self.restorer
        if self.latent_mode == 'sample':
            return r.sample(z0, num_steps=self.num_steps)
        # the authors' stage-2 path: pred_z0 of the clean latent noised at a
        # stage-1 timestep
        with torch.no_grad():
            h0 = encode_with_cfrm(r.prior.vae, None, gt * 2 - 1).latent
        t = torch.as_tensor(STAGE1_TIMESTEPS, device=z0.device)[
            torch.randint(
                len(STAGE1_TIMESTEPS), (z0.shape[0],), device=z0.device
            )
        ]
        noise = torch.randn_like(h0)
        z_t = r.prior.ddpm.add_noise(h0, noise, t)
        return predicted_x0(r, z_t, r.predict_noise(z_t, t, z0), t)

    # -- BaseModel ------------------------------------------------------------
    def forward(
        self,
        inputs: torch.Tensor,
        data_samples: Optional[List[BaseDataElement]] = None,
        mode: str = 'tensor',
    ):
        if mode == 'loss':
            gt = self.gt_batch(data_samples, tuple(inputs.shape[-2:]))
            return self.compute_losses(inputs, gt, data_samples)
        if mode == 'predict':
            return self.predict(inputs, data_samples)
        if mode == 'tensor':
            return self.restorer(
                inputs,
                task=self.task,
                num_steps=self.num_steps,
                generator=self._generator(inputs.device),
            ).image
        raise ValueError(
            f"mode must be 'loss', 'predict' or 'tensor', got {mode!r}"
        )

    def predict(
        self,
        inputs: torch.Tensor,
        data_samples: Optional[List[BaseDataElement]] = None,
    ) -> List[BaseDataElement]:
        """Restore the batch under :attr:`task`; each sample gets ``pred_img``
        (float RGB in [0, 1], own size)."""
        restored = self.restorer.restore(
            inputs.clamp(0, 1),
            task=self.task,
            num_steps=self.num_steps,
            generator=self._sample_generators(inputs.device, data_samples),
        )
        if data_samples is None:
            data_samples = [
                BaseDataElement(
                    metainfo=dict(img_shape=tuple(inputs.shape[-2:]))
                )
                for _ in range(inputs.shape[0])
            ]
        for img, sample in zip(restored, data_samples):
            h, w = sample.metainfo.get('img_shape', img.shape[-2:])[:2]
            sample.pred_img = img[:, :h, :w]
        return list(data_samples)


__all__ = [
    'DEFAULT_LATENT',
    'LATENT_POLICIES',
    'PARTS',
    'PairedDataPreprocessor',
    'TRAINABLE_SETS',
    'UniRestoreModel',
    'build_restorer',
    'load_checkpoint_state',
    'resolve_trainable',
    'mmengine_safe_globals',
    'load_restorer_weights',
    'pad_batch',
]
