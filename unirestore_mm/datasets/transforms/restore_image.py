"""``RestoreImage``: restore ``results['img']`` with UniRestore inside any data
pipeline (DESIGN §5).

The downstream model need not be an OpenMMLab one: the transform only reads and
writes a numpy image, keeping what mmcv pipelines carry (``H x W x C``, BGR by
default, its dtype and value range), so it slots in after ``LoadImageFromFile``
(and a degradation, for benchmarks) and before any resize, normalisation or
packing::

    test_pipeline = [
        dict(type='LoadImageFromFile'),
        dict(type='unirestore_mm.RestoreImage', restorer=dict(preset='tiny'), checkpoint='restorer.safetensors',
             task='cls', device='cpu'),
        dict(type='PackInputs'),
    ]

Outside any pipeline (a torchvision or ONNX model downstream)::

    restore = RestoreImage(restorer='work_dirs/unirestore_pretrained', task='cls', device='cuda')
    bgr = restore.restore_array(cv2.imread('foggy.jpg'))     # same shape, dtype and range

An mmcv/MMEngine pipeline hands a transform one sample at a time
(``transform(results)`` sees one image), so inside a pipeline the restorer runs
per image.  To restore in batches: :meth:`RestoreImage.restore_arrays` (a list
of images, restored in batches of same-size images, each as
:meth:`RestoreImage.restore_array` would restore it alone),
:class:`~unirestore_mm.apis.UniRestoreInferencer` (files and folders,
``batch_size``), or :class:`~unirestore_mm.models.RestoredBackbone` inside the
model, which restores the collated batch in one call.

The restorer is built on first use, once per process (so once per dataloader
worker), and shared by every ``RestoreImage`` of that process with the same
restorer, checkpoint and device.  Pickling the transform (to start spawned
workers) leaves the model behind.

A restorer with no trained weights (a config dict without ``checkpoint``) only
degrades images and is refused when the transform is built;
``allow_random_weights=True`` runs it anyway (timing, tests).
"""  # noqa: E501

import copy
import json
import threading
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
from mmcv.transforms import BaseTransform

from unirestore_mm.registry import TRANSFORMS

_CACHE: Dict[Tuple[str, Optional[str], str, str], object] = {}
_CACHE_LOCK = threading.Lock()


def _cache_key(
    restorer, checkpoint, device, dtype='fp32', memory_format='contiguous'
) -> Tuple[str, Optional[str], str, str, str]:
    spec = (
        restorer
        if isinstance(restorer, str)
        else json.dumps(restorer, sort_keys=True, default=repr)
    )
    return spec, checkpoint, str(device), str(dtype), str(memory_format)


def clear_restorer_cache() -> None:
    """Drop the restorers that :class:`RestoreImage` built in this process."""
    with _CACHE_LOCK:
        _CACHE.clear()


