"""Recognizers (classifiers, segmenters) that UniRestore's task prompts are
trained through.

:func:`build_recognizer` builds any mmpretrain classifier or mmseg segmentor
from its config (a file, a ``Config`` or the model dict) and loads its
checkpoint; :class:`Recognizer` wraps it so that it takes restored images (RGB
floats in [0, 1]) and gives them the recognizer's own input geometry (kept as
they are, or resized to a configured ``input_size``, e.g. 224 for ImageNet
classifiers as the authors' release feeds its ResNet-50) and its own
normalisation and channel order; a segmentor's logits come back at the input's
size, upsampled with the head's ``align_corners`` or a configured one (the
release uses ``True``).  A frozen recognizer has ``requires_grad=False``
everywhere and stays in eval mode even when its parent is put in train mode
(gradients still flow through it to the restorer).

Errors come before any training: a frozen recognizer without a checkpoint, a
checkpoint that does not fit the config, a model that is neither a classifier
nor a segmentor, a file that needs unpickling.
"""

import os.path as osp
from typing import Any, Dict, Optional, Sequence, Union

import torch
from torch import nn
from torch.nn import functional as F

from .checkpoint_io import load_checkpoint_file

__all__ = [
    'Recognizer',
    'build_recognizer',
    'load_recognizer_checkpoint',
    'preprocessor_flips_channels',
]


def _load_config(config, cfg_options: Optional[dict] = None) -> Dict[str, Any]:
    from mmengine.config import Config, ConfigDict

    if isinstance(config, str):
        # a library's own config, e.g.
        # 'mmpretrain::resnet/resnet50_8xb32_in1k.py'
        if '::' in config:
            from mmengine.hub import get_config

            try:
                config = get_config(config, pretrained=False)
            except Exception as err:  # noqa: BLE001 - re-raised with the path
                raise FileNotFoundError(
                    f'recognizer config {config!r} not found in its package: '
                    f'{err}'
                ) from err
        elif not osp.isfile(config):
            raise FileNotFoundError(
                f'recognizer config: no file at {config!r}'
            )
        else:
            config = Config.fromfile(config)
    if cfg_options:
        if not isinstance(config, Config):
            config = Config(
                dict(config) if 'model' in config else dict(model=dict(config))
            )
        config.merge_from_dict(cfg_options)
    if isinstance(config, Config):
        cfg = config
        model = ConfigDict(cfg['model'])
        # mmengine's Runner moves a top-level data_preprocessor into the model;
        # do the same
        if (
            cfg.get('data_preprocessor') is not None
            and 'data_preprocessor' not in model
        ):
            model['data_preprocessor'] = cfg['data_preprocessor']
        scope = cfg.get('default_scope')
    elif isinstance(config, dict):
        if 'model' in config and isinstance(config['model'], dict):
            model = ConfigDict(config['model'])
            if (
                config.get('data_preprocessor') is not None
                and 'data_preprocessor' not in model
            ):
                model['data_preprocessor'] = config['data_preprocessor']
            scope = config.get('default_scope')
        else:
            model, scope = ConfigDict(config), None
    else:
        raise TypeError(
            'recognizer config must be a path, a Config or a dict; got '
            f'{type(config).__name__}'
        )
    if 'type' not in model:
        raise ValueError(f'recognizer config has no model type: {dict(model)}')
    mtype = model['type']
    if isinstance(mtype, str) and '.' in mtype:
        scope = mtype.split('.')[0]
    if scope not in ('mmpretrain', 'mmseg'):
        raise ValueError(
            f'recognizer config: cannot tell whether {mtype!r} is an '
            'mmpretrain or mmseg model; '
            "set default_scope='mmpretrain' or 'mmseg' in the config, or "
            "write the type as 'mmpretrain.ImageClassifier' / "
            "'mmseg.EncoderDecoder'"
        )
    return dict(model=model, scope=scope)


def load_recognizer_checkpoint(
    path: str, allow_pickle: bool = False
) -> Dict[str, Any]:
    """``{'state_dict': ..., 'meta': ...}`` from an mmpretrain/mmseg/mmengine
    checkpoint or a safetensors file."""
    ckpt = load_checkpoint_file(
        path,
        'recognizer checkpoint',
        allow_pickle,
        "If you trust the file, set allow_pickle=True in the recognizer's "
        "config (or re-save it with only 'state_dict' and 'meta').",
    )
    if isinstance(ckpt, dict) and 'state_dict' in ckpt:
        state, meta = ckpt['state_dict'], ckpt.get('meta') or {}
    elif isinstance(ckpt, dict) and all(
        isinstance(v, torch.Tensor) for v in ckpt.values()
    ):
        state, meta = ckpt, {}
    else:
        raise ValueError(
            f'recognizer checkpoint {path!r}: expected a state dict or '
            f'{{"state_dict": ...}}'
        )
    state = {
        (k[7:] if k.startswith('module.') else k): v for k, v in state.items()
    }
    return dict(state_dict=state, meta=meta)


