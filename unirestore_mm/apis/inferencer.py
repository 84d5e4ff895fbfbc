"""``UniRestoreInferencer``: restore files, folders, arrays and tensors with
UniRestore, MMEngine-style.

Built on :class:`mmengine.infer.BaseInferencer` the way mmpretrain's
``ImageClassificationInferencer`` and mmseg's ``MMSegInferencer`` are
(``preprocess`` -> ``forward`` -> ``visualize`` -> ``postprocess``, a progress
bar, ``out_dir`` with predictions and visualisations)::

    from unirestore_mm.apis import UniRestoreInferencer

    inferencer = UniRestoreInferencer('work_dirs/unirestore_pretrained', task='ir', device='cuda')
    result = inferencer('foggy_photos/', batch_size=4, out_dir='restored/')
    result['predictions'][0]            # H x W x 3 BGR uint8, like cv2.imread of the first file

    inferencer = UniRestoreInferencer(dict(preset='sd-turbo'), prior='/models/sd-turbo',
                                      checkpoint='work_dirs/stage2/unirestore.safetensors', task='cls')
    restored = inferencer(torch_batch)['predictions']   # (3, H, W) RGB floats in [0, 1], one per image

Inputs, each one or a list of them:

* a file path, or a folder (searched recursively for images, in sorted order);
* a numpy image as ``cv2.imread`` gives it: ``H x W x 3`` **BGR** ``uint8``
  (also gray ``H x W``, BGRA, ``uint16`` and mmcv's float 0-255; the prediction
  keeps the array's shape, dtype, range and channel order);
* a torch tensor, ``3 x H x W`` or a batch ``B x 3 x H x W``: **RGB** floats in
  [0, 1] (a batch counts as B images; each prediction is a ``3 x H x W`` tensor
  of the input's dtype on the input's device).

File paths restore to what ``cv2.imread(path, cv2.IMREAD_UNCHANGED)`` reads
(BGR, dtype kept).

Noise: image ``i`` of the call (its position in the flattened, sorted input
list) is sampled from its own generator seeded with ``seed + i``, so its result
does not depend on the batch it falls in nor on ``batch_size`` (the batched
arithmetic may still differ in the last float bits, i.e. by one 8-bit level on
a rare pixel).  Images of the same size are restored together, up to
``batch_size`` at a time.
"""  # noqa: E501

import os
import os.path as osp
import sys
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from mmengine.config import ConfigDict
from mmengine.infer import BaseInferencer
from mmengine.structures import BaseDataElement

# the package's one list of image suffixes
from ..datasets.paired import IMG_EXTENSIONS

__all__ = [
    'IMG_EXTENSIONS',
    'UniRestoreInferencer',
    'collect_inputs',
    'output_name',
]

# Loaded images waiting for a batch of their size, in multiples of batch_size:
# bounds the memory of a folder of many different sizes while still batching
# same-size images that are not next to each other.
_BUFFER_BATCHES = 4


# -----------------------------------------------------------------------------
# Inputs
# -----------------------------------------------------------------------------
def _find_images(folder: str) -> List[Tuple[str, str]]:
    found = []
    for dirpath, _, files in os.walk(folder, followlinks=True):
        for f in files:
            if f.lower().endswith(IMG_EXTENSIONS):
                p = osp.join(dirpath, f)
                found.append((p, osp.relpath(p, folder)))
    return sorted(found, key=lambda pr: pr[1])