def array_to_unit_rgb(
    img: np.ndarray, channel_order: str = 'bgr', where: str = 'RestoreImage'
):
    """One ``H x W [x C]`` numpy image -> ``(rgb, meta)``: a ``(3, H, W)``
    float32 RGB tensor in [0, 1] and what :func:`unit_rgb_to_array` needs to
    give a restored image the input's shape, dtype, range and channel order.

    ``uint8`` (0-255), ``uint16`` (0-65535) and float images in 0-255 (mmcv's
    ``to_float32``) are accepted; gray images are repeated to RGB, an alpha
    channel is set aside.  ``channel_order``: the input's, ``'bgr'`` (cv2,
    mmcv) or ``'rgb'``."""
    import torch

    if not isinstance(img, np.ndarray):
        raise TypeError(
            f'{where}: expected a numpy image, got {type(img).__name__}'
        )
    if (
        img.ndim not in (2, 3)
        or (img.ndim == 3 and img.shape[2] not in (1, 3, 4))
        or min(img.shape[:2]) < 1
    ):
        raise ValueError(
            f'{where}: expected an H x W, H x W x 1, 3 or 4 image, got shape '
            f'{img.shape} ({img.dtype})'
        )
    dtype = img.dtype
    if dtype == np.uint8:
        peak = 255.0
    elif dtype == np.uint16:
        peak = 65535.0
    elif dtype in (np.float16, np.float32, np.float64):
        peak = 255.0  # mmcv's float pipelines keep the 0-255 range
    else:
        raise TypeError(
            f'{where}: unsupported image dtype {dtype} (shape {img.shape}); '
            'use uint8, uint16 or '
            'float16/32/64 in 0-255'
        )
    if dtype.kind == 'f' and not np.isfinite(img).all():
        raise ValueError(
            f'{where}: the image (shape {img.shape}, {dtype}) has NaN or Inf '
            'values'
        )
    # floats: clip in their own dtype first, so that finite values beyond
    # float32's range do not become Inf
    x = (np.clip(img, 0, peak) if dtype.kind == 'f' else img).astype(
        np.float32
    )
    gray = x.ndim == 2 or x.shape[2] == 1
    # as it was, bit for bit
    alpha = (
        img[..., 3:].copy() if (img.ndim == 3 and img.shape[2] == 4) else None
    )
    rgb = (
        np.repeat(x.reshape(x.shape[0], x.shape[1], 1), 3, axis=2)
        if gray
        else x[..., :3]
    )
    bgr = channel_order == 'bgr' and not gray
    if bgr:
        rgb = rgb[..., ::-1]
    t = torch.from_numpy(
        np.ascontiguousarray(rgb.transpose(2, 0, 1)) / peak
    ).clamp_(0, 1)
    return t, dict(
        dtype=dtype, peak=peak, gray=gray, ndim=img.ndim, alpha=alpha, bgr=bgr
    )


def unit_rgb_to_array(out, meta: dict) -> np.ndarray:
    """A restored ``(3, H, W)`` RGB tensor in [0, 1] -> a numpy image like the
    one :func:`array_to_unit_rgb` read (``meta``): same shape, dtype, range,
    channel order, alpha channel."""
    out = out.float().cpu().numpy().transpose(1, 2, 0) * meta['peak']
    if meta['bgr']:
        out = out[..., ::-1]
    if meta['gray']:
        out = out.mean(axis=2, keepdims=meta['ndim'] == 3)
    if np.issubdtype(meta['dtype'], np.integer):
        out = np.clip(np.rint(out), 0, meta['peak'])
    out = out.astype(meta['dtype'])
    if not meta['gray'] and meta['alpha'] is not None:
        out = np.concatenate(
            [out, np.asarray(meta['alpha'], meta['dtype'])], axis=2
        )
    return np.ascontiguousarray(out)


