"""``RestoredBackbone``: UniRestore in front of any mmseg / mmpretrain backbone
(DESIGN §5).

The recognizer's data preprocessor hands its backbone normalised images:
``(x[order] - mean) / std`` where ``order`` is RGB when the preprocessor flips
BGR to RGB (``bgr_to_rgb``/``to_rgb``).  This wrapper undoes that, restores the
images in [0, 1] RGB under a task prompt, normalises them again and calls the
wrapped backbone, whose output it returns unchanged.  So an mmseg
``EncoderDecoder`` or an mmpretrain ``ImageClassifier`` config changes only its
``backbone`` key.  The short form merges into the recipe's backbone and keeps
all its settings (only its ``type`` moves to ``backbone_type``)::

    _base_ = 'mmseg::pspnet/pspnet_r18-d8_4xb2-80k_cityscapes-512x1024.py'
    custom_imports = dict(imports=['unirestore_mm'], allow_failed_imports=False)
    model = dict(backbone=dict(
        type='unirestore_mm.RestoredBackbone', backbone_type='ResNetV1c',
        restorer=dict(preset='sd-turbo', prior=dict(pretrained='/models/sd-turbo')),
        restorer_checkpoint='work_dirs/unirestore.safetensors', task='seg',
        mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375], bgr_to_rgb=True))

or, replacing the backbone outright, ``backbone=dict(_delete_=True,
type='unirestore_mm.RestoredBackbone', backbone=dict(type='mmpretrain.ResNet',
depth=50), ...)``.

Everything that can be wrong is checked when the model is built: a backbone
type no registry knows, a task the restorer lacks, missing or malformed
mean/std/channel order, a restorer checkpoint that does not match.
"""

import copy
from typing import Any, Dict, Optional, Sequence, Union

import torch
from mmengine.model import BaseModule
from torch import nn

from ..registry import MODELS
from .image_ops import pad_to_multiple, resize_short_side, resize_to
from .precision import REDUCED, island_dtype, resolve_dtype
from .restorer_model import RestorerSpec, build_restorer
from .tiling import tiled_restore, wants_tiles
from .unirestore import PARTS

_OWN = ('backbone', 'restorer')


def _check_stats(name: str, value, positive: bool = False) -> torch.Tensor:
    hint = (
        'pass the data preprocessor\'s mean, std and channel order, e.g. '
        'mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375], '
        'bgr_to_rgb=True'
    )
    if value is None:
        raise ValueError(
            f'RestoredBackbone: {name} is required to undo the data '
            f'preprocessor\'s normalisation; {hint}'
        )
    try:
        t = torch.as_tensor(value, dtype=torch.float32).flatten()
    except (TypeError, ValueError) as e:
        raise ValueError(
            f'RestoredBackbone: {name} must be 1 or 3 numbers, got '
            f'{value!r}; {hint}'
        ) from e
    if t.numel() == 1:
        t = t.expand(3).clone()
    if t.numel() != 3 or not bool(torch.isfinite(t).all()):
        raise ValueError(
            f'RestoredBackbone: {name} must be 1 or 3 finite numbers, got '
            f'{value!r}; {hint}'
        )
    if positive and bool((t <= 0).any()):
        raise ValueError(
            f'RestoredBackbone: {name} must be positive, got {value!r}'
        )
    return t.view(1, 3, 1, 1)


def _build_backbone(cfg: Dict[str, Any]) -> nn.Module:
    """Build the wrapped backbone in the caller's default scope (unscoped
    types) or the named one."""
    type_ = cfg.get('type')
    if not isinstance(type_, str):
        if isinstance(type_, type) and issubclass(type_, nn.Module):
            return MODELS.build(cfg)
        raise ValueError(
            'RestoredBackbone: the backbone config needs a type such as '
            f'"mmseg.ResNetV1c" or "mmpretrain.ResNet"; got {cfg}'
        )
    with MODELS.switch_scope_and_registry(cfg.get('_scope_')) as registry:
        found = registry.get(type_)
        scope = registry.scope
    if found is None:
        raise ValueError(
            f'RestoredBackbone: unknown backbone type {type_!r} (looked up '
            f'in the {scope!r} scope). Name its library explicitly, e.g. '
            '"mmseg.ResNetV1c", "mmpretrain.ResNet" or '
            '"mmpretrain.TIMMBackbone", and check that the library (mmseg, '
            'mmpretrain, timm) is installed.'
        )
    return MODELS.build(cfg)