def preprocessor_flips_channels(
    pre,
    mean: Optional[torch.Tensor] = None,
    std: Optional[torch.Tensor] = None,
) -> bool:
    """Whether a data preprocessor reverses the channel order of 3-channel
    images (BGR -> RGB).

    Found through the preprocessor's public ``forward`` rather than its
    settings, whose names differ between libraries (mmpretrain ``to_rgb``,
    mmseg ``channel_conversion``, mmengine a private ``_channel_conversion``):
    a 2x2 probe image with three different channel values goes through
    ``pre(data, training=False)``, the output is un-normalised with ``mean``
    and ``std`` (``(1, C, 1, 1)``, default 0 and 1) and compared with the probe
    and with the probe reversed.  ``None`` (no preprocessor) does not flip.

    Raises ``ValueError`` naming the preprocessor when its output is neither:
    it does more than a channel flip and a mean/std normalisation, which
    :class:`Recognizer` cannot reproduce on restored images.
    """
    if pre is None:
        return False
    from mmengine.structures import BaseDataElement

    values = torch.tensor([40, 120, 200], dtype=torch.uint8)
    probe = values.view(3, 1, 1).expand(3, 2, 2).contiguous()
    try:
        with torch.no_grad():
            out = pre(
                dict(inputs=[probe.clone()], data_samples=[BaseDataElement()]),
                training=False,
            )
    except Exception as err:  # noqa: BLE001 - re-raised with what was tried
        raise ValueError(
            'recognizer: cannot tell the channel order its data '
            f'preprocessor ({type(pre).__name__}) gives the network: running '
            f'it on a 3x2x2 uint8 probe image failed ({type(err).__name__}: '
            f'{err})'
        ) from err
    y = out['inputs'] if isinstance(out, dict) else out
    # first image, without any bottom/right padding
    y = y[0].detach().float().cpu()[:, :2, :2]
    m = (
        mean.detach().float().cpu().view(-1, 1, 1)
        if mean is not None
        else torch.zeros(1, 1, 1)
    )
    s = (
        std.detach().float().cpu().view(-1, 1, 1)
        if std is not None
        else torch.ones(1, 1, 1)
    )
    seen = y * s + m
    ref = probe.float()
    if y.shape == ref.shape and torch.allclose(seen, ref, atol=1e-3):
        return False
    if y.shape == ref.shape and torch.allclose(seen, ref.flip(0), atol=1e-3):
        return True
    raise ValueError(
        f'recognizer: its data preprocessor ({type(pre).__name__}) does more '
        'than a channel flip and a mean/std normalisation: the probe pixel '
        f'{values.tolist()} came out as {seen[:, 0, 0].tolist()} after '
        'un-normalising'
    )