@TRANSFORMS.register_module()
class RestoreImage(BaseTransform):
    """Restore the image under ``keys`` with a UniRestore task prompt.

    Args:
        restorer: a UniRestore config (``dict(preset='tiny')``; ``type``
            optional) or a
            :meth:`~unirestore_mm.models.UniRestore.save_pretrained` folder.
        checkpoint: restorer weights (``.safetensors``, a folder, or a
            checkpoint of ``UniRestoreModel`` or of a recognizer around
            ``RestoredBackbone``).
        task: the task prompt (``'ir'`` for people, ``'cls'``, ``'seg'``, or
            any trained one).
        num_steps: DDIM steps (1-4).
        device: where the restorer runs (``'cpu'``, ``'cuda'``, ``'cuda:1'``).
        min_size: short-side policy of :meth:`UniRestore.restore`
            (``'default'``: the preset's).
        seed: seed of the sampling noise (a fixed seed restores an image the
            same way every time); ``None`` for fresh noise.
        channel_order: ``'bgr'`` (mmcv's loading) or ``'rgb'``.
        keys: image keys to restore.
        lazy: build the restorer on the first image (default) rather than in
            ``__init__``.
        tiling, tile_size, tile_overlap, tile_threshold: tiled restoration of
            large images, as in
            :meth:`UniRestore.restore <unirestore_mm.models.UniRestore.restore>`:
            ``'auto'`` (default) restores an image whose scaled, padded side
            exceeds ``tile_threshold`` in overlapping tiles of at most
            ``tile_size`` px blended smoothly (bounded memory), ``True``
            always, ``False`` never; ``None`` settings take the restorer
            preset's (see :mod:`unirestore_mm.models.tiling`).
        dtype: precision of the restorer: ``'auto'`` (default: float32 on the
            CPU, bf16 for an sd-turbo-sized restorer on a CPU with native bf16,
            bf16/fp16 on CUDA, see :mod:`unirestore_mm.models.precision`),
            ``'fp32'``, ``'bf16'`` or ``'fp16'``.  The image keeps its own
            dtype whatever this is.
        memory_format: layout of the restorer's convolutions: ``'auto'``
            (default: channels-last on the CPU, measured faster; contiguous on
            CUDA), ``'channels_last'`` or ``'contiguous'`` (see
            :mod:`unirestore_mm.models.precision`).
        batch_size: images per restorer call in :meth:`restore_arrays`
            (same-size images only).
        allow_random_weights: run a restorer without trained weights (a config
            dict and no ``checkpoint``: random CFRM/Controller/TFAs, which only
            degrade images), e.g. for timing.  Without it such a transform is
            refused at construction with
            :class:`~unirestore_mm.models.weights_guard.RandomWeightsError`.

    Images keep their shape, dtype and range: ``uint8`` (0-255), ``uint16``
    (0-65535), floats in 0-255 (mmcv's ``to_float32``).  Gray images are
    restored as RGB and turned back to gray; an alpha channel is kept.
    ``results['restoration']`` records the task and steps.
    """

    def __init__(
        self,
        restorer: Union[dict, str] = dict(preset='tiny'),
        checkpoint: Optional[str] = None,
        task: str = 'ir',
        num_steps: int = 1,
        device: str = 'cpu',
        min_size: Union[int, None, str] = 'default',
        seed: Optional[int] = 0,
        channel_order: str = 'bgr',
        keys: Sequence[str] = ('img',),
        tiling: Union[str, bool] = 'auto',
        tile_size: Optional[int] = None,
        tile_overlap: Optional[int] = None,
        tile_threshold: Optional[int] = None,
        lazy: bool = True,
        allow_random_weights: bool = False,
        dtype: str = 'auto',
        batch_size: int = 8,
        memory_format: str = 'auto',
    ):
        if not isinstance(restorer, (dict, str)):
            raise TypeError(
                'restorer must be a config dict or a save_pretrained folder, '
                'got '
                f'{type(restorer).__name__}'
            )
        if channel_order not in ('bgr', 'rgb'):
            raise ValueError(
                f"channel_order must be 'bgr' or 'rgb', got {channel_order!r}"
            )
        if not isinstance(num_steps, int) or not 1 <= num_steps <= 4:
            raise ValueError(
                f'num_steps must be an int in 1..4, got {num_steps!r}'
            )
        if (
            not isinstance(batch_size, int)
            or isinstance(batch_size, bool)
            or batch_size < 1
        ):
            raise ValueError(
                f'batch_size must be a positive int, got {batch_size!r}'
            )
        from unirestore_mm.models.precision import (
            resolve_dtype,
            resolve_memory_format,
        )

        # a bad value fails here, naming the argument
        resolve_dtype(dtype, 'cpu', name='RestoreImage: dtype')
        resolve_memory_format(
            memory_format, 'cpu', name='RestoreImage: memory_format'
        )
        from unirestore_mm.models.weights_guard import require_trained_weights

        require_trained_weights(
            restorer, checkpoint, allow_random_weights, where='RestoreImage'
        )
        self.allow_random_weights = bool(allow_random_weights)
        self.restorer = copy.deepcopy(restorer)
        self.checkpoint, self.task, self.num_steps = (
            checkpoint,
            task,
            num_steps,
        )
        self.device, self.min_size, self.seed = str(device), min_size, seed
        self.channel_order = channel_order
        from unirestore_mm.models.tiling import check_tiling_args

        # the rest: in .model
        self.tiling = check_tiling_args(
            tiling, tile_size, tile_overlap, tile_threshold
        )
        self.dtype, self.batch_size = dtype, batch_size
        self.memory_format = memory_format
        self.keys = [keys] if isinstance(keys, str) else list(keys)
        self._model = None
        if not lazy:
            # build now: bad configs, checkpoints and tasks fail here
            self.model

    # -- the model, once per process ------------------------------------------
    @property
    def model(self):
        if self._model is None:
            from unirestore_mm.models.precision import (
                resolve_dtype,
                resolve_memory_format,
            )

            # 'auto' depends on the restorer (its size) as well as the device:
            # a cache entry per spelling
            key = _cache_key(
                self.restorer,
                self.checkpoint,
                self.device,
                str(self.dtype),
                str(self.memory_format),
            )
            with _CACHE_LOCK:
                model = _CACHE.get(key)
                if model is None:
                    from unirestore_mm.models.restorer_model import (
                        build_restorer,
                    )

                    model = build_restorer(self.restorer, self.checkpoint).to(
                        self.device
                    )
                    model = model.to(
                        resolve_dtype(
                            self.dtype,
                            self.device,
                            name='RestoreImage: dtype',
                            model=model,
                        ),
                        memory_format=resolve_memory_format(
                            self.memory_format,
                            self.device,
                            name='RestoreImage: memory_format',
                        ),
                    ).eval()
                    _CACHE[key] = model
            # unknown task: ValueError listing the known ones
            model.prompts[self.task]
            # e.g. a tile_size that is no multiple of the size divisor
            model.tile_settings(**self.tiling)
            self._model = model
        return self._model

    def __getstate__(self):
        state = self.__dict__.copy()
        state['_model'] = None
        return state

    # -- the transform --------------------------------------------------------
    def restore_array(self, img: np.ndarray) -> np.ndarray:
        """Restore one ``H x W [x C]`` image, keeping its shape, dtype, range
        and channel order."""
        t, meta = array_to_unit_rgb(
            img, self.channel_order, where='RestoreImage'
        )
        model = self.model
        out = model.restore(
            t.to(self.device),
            task=self.task,
            num_steps=self.num_steps,
            min_size=self.min_size,
            seed=self.seed,
            **self.tiling,
        )
        return unit_rgb_to_array(out, meta)

    def restore_arrays(self, imgs: Sequence[np.ndarray]) -> List[np.ndarray]:
        """Restore a list of images in batches (same-size images together, at
        most :attr:`batch_size` a call).

        Each image gets its own generator seeded with :attr:`seed`, so the
        result equals :meth:`restore_array` of that image alone up to the
        summation order of batched kernels (measured: about 1e-6 in [0, 1] on
        the CPU for float32, see ``tests/test_models/test_precision.py``; after
        rounding to uint8, equal or 1 apart).
        """
        import torch

        converted = [
            array_to_unit_rgb(img, self.channel_order, where='RestoreImage')
            for img in imgs
        ]
        model = self.model
        groups: Dict[Tuple[int, int], List[int]] = {}
        for i, (t, _) in enumerate(converted):
            groups.setdefault(tuple(t.shape[-2:]), []).append(i)
        out: List[Optional[np.ndarray]] = [None] * len(converted)
        for idx in groups.values():
            for start in range(0, len(idx), self.batch_size):
                chunk = idx[start : start + self.batch_size]
                x = torch.stack([converted[i][0] for i in chunk]).to(
                    self.device
                )
                generator = None
                if self.seed is not None:
                    generator = [
                        torch.Generator(device=self.device).manual_seed(
                            int(self.seed)
                        )
                        for _ in chunk
                    ]
                y = model.restore(
                    x,
                    task=self.task,
                    num_steps=self.num_steps,
                    min_size=self.min_size,
                    generator=generator,
                    **self.tiling,
                )
                for i, yi in zip(chunk, y):
                    out[i] = unit_rgb_to_array(yi, converted[i][1])
        return out

    def transform(self, results: dict) -> dict:
        for key in self.keys:
            if key not in results:
                raise KeyError(
                    f'RestoreImage: results has no key {key!r} (keys: '
                    f'{sorted(results)})'
                )
            results[key] = self.restore_array(results[key])
        results['restoration'] = dict(task=self.task, num_steps=self.num_steps)
        return results

    def __repr__(self) -> str:
        return (
            f'{type(self).__name__}(restorer={self.restorer!r}, '
            f'checkpoint={self.checkpoint!r}, task={self.task!r}, '
            f'num_steps={self.num_steps}, device={self.device!r}, '
            f'min_size={self.min_size!r}, seed={self.seed}, '
            f'channel_order={self.channel_order!r}, keys={self.keys}, '
            f'allow_random_weights={self.allow_random_weights}, '
            f'dtype={self.dtype!r}, batch_size={self.batch_size}, '
            f'memory_format={self.memory_format!r})'
        )