def collect_inputs(inputs: Any) -> List[Dict[str, Any]]:
    """Flatten ``inputs`` into one item per image, in order:
    ``dict(index, kind, source, name, img_path)``.

    ``kind`` is ``'path'``, ``'array'`` or ``'tensor'``; ``name`` is the
    output's relative path: the path below the folder given, the file's name,
    or ``'%08d.png' % index`` for arrays and tensors.  Raises
    ``FileNotFoundError`` for a path that does not exist or a folder without
    images, ``TypeError``/``ValueError`` for anything else that is not an
    image."""
    items: List[Dict[str, Any]] = []

    def add(kind, source, name=None, img_path=None):
        index = len(items)
        items.append(
            dict(
                index=index,
                kind=kind,
                source=source,
                name=name or f'{index:08d}.png',
                img_path=img_path,
            )
        )

    def visit(obj):
        if isinstance(obj, (str, os.PathLike)):
            path = os.fspath(obj)
            if osp.isdir(path):
                found = _find_images(path)
                if not found:
                    raise FileNotFoundError(
                        f'no images ({", ".join(IMG_EXTENSIONS)}) under {path}'
                    )
                for p, rel in found:
                    add('path', p, rel, p)
            elif osp.isfile(path):
                add('path', path, osp.basename(path), path)
            else:
                raise FileNotFoundError(f'no such file or folder: {path}')
        elif isinstance(obj, np.ndarray):
            if obj.ndim not in (2, 3):
                raise ValueError(
                    'numpy inputs are single H x W x C images (BGR, as cv2 '
                    f'reads them); got shape {obj.shape} (pass a list for '
                    'several images)'
                )
            add('array', obj)
        elif isinstance(obj, torch.Tensor):
            if obj.dim() == 3:
                add('tensor', obj)
            elif obj.dim() == 4:
                for t in obj:
                    add('tensor', t)
            else:
                raise ValueError(
                    'tensor inputs are 3 x H x W or B x 3 x H x W RGB '
                    f'floats in [0, 1]; got shape {tuple(obj.shape)}'
                )
        elif isinstance(obj, (list, tuple)):
            for o in obj:
                visit(o)
        else:
            raise TypeError(
                f'cannot restore a {type(obj).__name__}: give image paths, '
                'folders, numpy images '
                '(H x W x 3 BGR) or tensors (3 x H x W RGB in [0, 1]), or a '
                'list of them'
            )

    visit(inputs)
    if not items:
        raise ValueError('no inputs given')
    return items


def output_name(name: str, suffix: str = '', ext: Optional[str] = None) -> str:
    """``name`` with ``suffix`` added before the extension and the extension
    replaced by ``ext`` if given."""
    stem, old = osp.splitext(name)
    if ext:
        old = ext if ext.startswith('.') else '.' + ext
    return stem + suffix + old


def _check_unique(
    items: Sequence[Dict[str, Any]], names: Sequence[str], out_dir: str
) -> None:
    seen: Dict[str, Dict[str, Any]] = {}
    for item, name in zip(items, names):
        key = osp.normcase(osp.normpath(name))
        if key in seen:
            a, b = (_label(seen[key]), _label(item))
            raise ValueError(
                f'{a} and {b} would both be written to '
                f'{osp.join(out_dir, name)}; restore them in '
                'separate runs or to different output folders'
            )
        seen[key] = item


def _label(item: Dict[str, Any]) -> str:
    return (
        item['img_path']
        if item['kind'] == 'path'
        else f'input #{item["index"]} ({item["kind"]})'
    )


def _one_line(err: BaseException) -> str:
    text = ' '.join(str(err).split())
    return text or type(err).__name__