@MODELS.register_module()
class RestoredBackbone(BaseModule):
    """A restorer followed by any backbone; drop-in for the ``backbone`` of a
    recognizer config.

    Args:
        backbone: the wrapped backbone's config
            (``dict(type='mmpretrain.ResNet', depth=18)``) or module.
        backbone_type: instead of ``backbone``: the wrapped backbone's type;
            every keyword argument this class does not take goes to it (what a
            recipe's ``backbone`` keys become when merged into this wrapper).
        restorer: UniRestore config (``dict(preset='tiny')``),
            ``save_pretrained`` folder, or module.
        restorer_checkpoint: restorer weights (``.safetensors``, folder, or a
            checkpoint of ``UniRestoreModel`` or of a recognizer around this
            wrapper); loaded (and checked) when the model is built.
        task: the task prompt used to restore (``'cls'``, ``'seg'``, ``'ir'``
            or any trained one).
        mean, std, bgr_to_rgb: the data preprocessor's ``mean``, ``std`` (0-255
            scale) and channel flip (``bgr_to_rgb`` in mmseg, ``to_rgb`` in
            mmpretrain; ``to_rgb`` is accepted as an alias).
        num_steps: DDIM steps (1-4).
        freeze_restorer: keep the restorer fixed (no gradients, always in eval
            mode); ``False`` trains ``restorer_trainable`` jointly with the
            recognizer.
        restorer_trainable: restorer parts that learn when not frozen (default:
            all of ``PARTS``).
        restore_in_eval_only: feed the degraded images straight to the backbone
            in training and restore only in validation/testing.
        min_size: short-side policy before restoring (``'default'``: the
            restorer preset's; ``None``: never upscale).
        tiling, tile_size, tile_overlap, tile_threshold: tiled restoration of
            large inputs, as in :meth:`UniRestore.restore` (``'auto'``: inputs
            whose scaled, padded side exceeds ``tile_threshold`` are restored
            in overlapping tiles blended smoothly; ``None`` settings take the
            restorer preset's; see :mod:`unirestore_mm.models.tiling`).  Bad
            values fail when the model is built.
        seed: seed of the sampling noise in eval mode (repeatable evaluation):
            every image of a batch gets its own generator seeded with it, so an
            image restores the same whatever batch it comes in (as
            ``restorer.restore(image, seed=seed)`` alone); training always
            draws fresh noise.
        dtype: precision of a frozen restorer: ``None`` (default, float32 as
            built), ``'auto'`` (decided on the first forward by the input's
            device: float32 on the CPU, bf16/fp16 on CUDA, see
            :mod:`unirestore_mm.models.precision`), ``'fp32'``, ``'bf16'``,
            ``'fp16'``.  The restored image is handed to the backbone in the
            backbone input's dtype.  A restorer that trains stays in float32.
        pretrained: passed to the wrapped backbone (mmseg's ``EncoderDecoder``
            sets it from ``model.pretrained``).
    """

    def __init__(
        self,
        backbone: Union[dict, nn.Module, None] = None,
        backbone_type: Optional[str] = None,
        restorer: RestorerSpec = dict(
            type='unirestore_mm.UniRestore', preset='tiny'
        ),
        restorer_checkpoint: Optional[str] = None,
        task: str = 'cls',
        mean: Optional[Sequence[float]] = None,
        std: Optional[Sequence[float]] = None,
        bgr_to_rgb: Optional[bool] = None,
        num_steps: int = 1,
        freeze_restorer: bool = True,
        restorer_trainable: Optional[Sequence[str]] = None,
        restore_in_eval_only: bool = False,
        min_size: Union[int, None, str] = 'default',
        seed: Optional[int] = 0,
        pretrained: Optional[str] = None,
        to_rgb: Optional[bool] = None,
        tiling: Union[str, bool] = 'auto',
        tile_size: Optional[int] = None,
        tile_overlap: Optional[int] = None,
        tile_threshold: Optional[int] = None,
        dtype: Optional[str] = None,
        **backbone_kwargs,
    ):
        super().__init__(init_cfg=None)
        # -- normalisation of the data preprocessor (checked before anything
        # heavy is built) --
        if bgr_to_rgb is None:
            bgr_to_rgb = to_rgb
        elif to_rgb is not None and bool(to_rgb) != bool(bgr_to_rgb):
            raise ValueError(
                f'RestoredBackbone: bgr_to_rgb={bgr_to_rgb} and '
                f'to_rgb={to_rgb} disagree; give one'
            )
        if bgr_to_rgb is None:
            raise ValueError(
                'RestoredBackbone: bgr_to_rgb (mmseg) or to_rgb (mmpretrain) '
                'is required: the data preprocessor\'s channel flip, so the '
                'restorer sees RGB images'
            )
        self.register_buffer(
            'mean', _check_stats('mean', mean), persistent=False
        )
        self.register_buffer(
            'std', _check_stats('std', std, positive=True), persistent=False
        )
        self.bgr_to_rgb = bool(bgr_to_rgb)
        if not isinstance(num_steps, int) or not 1 <= num_steps <= 4:
            raise ValueError(
                'RestoredBackbone: num_steps must be an int in 1..4, got '
                f'{num_steps!r}'
            )
        self.task, self.num_steps, self.min_size, self.seed = (
            task,
            num_steps,
            min_size,
            seed,
        )
        self.freeze_restorer, self.restore_in_eval_only = (
            bool(freeze_restorer),
            bool(restore_in_eval_only),
        )

        # -- the wrapped backbone --
        if (backbone is None) == (backbone_type is None):
            raise ValueError(
                'RestoredBackbone: give exactly one of '
                'backbone=dict(type=...) and backbone_type= '
                f'(got backbone={backbone!r}, backbone_type={backbone_type!r})'
            )
        if backbone is not None and backbone_kwargs:
            raise TypeError(
                'RestoredBackbone: unexpected arguments '
                f'{sorted(backbone_kwargs)} (with backbone=..., '
                'put the backbone\'s own settings inside it)'
            )
        if isinstance(backbone, nn.Module):
            self.backbone = backbone
        else:
            cfg = (
                copy.deepcopy(dict(backbone))
                if backbone is not None
                else dict(type=backbone_type, **backbone_kwargs)
            )
            if pretrained is not None:
                cfg['pretrained'] = pretrained
            self.backbone = _build_backbone(cfg)

        # -- the restorer --
        self.restorer = build_restorer(restorer, restorer_checkpoint)
        if task not in self.restorer.tasks:
            raise ValueError(
                f'RestoredBackbone: the restorer has no {task!r} prompt; its '
                f'tasks are {self.restorer.tasks} (train a new one with '
                'UniRestore.add_task)'
            )
        self.tiling = dict(
            tiling=tiling,
            tile_size=tile_size,
            tile_overlap=tile_overlap,
            tile_threshold=tile_threshold,
        )
        # a bad tiling value fails here, naming the argument
        self.restorer.tile_settings(**self.tiling)
        if self.freeze_restorer:
            self.restorer.requires_grad_(False)
            self.restorer.eval()
        else:
            self.restorer.set_trainable(
                tuple(restorer_trainable)
                if restorer_trainable is not None
                else PARTS
            )
        self.dtype_spec = dtype
        if dtype is not None:
            # a bad value fails here
            wanted = resolve_dtype(
                dtype, 'cpu', name='RestoredBackbone: dtype'
            )
            if (
                not self.freeze_restorer
                and wanted != torch.float32
                and dtype != 'auto'
            ):
                raise ValueError(
                    f'RestoredBackbone: dtype={dtype!r} needs '
                    'freeze_restorer=True (a restorer that '
                    'trains keeps float32 weights)'
                )
            if dtype != 'auto':
                self.restorer.to(wanted)

    # -- nn.Module plumbing ---------------------------------------------------
    def __getattr__(self, name: str):
        try:
            return super().__getattr__(name)
        except AttributeError:
            modules = self.__dict__.get('_modules', {})
            if name not in _OWN and 'backbone' in modules:
                # e.g. a ViT's out_type or get_layer_depth
                return getattr(modules['backbone'], name)
            raise

    def train(self, mode: bool = True):
        super().train(mode)
        if self.freeze_restorer:
            self.restorer.eval()
        return self

    def init_weights(self):
        """Initialise the wrapped backbone only: the restorer comes from its
        config and checkpoint."""
        if hasattr(self.backbone, 'init_weights'):
            self.backbone.init_weights()

    # -- restoring ------------------------------------------------------------
    def unnormalize(self, x: torch.Tensor) -> torch.Tensor:
        """Backbone input -> RGB in [0, 1]."""
        img = (x * self.std.to(x.dtype) + self.mean.to(x.dtype)) / 255.0
        if not self.bgr_to_rgb:
            img = img.flip(1)
        return img.clamp(0, 1)

    def normalize(self, img: torch.Tensor) -> torch.Tensor:
        """RGB in [0, 1] -> backbone input."""
        if not self.bgr_to_rgb:
            img = img.flip(1)
        return (img * 255.0 - self.mean.to(img.dtype)) / self.std.to(img.dtype)

    def restore(self, images: torch.Tensor) -> torch.Tensor:
        """Restore RGB images in [0, 1] (any size) under :attr:`task`;
        differentiable unless frozen."""
        size = tuple(images.shape[-2:])
        min_size = (
            self.restorer.min_size
            if self.min_size == 'default'
            else self.min_size
        )
        dtype = self.restorer.dtype
        # resize and pad in float32 for a bf16/fp16 restorer
        x = images.to(island_dtype('geometry', dtype))
        x = resize_short_side(x, min_size)
        scaled = tuple(x.shape[-2:])
        x, _ = pad_to_multiple(x, self.restorer.size_divisor)
        generator = None
        if not self.training and self.seed is not None:
            generator = [
                torch.Generator(device=x.device).manual_seed(int(self.seed))
                for _ in range(x.shape[0])
            ]
        mode, tiles = self.restorer.tile_settings(**self.tiling)
        if (
            mode == 'auto'
            and torch.is_grad_enabled()
            and not self.freeze_restorer
        ):
            # training through the restorer: autograd keeps every tile's
            # activations, so tiles would bound no memory and only add the
            # overlaps' compute; tiling=True still forces them
            mode = False
        # tile by tile, blended (unirestore_mm.models.tiling)
        if wants_tiles(mode, tiles, *x.shape[-2:]):
            out = tiled_restore(
                self.restorer,
                x.to(dtype),
                [self.task],
                num_steps=self.num_steps,
                generator=generator,
                settings=tiles,
            )[self.task]
        else:
            out = self.restorer(
                x.to(dtype),
                task=self.task,
                num_steps=self.num_steps,
                generator=generator,
            ).image
        out = out.to(island_dtype('geometry', out.dtype))
        return resize_to(out[..., : scaled[0], : scaled[1]], size).clamp(0, 1)

    def forward(self, x: torch.Tensor):
        if self.training and self.restore_in_eval_only:
            return self.backbone(x)
        if (
            self.dtype_spec == 'auto'
            and self.freeze_restorer
            and not getattr(self, '_auto_done', False)
        ):
            # decided once, on the first input's device
            self.restorer.set_dtype('auto')
            self._auto_done = True
        dtype = self.restorer.dtype
        img = self.unnormalize(x).to(
            torch.float32 if dtype in REDUCED else dtype
        )
        with torch.set_grad_enabled(
            torch.is_grad_enabled() and not self.freeze_restorer
        ):
            restored = self.restore(img)
        return self.backbone(self.normalize(restored.to(x.dtype)))