class Recognizer(nn.Module):
    """A built mmpretrain classifier or mmseg segmentor that takes RGB images
    in [0, 1].

    Args (besides the built ``model`` and its ``kind``):
        input_size: ``None`` (default): the recognizer sees the image at the
            size it comes (the crop); an int or ``(h, w)``: the image is
            resized to it first (``resize_mode``, ``antialias``), as the
            authors' release resizes to 224x224 before its ImageNet classifier.
            A segmentor's logits still come back at the size of the image given
            to :meth:`logits`.
        resize_mode, antialias: how the input is resized (default bilinear with
            antialiasing, what torchvision's ``transforms.v2.Resize`` does to a
            tensor, the release's preprocessing).
        align_corners: how a segmentor's logits are upsampled to the input's
            size: ``None`` (default) the decode head's own setting (what mmseg
            does), ``True``/``False`` that (the release: ``True``).

    Attributes:
        kind: ``'cls'`` or ``'seg'``.
        num_classes: classes of its head.
        classes: class names from the checkpoint's ``meta.dataset_meta`` (or
            ``None``).
        frozen: no parameter learns and the model stays in eval mode.
    """

    def __init__(
        self,
        model: nn.Module,
        kind: str,
        frozen: bool = True,
        classes: Optional[Sequence[str]] = None,
        ignore_index: int = 255,
        input_size: Union[int, Sequence[int], None] = None,
        resize_mode: str = 'bilinear',
        antialias: bool = True,
        align_corners: Optional[bool] = None,
    ):
        super().__init__()
        self.input_size = _check_size(input_size)
        if resize_mode not in ('bilinear', 'bicubic', 'nearest', 'area'):
            raise ValueError(
                f"recognizer resize_mode must be 'bilinear', 'bicubic', "
                "'nearest' or 'area'; "
                f'got {resize_mode!r}'
            )
        if align_corners is not None and not isinstance(align_corners, bool):
            raise ValueError(
                'recognizer align_corners must be None (the head\'s own), '
                f'True or False; got {align_corners!r}'
            )
        self.resize_mode, self.antialias = resize_mode, bool(antialias)
        self.model = model
        self.kind = kind
        self.frozen = frozen
        self.classes = list(classes) if classes is not None else None
        self.ignore_index = ignore_index
        head = (
            getattr(model, 'head', None)
            if kind == 'cls'
            else getattr(model, 'decode_head', None)
        )
        # mmpretrain's TimmClassifier: the timm model (.num_classes) in .model
        if kind == 'cls' and head is None:
            head = getattr(model, 'model', None)
        self.num_classes = int(
            getattr(head, 'num_classes', 0) or getattr(head, 'out_channels', 0)
        )
        pre = getattr(model, 'data_preprocessor', None)
        mean = getattr(pre, 'mean', None)
        std = getattr(pre, 'std', None)
        c = 3
        self.register_buffer(
            'mean',
            (
                mean.detach().float().view(1, -1, 1, 1)
                if mean is not None
                else torch.zeros(1, c, 1, 1)
            ),
            persistent=False,
        )
        self.register_buffer(
            'std',
            (
                std.detach().float().view(1, -1, 1, 1)
                if std is not None
                else torch.ones(1, c, 1, 1)
            ),
            persistent=False,
        )
        # Datasets load BGR (mmcv); a preprocessor set to convert (mmpretrain's
        # to_rgb, mmseg's and mmengine's bgr_to_rgb) gives the network RGB.
        # Restored images are RGB already, so flip them only for a recognizer
        # whose preprocessor does *not* convert, i.e. whose network was trained
        # on BGR.
        self.expects_bgr = not preprocessor_flips_channels(
            pre, self.mean, self.std
        )
        head_align = getattr(
            getattr(model, 'decode_head', None), 'align_corners', False
        )
        self.align_corners = (
            bool(head_align) if align_corners is None else align_corners
        )
        if frozen:
            self.requires_grad_(False)
            self.eval()

    def train(self, mode: bool = True):
        return super().train(False if self.frozen else mode)

    def normalize(self, rgb01: torch.Tensor) -> torch.Tensor:
        x = rgb01 * 255.0
        if self.expects_bgr:
            x = x.flip(1)
        return (x - self.mean.to(x.dtype)) / self.std.to(x.dtype)

    def resize(self, rgb01: torch.Tensor) -> torch.Tensor:
        """The image at the recognizer's :attr:`input_size` (unchanged when
        that is ``None`` or already so)."""
        if (
            self.input_size is None
            or tuple(rgb01.shape[-2:]) == self.input_size
        ):
            return rgb01
        kwargs = (
            dict(align_corners=False)
            if self.resize_mode in ('bilinear', 'bicubic')
            else {}
        )
        if self.resize_mode in ('bilinear', 'bicubic'):
            kwargs['antialias'] = self.antialias
        return F.interpolate(
            rgb01, size=self.input_size, mode=self.resize_mode, **kwargs
        )

    def prepare(self, rgb01: torch.Tensor) -> torch.Tensor:
        """RGB in [0, 1] -> what the recognizer's network reads: resized
        (:meth:`resize`) and normalised."""
        return self.normalize(self.resize(rgb01))

    def logits(self, rgb01: torch.Tensor) -> torch.Tensor:
        """Class logits ``(B, K)`` or per-pixel logits ``(B, K, H, W)`` at the
        input's size."""
        out = self.model(self.prepare(rgb01), mode='tensor')
        if isinstance(out, (list, tuple)):
            out = out[-1]
        if self.kind == 'seg' and out.shape[-2:] != rgb01.shape[-2:]:
            out = F.interpolate(
                out,
                size=rgb01.shape[-2:],
                mode='bilinear',
                align_corners=self.align_corners,
            )
        return out

    def loss(
        self, rgb01: torch.Tensor, data_samples
    ) -> Dict[str, torch.Tensor]:
        """The recognizer's own configured losses (e.g. for joint training with
        auxiliary heads), on the image in the recognizer's geometry (a
        segmentor's own loss resizes its logits to the masks)."""
        return self.model.loss(self.prepare(rgb01), data_samples)

    def extra_repr(self) -> str:
        return (
            f'kind={self.kind!r}, num_classes={self.num_classes}, '
            f'frozen={self.frozen}, input_size={self.input_size}, '
            f'align_corners={self.align_corners}'
        )