# -----------------------------------------------------------------------------
# The inferencer
# -----------------------------------------------------------------------------
class UniRestoreInferencer(BaseInferencer):
    """Restore images with a :class:`~unirestore_mm.models.UniRestore`.

    Args:
        restorer: a ``UniRestore.save_pretrained`` folder; or a config
            (``dict(preset='sd-turbo')``,
            ``dict(type='unirestore_mm.UniRestore', preset='tiny', tasks=[...])``)
            or a preset name (``'tiny'``, ``'sd-turbo'``) together with
            ``checkpoint``; or a built ``UniRestore`` (used as is).
        checkpoint: restorer weights: ``.safetensors``, a ``save_pretrained``
            folder, a ``.pth`` of this package.
        prior: a local diffusers folder of the SD-Turbo prior (replaces the
            config's or the saved folder's prior).
        device: ``'cpu'``, ``'cuda'``, ``'cuda:1'``; ``None``: the available
            accelerator, else the CPU.
        task: the task prompt (``'ir'`` for people, ``'cls'``, ``'seg'``, or
            any trained one).
        num_steps: DDIM steps (1-4).
        seed: image ``i`` of a call is sampled with the seed ``seed + i``;
            ``None`` for fresh noise.
        min_size: short-side policy of :meth:`UniRestore.restore`
            (``'default'``: the preset's; ``None``: never upscale; an int).
        allow_random_weights: run a config/preset without ``checkpoint``
            (random CFRM, Controller and TFAs, which only degrade images), e.g.
            for timing; otherwise it is refused with
            :class:`~unirestore_mm.models.weights_guard.RandomWeightsError`.
        show_progress: show a progress bar (mmengine's ``ProgressBar``) while
            restoring.
        tiling, tile_size, tile_overlap, tile_threshold: tiled restoration of
            large images, as in
            :meth:`UniRestore.restore <unirestore_mm.models.UniRestore.restore>`:
            ``'auto'`` (default) restores an image whose scaled, padded side
            exceeds ``tile_threshold`` in overlapping tiles of at most
            ``tile_size`` px blended smoothly (bounded memory), ``True``
            always, ``False`` never; ``None`` settings take the restorer
            preset's (see :mod:`unirestore_mm.models.tiling`).
        dtype: precision of the restorer: ``'auto'`` (the faster one measured
            per device and model: on the CPU float32, or bf16 for an
            sd-turbo-sized restorer where oneDNN has native bf16; bf16/fp16 on
            CUDA; see :mod:`unirestore_mm.models.precision`), ``'fp32'``,
            ``'bf16'``, ``'fp16'``; ``None`` (default): ``'auto'`` for a
            restorer built here, a given ``UniRestore`` keeps its own.
        memory_format: layout of the restorer's convolutions: ``'auto'``
            (channels-last on the CPU, measured faster; contiguous on CUDA),
            ``'channels_last'``, ``'contiguous'``; ``None`` (default):
            ``'auto'`` for a restorer built here, a given ``UniRestore`` keeps
            its own.
    """

    preprocess_kwargs: set = {'skip_existing', 'on_error'}
    forward_kwargs: set = set()
    visualize_kwargs: set = {
        'show',
        'wait_time',
        'return_vis',
        'no_save_vis',
        'vis_out_dir',
    }
    postprocess_kwargs: set = {'no_save_pred', 'pred_out_dir', 'suffix', 'ext'}

    def __init__(
        self,
        restorer: Union[str, dict, Any],
        checkpoint: Optional[str] = None,
        prior: Optional[str] = None,
        device: Optional[str] = None,
        task: str = 'ir',
        num_steps: int = 1,
        seed: Optional[int] = 0,
        min_size: Union[int, None, str] = 'default',
        tiling: Union[str, bool] = 'auto',
        tile_size: Optional[int] = None,
        tile_overlap: Optional[int] = None,
        tile_threshold: Optional[int] = None,
        allow_random_weights: bool = False,
        show_progress: bool = True,
        dtype: Optional[str] = None,
        memory_format: Optional[str] = None,
    ) -> None:
        from mmengine.device import get_device

        from ..models.weights_guard import require_trained_weights

        if (
            not isinstance(num_steps, int)
            or isinstance(num_steps, bool)
            or not 1 <= num_steps <= 4
        ):
            raise ValueError(
                f'num_steps must be an int in 1..4, got {num_steps!r}'
            )
        if seed is not None and (
            not isinstance(seed, (int, np.integer)) or isinstance(seed, bool)
        ):
            raise TypeError(f'seed must be an int or None, got {seed!r}')
        if not (
            min_size in ('default', None)
            or (isinstance(min_size, int) and min_size >= 1)
        ):
            raise ValueError(
                "min_size must be 'default', None or a positive int, got "
                f"{min_size!r}"
            )
        from ..models.precision import (
            memory_format_name,
            resolve_dtype,
            resolve_memory_format,
        )

        # a bad value fails before any build
        if dtype is not None:
            resolve_dtype(dtype, 'cpu', name='UniRestoreInferencer: dtype')
        if memory_format is not None:
            resolve_memory_format(
                memory_format,
                'cpu',
                name='UniRestoreInferencer: memory_format',
            )
        require_trained_weights(
            restorer,
            checkpoint,
            allow_random_weights,
            where='UniRestoreInferencer',
        )
        self.scope = 'unirestore_mm'
        self.device = torch.device(
            device if device is not None else get_device()
        )
        from ..models.unirestore import UniRestore

        given = isinstance(restorer, UniRestore)
        self.model = self._init_model(restorer, checkpoint, prior, self.device)
        if dtype is not None or not given:
            self.model.to(
                resolve_dtype(
                    dtype or 'auto',
                    self.device,
                    name='UniRestoreInferencer: dtype',
                    model=self.model,
                )
            )
        if memory_format is not None or not given:
            self.model.to(
                memory_format=resolve_memory_format(
                    memory_format or 'auto',
                    self.device,
                    name='UniRestoreInferencer: memory_format',
                )
            )
        # unknown task: ValueError listing the known ones
        self.model.prompts[task]
        self.task, self.num_steps, self.seed, self.min_size = (
            task,
            num_steps,
            seed,
            min_size,
        )
        self.tiling = dict(
            tiling=tiling,
            tile_size=tile_size,
            tile_overlap=tile_overlap,
            tile_threshold=tile_threshold,
        )
        # a bad tiling value: ValueError naming it, before any image
        self.model.tile_settings(**self.tiling)
        self.cfg = ConfigDict(
            restorer=restorer
            if isinstance(restorer, (str, dict))
            else type(restorer).__name__,
            checkpoint=checkpoint,
            prior=prior,
            task=task,
            num_steps=num_steps,
            seed=seed,
            min_size=min_size,
            dtype=str(self.model.dtype).replace('torch.', ''),
            memory_format=memory_format_name(self.model.memory_format),
        )
        self.pipeline = self._init_pipeline(self.cfg)
        self.collate_fn = self._init_collate(self.cfg)
        self.visualizer = self._init_visualizer(self.cfg)
        self.show_progress = show_progress

    # -- building -------------------------------------------------------------
    @staticmethod
    def _init_model(restorer, checkpoint, prior, device):  # type: ignore[override]
        from ..models import UniRestore
        from ..models.presets import PRESETS
        from ..models.restorer_model import (
            build_restorer,
            load_restorer_weights,
        )
        from ..models.unirestore import CONFIG_NAME

        if isinstance(restorer, UniRestore):
            if prior is not None:
                raise ValueError(
                    'prior= cannot replace the prior of an already built '
                    'UniRestore'
                )
            model = restorer
            if checkpoint:
                load_restorer_weights(model, checkpoint)
        elif (
            isinstance(restorer, (str, os.PathLike))
            and os.fspath(restorer) not in PRESETS
        ):
            folder = os.fspath(restorer)
            if not osp.isfile(osp.join(folder, CONFIG_NAME)):
                raise FileNotFoundError(
                    f'restorer {folder!r} is neither a '
                    f'UniRestore.save_pretrained folder (with {CONFIG_NAME}) '
                    f'nor a preset ({", ".join(PRESETS)})'
                )
            model = (
                UniRestore.from_pretrained(folder, prior=prior)
                if prior
                else build_restorer(folder)
            )
            if checkpoint:
                load_restorer_weights(model, checkpoint)
        elif isinstance(restorer, (str, dict)):
            cfg = (
                dict(preset=restorer)
                if isinstance(restorer, str)
                else dict(restorer)
            )
            if prior:
                cfg['prior'] = dict(pretrained=prior)
            model = build_restorer(cfg, checkpoint)
        else:
            raise TypeError(
                'restorer must be a save_pretrained folder, a config dict, a '
                'preset name or a UniRestore; '
                f'got {type(restorer).__name__}'
            )
        return model.to(device).eval()

    def _init_pipeline(self, cfg) -> Any:
        """The per-image loader: an input item -> a data sample holding
        ``input_img`` (RGB floats in [0, 1])."""
        return self._load

    def _init_collate(self, cfg) -> Any:
        return list

    def _init_visualizer(self, cfg) -> Any:
        from ..visualization import RestorationVisualizer

        return RestorationVisualizer(name=f'unirestore_inferencer_{id(self)}')

    # -- BaseInferencer steps -------------------------------------------------
    def _inputs_to_list(self, inputs: Any) -> List[Dict[str, Any]]:
        """Paths, folders (recursive, sorted), arrays, tensors (a batch is B
        images) -> one item per image."""
        return collect_inputs(inputs)

    def _load(self, item: Dict[str, Any]) -> BaseDataElement:
        from ..datasets.transforms.restore_image import array_to_unit_rgb
        from ..datasets.transforms.transforms import read_image
        from ..models.image_ops import check_images

        meta = dict(
            index=item['index'],
            name=item['name'],
            img_path=item['img_path'],
            input_kind=item['kind'],
            seed=None if self.seed is None else int(self.seed) + item['index'],
            status='pending',
        )
        kind, src = item['kind'], item['source']
        conv = None
        if kind == 'tensor':
            x = (
                check_images(src, name=f'input #{item["index"]}')[0]
                .detach()
                .to('cpu', torch.float32)
            )
        else:
            img = (
                read_image(src, color_type='unchanged')
                if kind == 'path'
                else src
            )
            if kind == 'path' and img.dtype not in (np.uint8, np.uint16):
                raise ValueError(
                    f'unsupported image dtype {img.dtype} (8- or 16-bit '
                    'images)'
                )
            x, conv = array_to_unit_rgb(
                img, 'bgr', where='UniRestoreInferencer'
            )
            x = x.float()
        meta['ori_shape'] = tuple(x.shape[-2:])
        if kind == 'tensor':
            meta.update(tensor_dtype=src.dtype, tensor_device=src.device)
        else:
            # what unit_rgb_to_array needs to give the array convention back
            meta['conversion'] = conv
        sample = BaseDataElement(metainfo=meta)
        sample.input_img = x
        return sample

    def preprocess(
        self,
        inputs: List[Dict[str, Any]],
        batch_size: int = 1,
        skip_existing: Optional[List[str]] = None,
        on_error: str = 'raise',
    ) -> Iterator[List[BaseDataElement]]:
        """Load the items and yield batches of same-size images (at most
        ``batch_size``), plus single-sample "batches" of items skipped
        (``skip_existing``: their output paths, an existing one skips the item)
        or that failed to load (``on_error='skip'``)."""
        pending: Dict[Tuple[int, int], List[BaseDataElement]] = {}
        buffered = 0
        for i, item in enumerate(inputs):
            if skip_existing is not None and osp.exists(skip_existing[i]):
                yield [
                    self._record(item, 'skipped', f'{skip_existing[i]} exists')
                ]
                continue
            try:
                sample = self.pipeline(item)
            # an unreadable input is reported and skipped
            except Exception as e:  # noqa: BLE001
                if on_error == 'raise':
                    raise
                yield [self._record(item, 'failed', _one_line(e))]
                continue
            key = tuple(sample.input_img.shape[-2:])
            pending.setdefault(key, []).append(sample)
            buffered += 1
            if len(pending[key]) >= batch_size:
                batch = pending.pop(key)
            elif buffered >= _BUFFER_BATCHES * batch_size:
                batch = pending.pop(
                    max(pending, key=lambda k: len(pending[k]))
                )
            else:
                continue
            buffered -= len(batch)
            yield self.collate_fn(batch)
        for key in sorted(pending, key=lambda k: pending[k][0].index):
            yield self.collate_fn(pending[key])

    @staticmethod
    def _record(
        item: Dict[str, Any], status: str, error: Optional[str] = None
    ) -> BaseDataElement:
        return BaseDataElement(
            metainfo=dict(
                index=item['index'],
                name=item['name'],
                img_path=item['img_path'],
                input_kind=item['kind'],
                status=status,
                error=error,
            )
        )

    @torch.no_grad()
    def forward(
        self, inputs: List[BaseDataElement], on_error: str = 'raise'
    ) -> List[BaseDataElement]:
        """Restore the pending samples of one same-size batch; each gets
        ``pred_img`` (RGB floats in [0, 1], CPU)."""
        todo = [s for s in inputs if s.status == 'pending']
        if not todo:
            return inputs
        x = torch.stack([s.input_img for s in todo]).to(self.device)
        generator = None
        if self.seed is not None:
            generator = [
                torch.Generator(device=self.device).manual_seed(s.seed)
                for s in todo
            ]
        try:
            out = self.model.restore(
                x,
                task=self.task,
                num_steps=self.num_steps,
                min_size=self.min_size,
                generator=generator,
                **self.tiling,
            )
        # e.g. out of memory on one huge image
        except Exception as e:  # noqa: BLE001
            if on_error == 'raise':
                raise
            for s in todo:
                s.set_metainfo(dict(status='failed', error=_one_line(e)))
            return inputs
        for s, y in zip(todo, out.float().cpu()):
            s.pred_img = y
            s.set_metainfo(dict(status='restored'))
        return inputs

    def visualize(
        self,
        inputs: List[BaseDataElement],
        preds: List[BaseDataElement],
        show: bool = False,
        wait_time: float = 0,
        return_vis: bool = False,
        no_save_vis: bool = True,
        vis_out_dir: str = '',
    ) -> Optional[List[Optional[np.ndarray]]]:
        """``input | restored`` side by side (RGB ``uint8``) through
        :class:`RestorationVisualizer`; shown with ``show``, returned with
        ``return_vis``, kept on the samples (``vis``) for :meth:`postprocess`
        to write."""
        save = bool(vis_out_dir) and not no_save_vis
        if not (show or return_vis or save):
            return None
        vis = []
        for s in preds:
            if s.status != 'restored':
                vis.append(None)
                continue
            drawn = self.visualizer.add_datasample(
                s.name,
                image=s.input_img,
                data_sample=s,
                draw_gt=False,
                draw_pred=True,
                show=show,
                wait_time=wait_time,
            )
            vis.append(drawn)
        return vis

    def postprocess(
        self,
        preds: List[BaseDataElement],
        visualization: Optional[List[Optional[np.ndarray]]],
        return_datasamples: bool = False,
        no_save_pred: bool = True,
        pred_out_dir: str = '',
        vis_out_dir: str = '',
        no_save_vis: bool = True,
        suffix: str = '',
        ext: Optional[str] = None,
        on_error: str = 'raise',
    ) -> List[BaseDataElement]:
        """Turn each restored sample's ``pred_img`` into the input's convention
        (``prediction``), write it to ``pred_out_dir`` and its visualisation to
        ``vis_out_dir`` (atomically: a temporary file, then a rename)."""
        from ..utils.fileio import atomic_imwrite

        for i, s in enumerate(preds):
            if s.status != 'restored':
                continue
            vis = visualization[i] if visualization is not None else None
            if vis is not None:
                s.vis = vis
            s.prediction = self._to_input_convention(s)
            name = output_name(s.name, suffix, ext)
            writes = []
            if pred_out_dir and not no_save_pred:
                writes.append(
                    (
                        'out_file',
                        osp.join(pred_out_dir, name),
                        self._to_bgr_file(s),
                    )
                )
            if vis_out_dir and not no_save_vis and vis is not None:
                writes.append(
                    (
                        'vis_file',
                        osp.join(vis_out_dir, name),
                        np.ascontiguousarray(vis[..., ::-1]),
                    )
                )
            try:
                for key, path, arr in writes:
                    atomic_imwrite(
                        arr, path, ext=osp.splitext(path)[1] or '.png'
                    )
                    s.set_metainfo({key: path})
            # a full disk or an unwritable folder fails this image only
            except Exception as e:  # noqa: BLE001
                if on_error == 'raise':
                    raise
                s.set_metainfo(dict(status='failed', error=_one_line(e)))
        return preds

    # -- conversions ----------------------------------------------------------
    @staticmethod
    def _to_input_convention(s: BaseDataElement):
        from ..datasets.transforms.restore_image import unit_rgb_to_array

        if s.input_kind == 'tensor':
            return s.pred_img.to(device=s.tensor_device, dtype=s.tensor_dtype)
        return unit_rgb_to_array(s.pred_img, s.conversion)

    @staticmethod
    def _to_bgr_file(s: BaseDataElement) -> np.ndarray:
        """What is written for the sample: its array prediction, or 8-bit BGR
        for tensor inputs."""
        if s.input_kind != 'tensor':
            return s.prediction
        rgb = (
            (s.pred_img.clamp(0, 1) * 255)
            .round()
            .to(torch.uint8)
            .permute(1, 2, 0)
            .numpy()
        )
        return np.ascontiguousarray(rgb[..., ::-1])

    # -- running --------------------------------------------------------------
    def iter_restore(
        self,
        inputs: Any,
        batch_size: int = 1,
        out_dir: str = '',
        pred_out_dir: str = 'restored',
        vis_out_dir: str = 'vis',
        no_save_pred: bool = False,
        no_save_vis: bool = False,
        show: bool = False,
        wait_time: float = 0,
        return_vis: bool = False,
        skip_existing: bool = False,
        on_error: str = 'raise',
        suffix: str = '',
        ext: Optional[str] = None,
    ) -> Iterator[BaseDataElement]:
        """Restore ``inputs`` batch by batch, yielding one data sample per
        input as its batch finishes (not in input order: use ``sample.index``).
        Nothing is kept, so a folder of any size streams through.

        Each sample's metainfo has ``index``, ``name`` (output path below the
        output folders), ``img_path``, ``input_kind``, ``seed``, ``status``
        (``'restored'``, ``'skipped'`` or ``'failed'``), ``error`` and, when
        written, ``out_file``/``vis_file``; restored ones hold ``input_img``
        and ``pred_img`` (RGB floats in [0, 1], on the CPU), ``prediction``
        (the restored image in the input's convention) and, when drawn,
        ``vis``.  See :meth:`__call__` for the arguments; ``on_error='skip'``
        turns an unreadable input or a failed batch or write into a
        ``'failed'`` sample instead of an exception."""
        if (
            not isinstance(batch_size, int)
            or isinstance(batch_size, bool)
            or batch_size < 1
        ):
            raise ValueError(
                f'batch_size must be a positive int, got {batch_size!r}'
            )
        if on_error not in ('raise', 'skip'):
            raise ValueError(
                f"on_error must be 'raise' or 'skip', got {on_error!r}"
            )
        items = self._inputs_to_list(inputs)
        pred_dir = (
            osp.join(out_dir, pred_out_dir)
            if out_dir and not no_save_pred
            else ''
        )
        vis_dir = (
            osp.join(out_dir, vis_out_dir)
            if out_dir and not no_save_vis
            else ''
        )
        names = [output_name(it['name'], suffix, ext) for it in items]
        for folder in (pred_dir, vis_dir):
            if folder:
                _check_unique(items, names, folder)
        existing = None
        if skip_existing:
            if not pred_dir:
                raise ValueError(
                    'skip_existing needs out_dir (and the restored images '
                    'saved) to look for outputs'
                )
            existing = [osp.join(pred_dir, n) for n in names]
        bar = None
        if self.show_progress:
            from mmengine.utils import ProgressBar

            bar = ProgressBar(len(items), file=sys.stderr)
        for batch in self.preprocess(
            items,
            batch_size=batch_size,
            skip_existing=existing,
            on_error=on_error,
        ):
            preds = self.forward(batch, on_error=on_error)
            vis = self.visualize(
                batch,
                preds,
                show=show,
                wait_time=wait_time,
                return_vis=return_vis,
                no_save_vis=not vis_dir,
                vis_out_dir=vis_dir,
            )
            for s in self.postprocess(
                preds,
                vis,
                no_save_pred=not pred_dir,
                pred_out_dir=pred_dir,
                vis_out_dir=vis_dir,
                no_save_vis=not vis_dir,
                suffix=suffix,
                ext=ext,
                on_error=on_error,
            ):
                if bar is not None:
                    bar.update()
                yield s
        if bar is not None:
            sys.stderr.write('\n')

    def __call__(
        self,
        inputs: Any,
        batch_size: int = 1,
        out_dir: str = '',
        pred_out_dir: str = 'restored',
        vis_out_dir: str = 'vis',
        no_save_pred: bool = False,
        no_save_vis: bool = False,
        show: bool = False,
        wait_time: float = 0,
        return_vis: bool = False,
        return_datasamples: bool = False,
        skip_existing: bool = False,
        on_error: str = 'raise',
        suffix: str = '',
        ext: Optional[str] = None,
    ) -> Union[Dict[str, list], List[BaseDataElement]]:
        """Restore ``inputs`` (a path, a folder, a numpy image, a tensor, or a
        list of them; see the module).

        Args:
            batch_size: images of the same size restored together, at most this
                many.
            out_dir: when given, restored images go to
                ``out_dir/pred_out_dir/<name>`` (unless ``no_save_pred``) and
                ``input | restored`` pictures to ``out_dir/vis_out_dir/<name>``
                (unless ``no_save_vis``). ``<name>`` is the path below the
                folder given, the file name, or ``%08d.png`` (the input's
                index) for arrays and tensors; ``suffix`` is added before its
                extension, ``ext`` replaces it.
            show: show each ``input | restored`` picture in a window
                (``wait_time`` seconds; 0: until closed).
            return_vis: also return the pictures (RGB ``uint8``, twice the
                input's width).
            return_datasamples: return the data samples (see
                :meth:`iter_restore`) instead of the dict.
            skip_existing: leave out inputs whose restored file already exists
                in ``out_dir`` (continue an interrupted run; the others keep
                their seeds, which follow the input's index).
            on_error: ``'raise'`` (default) or ``'skip'``: an input that cannot
                be read, restored or written gets ``None`` (with
                ``return_datasamples``, a sample whose ``status`` is
                ``'failed'`` and ``error`` says why) and the others go on.

        Returns:
            ``dict(predictions=[...], visualization=[...])`` in input order:
            each restored image in its input's convention (numpy BGR like the
            file or array given; a ``3 x H x W`` tensor for tensor inputs);
            ``None`` for an input skipped or failed; ``visualization`` is empty
            unless ``return_vis``.
        """
        samples = sorted(
            self.iter_restore(
                inputs,
                batch_size=batch_size,
                out_dir=out_dir,
                pred_out_dir=pred_out_dir,
                vis_out_dir=vis_out_dir,
                no_save_pred=no_save_pred,
                no_save_vis=no_save_vis,
                show=show,
                wait_time=wait_time,
                return_vis=return_vis,
                skip_existing=skip_existing,
                on_error=on_error,
                suffix=suffix,
                ext=ext,
            ),
            key=lambda s: s.index,
        )
        if return_datasamples:
            return samples
        return dict(
            predictions=[s.get('prediction') for s in samples],
            visualization=[s.get('vis') for s in samples]
            if return_vis
            else [],
        )