def _check_size(size) -> Optional[tuple]:
    if size is None:
        return None
    if isinstance(size, int) and not isinstance(size, bool):
        size = (size, size)
    try:
        size = tuple(size)
    except TypeError:
        size = ()
    if len(size) != 2 or not all(
        isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in size
    ):
        raise ValueError(
            'recognizer input_size must be None (keep the image size), a '
            f'positive int or (h, w); got {size!r}'
        )
    return size


def _kind_of(model: nn.Module) -> str:
    if hasattr(model, 'decode_head'):
        return 'seg'
    if hasattr(model, 'head') or type(model).__name__.endswith('Classifier'):
        return 'cls'
    raise ValueError(
        f'recognizer {type(model).__name__} is neither an mmpretrain '
        'classifier (with a head) nor an '
        'mmseg segmentor (with a decode_head)'
    )


def build_recognizer(
    config: Union[str, dict, Any],
    checkpoint: Optional[str] = None,
    frozen: bool = True,
    require_checkpoint: Optional[bool] = None,
    allow_pickle: bool = False,
    strict: bool = True,
    ignore_index: int = 255,
    cfg_options: Optional[dict] = None,
    input_size: Union[int, Sequence[int], None] = None,
    resize_mode: str = 'bilinear',
    antialias: bool = True,
    align_corners: Optional[bool] = None,
) -> Recognizer:
    """Build an mmpretrain or mmseg recognizer from ``config`` and load
    ``checkpoint``.

    Args:
        config: a config file path, an mmengine ``Config``, or the model dict
            (``type='mmpretrain.ImageClassifier'`` or
            ``'mmseg.EncoderDecoder'``, or with ``default_scope``).
        checkpoint: its weights (``.pth`` loaded with ``weights_only=True``, or
            ``.safetensors``).
        frozen: freeze it and keep it in eval mode (stage 2 / frozen-recognizer
            training).
        require_checkpoint: refuse to go on without a checkpoint (default: when
            ``frozen``).
        allow_pickle: unpickle checkpoints that ``weights_only`` refuses (only
            files you trust).
        strict: the checkpoint must fit the model exactly.
        cfg_options: overrides merged into the config first, e.g.
            ``{'model.head.num_classes': 10}``.
        input_size, resize_mode, antialias, align_corners: the recognizer's
            input geometry (see :class:`Recognizer`).
    """
    _check_size(input_size)  # a bad geometry fails before the model is built
    if require_checkpoint is None:
        require_checkpoint = frozen
    if require_checkpoint and not checkpoint:
        raise ValueError(
            'a frozen recognizer needs its trained weights: set '
            'checkpoint=<path to .pth or .safetensors> (a frozen, randomly '
            'initialised recognizer teaches the restorer nothing)'
        )
    parsed = _load_config(config, cfg_options)
    from mmengine.registry import MODELS as ROOT_MODELS
    from mmengine.registry import DefaultScope

    if parsed['scope'] == 'mmpretrain':
        import mmpretrain.models  # noqa: F401  (registers the models)
    else:
        import mmseg.models  # noqa: F401
    model_cfg = parsed['model']
    with DefaultScope.overwrite_default_scope(parsed['scope']):
        model = ROOT_MODELS.build(model_cfg)
    kind = _kind_of(model)
    classes = None
    if checkpoint:
        ckpt = load_recognizer_checkpoint(
            checkpoint, allow_pickle=allow_pickle
        )
        try:
            result = model.load_state_dict(ckpt['state_dict'], strict=False)
        except RuntimeError as err:  # shape mismatches
            raise ValueError(
                f'recognizer checkpoint {checkpoint!r} does not fit its '
                f'config ({type(model).__name__}): {str(err)[:600]}'
            ) from None
        missing = [
            k
            for k in result.missing_keys
            if not k.startswith('data_preprocessor.')
        ]
        if strict and (missing or result.unexpected_keys):
            raise ValueError(
                f'recognizer checkpoint {checkpoint!r} does not fit its '
                f'config ({type(model).__name__}): {len(missing)} missing '
                f'keys {missing[:5]}, {len(result.unexpected_keys)} '
                f'unexpected keys {result.unexpected_keys[:5]}'
            )
        meta = ckpt['meta'] if isinstance(ckpt['meta'], dict) else {}
        classes = (meta.get('dataset_meta') or {}).get('classes')
    return Recognizer(
        model,
        kind,
        frozen=frozen,
        classes=classes,
        ignore_index=ignore_index,
        input_size=input_size,
        resize_mode=resize_mode,
        antialias=antialias,
        align_corners=align_corners,
    )
