"""Paired restoration datasets and the task-dataset wrapper that adds
degradations.

* :class:`PairedImageDataset`: degraded (``img_path``) and clean (``gt_path``)
  images from two folders, from a text list of pairs, or from an mmengine-style
  JSON manifest (what ``tools/dataset_converters/make_benchmark_set.py``
  writes; labels and masks in it come along); or clean images only, degraded on
  the fly by a :class:`~unirestore_mm.datasets.transforms.RandomDegradation` in
  the pipeline.
* :class:`DegradedDataset`: wraps any dataset config (``mmpretrain.ImageNet``,
  ``mmpretrain.CUB``, ``mmseg.CityscapesDataset``, ...) whose own pipeline
  loads the image and its label or mask; its ``pipeline`` then degrades and
  packs, so each sample has the degraded image, the clean image and the label
  or mask.

Bad files: a sample whose file cannot be read is reported with its path and
either skipped (another index is taken, deterministically) or raised, by
``on_corrupt='skip' | 'raise'``.  Errors that are not about files (bugs) are
always raised, with the sample's paths added.
"""

import logging
import os
import os.path as osp
import re
from typing import Callable, Dict, List, Optional, Sequence, Union

import cv2
import numpy as np
from mmengine.dataset import BaseDataset, Compose
from mmengine.logging import print_log

from unirestore_mm.registry import DATASETS

from .transforms.transforms import CorruptImageError

IMG_EXTENSIONS = (
    '.png',
    '.jpg',
    '.jpeg',
    '.bmp',
    '.tif',
    '.tiff',
    '.webp',
    '.ppm',
    '.pgm',
)
PATH_KEYS = ('img_path', 'gt_path', 'seg_map_path', 'lq_path')


class CorruptSampleError(RuntimeError):
    """A sample could not be prepared; the message names the sample's files."""


# Exceptions that are about a file by their type: this package's
# CorruptImageError (undecodable, unreadable or mismatched images) and OSError
# with its subclasses (FileNotFoundError, IsADirectoryError, PermissionError,
# and PIL's UnidentifiedImageError).
FILE_ERRORS = (CorruptImageError, OSError)


def _probe_file(path: str) -> None:
    """Read and decode one of a sample's files; raise a :data:`FILE_ERRORS`
    exception naming it if it cannot be.

    Local paths are opened directly (so FileNotFoundError, IsADirectoryError,
    PermissionError come through as they are); URIs (``s3://...``) through
    mmengine's file backends.
    """
    path = os.fspath(path)
    if '://' in path:
        from mmengine.fileio import get

        data = get(path)
    else:
        with open(path, 'rb') as f:
            data = f.read()
    try:
        img = (
            cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
            if data
            else None
        )
    except cv2.error:
        img = None
    if img is None:
        raise CorruptImageError(
            f'cannot decode image file {path} ({len(data)} bytes)'
        )


def file_error(
    err: BaseException, paths: Dict[str, str]
) -> Optional[BaseException]:
    """The file error behind ``err``, or ``None`` when ``err`` is not about the
    sample's files (a bug).

    ``err`` is a file error by its type (:data:`FILE_ERRORS`).  Other
    libraries' loaders do not say so by type: mmcv's ``LoadImageFromFile``
    asserts (``AssertionError``), mmseg's ``LoadAnnotations`` calls a method of
    ``None`` (``AttributeError``), OpenCV raises ``cv2.error`` on an empty
    buffer.  For any other exception the sample's files (``paths``) are read
    again: the first one that cannot be read or decoded gives the file error;
    if they all can, ``err`` is a bug and ``None`` is returned.
    """
    if isinstance(err, FILE_ERRORS):
        return err
    for path in paths.values():
        if not isinstance(path, (str, os.PathLike)):
            continue
        try:
            _probe_file(path)
        except FILE_ERRORS as probe_err:
            return probe_err
    return None


def guarded_getitem(
    dataset,
    idx: int,
    prepare: Callable[[int], Optional[dict]],
    on_corrupt: str,
    max_refetch: int,
):
    """``prepare(idx)`` with corrupt-file handling; shared by the datasets
    below."""
    n = len(dataset)
    first = idx
    for attempt in range(max_refetch + 1):
        try:
            data = prepare(idx)
        # re-raised or reported below, always with paths
        except Exception as err:  # noqa: BLE001
            try:
                info = dataset.get_data_info(idx)
                paths = {k: info[k] for k in PATH_KEYS if info.get(k)}
            except Exception:  # noqa: BLE001
                paths = {}
            msg = (
                f'{type(dataset).__name__}[{idx}] {paths}: '
                f'{type(err).__name__}: {err}'
            )
            cause = file_error(err, paths)
            if cause is not None and cause is not err:
                msg += f' (the file: {type(cause).__name__}: {cause})'
            if on_corrupt == 'raise' or cause is None:
                raise CorruptSampleError(msg) from err
            print_log(
                f'skipping a corrupt sample (on_corrupt="skip"): {msg}',
                logger='current',
                level=logging.WARNING,
            )
            data = None
        if data is not None:
            return data
        idx = (idx + 1) % n  # deterministic replacement: the next index
    raise CorruptSampleError(
        f'{type(dataset).__name__}: no valid sample found in '
        f'{max_refetch + 1} tries from index {first}; see the warnings above'
    )


def _check_on_corrupt(on_corrupt):
    if on_corrupt not in ('skip', 'raise'):
        raise ValueError(
            f"on_corrupt must be 'skip' or 'raise', got {on_corrupt!r}"
        )
    return on_corrupt


def _scan(folder: str, suffixes) -> List[str]:
    """Image files under ``folder`` (recursive), as sorted paths relative to
    it."""
    if not osp.isdir(folder):
        raise FileNotFoundError(f'image folder not found: {folder}')
    out = []
    for dirpath, _, files in os.walk(folder, followlinks=True):
        for f in files:
            if f.lower().endswith(tuple(suffixes)):
                out.append(
                    osp.relpath(osp.join(dirpath, f), folder).replace(
                        os.sep, '/'
                    )
                )
    return sorted(out)


@DATASETS.register_module()
class PairedImageDataset(BaseDataset):
    """Degraded/clean image pairs, or clean images only (degraded on the fly).

    Sources, by priority:

    1. ``ann_file`` ending in ``.json``: an mmengine annotation file
       ``{"metainfo": ..., "data_list":
       [{"img_path": ..., "gt_path": ..., ...}]}`` (the benchmark manifest);
       paths are relative to the prefixes; extra fields (``gt_label``,
       ``seg_map_path``, ``degradation``, ``source``) are kept.
    2. ``ann_file`` (text): one ``<degraded> <clean>`` pair per line (or one
       clean path: clean only).
    3. Folder scan: every image under ``data_prefix['img_path']`` is paired
       with the clean image named ``gt_filename_tmpl.format(*groups)`` (any
       image suffix) under ``data_prefix['gt_path']``, where ``groups`` are the
       groups of ``lq_key_regex`` matched against the degraded image's relative
       path without suffix (default: the whole path, i.e. same names).  Files
       that do not match the regex are ignored, so one folder can hold both
       (GoPro's ``*/blur`` and ``*/sharp``).  With no ``img_path`` prefix
       (``None`` or absent), the clean images are the samples (``img_path`` =
       ``gt_path``) and the pipeline must degrade them.

    Examples: Rain100L ``lq_key_regex=r'rain-(\\d+)'``,
    ``gt_filename_tmpl='norain-{}'``; RESIDE SOTS
    ``lq_key_regex=r'(\\d+)_.*'``, ``gt_filename_tmpl='{}'``; GoPro
    ``lq_key_regex=r'(.+)/blur/(.+)'``, ``gt_filename_tmpl='{}/sharp/{}'``.

    Args:
        on_corrupt: ``'skip'`` (warn with the path, take the next index) or
            ``'raise'``.
        missing_gt: what to do with a degraded image that has no clean match:
            ``'raise'`` or ``'skip'``.
        select_degradation: for a manifest, keep only samples whose
            ``degradation`` matches, e.g.
            ``dict(name=['fog', 'snow'], severity=3)``.
    """

    METAINFO = dict(task='restoration')

    def __init__(
        self,
        data_root: str = '',
        data_prefix: dict = dict(img_path='lq', gt_path='gt'),
        ann_file: str = '',
        lq_key_regex: Optional[str] = None,
        gt_filename_tmpl: str = '{}',
        suffixes: Sequence[str] = IMG_EXTENSIONS,
        on_corrupt: str = 'skip',
        missing_gt: str = 'raise',
        select_degradation: Optional[dict] = None,
        **kwargs,
    ):
        self.lq_key_regex = re.compile(lq_key_regex) if lq_key_regex else None
        self.gt_filename_tmpl = gt_filename_tmpl
        self.suffixes = tuple(s.lower() for s in suffixes)
        self.on_corrupt = _check_on_corrupt(on_corrupt)
        if missing_gt not in ('raise', 'skip'):
            raise ValueError(
                f"missing_gt must be 'raise' or 'skip', got {missing_gt!r}"
            )
        self.missing_gt = missing_gt
        self.select_degradation = {
            k: set(v) if isinstance(v, (list, tuple, set)) else {v}
            for k, v in (select_degradation or {}).items()
        }
        data_prefix = {
            k: v for k, v in dict(data_prefix).items() if v is not None
        }
        super().__init__(
            ann_file=ann_file,
            data_root=data_root,
            data_prefix=data_prefix,
            **kwargs,
        )

    # mmengine's parse_data_info requires every prefix key in every record;
    # join only those present.
    def parse_data_info(self, raw_data_info: dict) -> dict:
        info = dict(raw_data_info)
        for key, prefix in self.data_prefix.items():
            if info.get(key):
                info[key] = osp.join(prefix, info[key])
        if (
            'seg_map_path' in info
            and 'seg_map_path' not in self.data_prefix
            and self.data_root
        ):
            info['seg_map_path'] = osp.join(
                self.data_root, info['seg_map_path']
            )
        if info.get('img_path') is None and info.get('gt_path'):
            info['img_path'] = info['gt_path']
        return info

    def load_data_list(self) -> List[dict]:
        if self.ann_file and self.ann_file.endswith('.json'):
            data = super().load_data_list()
            if self.select_degradation:
                data = [
                    d
                    for d in data
                    if all(
                        (d.get('degradation') or {}).get(k) in v
                        for k, v in self.select_degradation.items()
                    )
                ]
                if not data:
                    raise ValueError(
                        f'no sample of {self.ann_file} matches '
                        f'select_degradation={self.select_degradation}'
                    )
            return data
        lq_root = self.data_prefix.get('img_path')
        gt_root = self.data_prefix.get('gt_path', '')
        if self.ann_file:
            out = []
            with open(self.ann_file) as f:
                for n, line in enumerate(f, 1):
                    parts = line.split()
                    if not parts:
                        continue
                    if len(parts) > 2:
                        raise ValueError(
                            f'{self.ann_file}:{n}: expected "<degraded> '
                            f'<clean>" or "<clean>", got {line.strip()!r}'
                        )
                    if len(parts) == 1:
                        p = osp.join(gt_root, parts[0])
                        out.append(dict(img_path=p, gt_path=p))
                    else:
                        out.append(
                            dict(
                                img_path=osp.join(lq_root or '', parts[0]),
                                gt_path=osp.join(gt_root, parts[1]),
                            )
                        )
            return out
        if lq_root is None:  # clean only
            return [
                dict(
                    img_path=osp.join(gt_root, r), gt_path=osp.join(gt_root, r)
                )
                for r in _scan(gt_root, self.suffixes)
            ]
        gt_index = {
            osp.splitext(r)[0]: r for r in _scan(gt_root, self.suffixes)
        }
        out, missing = [], []
        for rel in _scan(lq_root, self.suffixes):
            stem = osp.splitext(rel)[0]
            if self.lq_key_regex is None:
                groups = (stem,)
            else:
                m = self.lq_key_regex.fullmatch(stem)
                if m is None:
                    continue
                groups = m.groups() or (m.group(0),)
            gt_rel = gt_index.get(self.gt_filename_tmpl.format(*groups))
            if gt_rel is None:
                missing.append(rel)
                continue
            out.append(
                dict(
                    img_path=osp.join(lq_root, rel),
                    gt_path=osp.join(gt_root, gt_rel),
                )
            )
        # kept for reports (tools/test.py lists them with the other bad files)
        self.missing_gt_files = [osp.join(lq_root, rel) for rel in missing]
        if missing:
            msg = (
                f'{len(missing)} degraded images in {lq_root} have no clean '
                f'match in {gt_root} '
                f'(gt_filename_tmpl={self.gt_filename_tmpl!r}), e.g. '
                f'{missing[:3]}'
            )
            if self.missing_gt == 'raise':
                raise FileNotFoundError(msg)
            print_log(
                msg + '; skipped', logger='current', level=logging.WARNING
            )
        if not out:
            raise FileNotFoundError(
                f'no image pairs found: degraded {lq_root}, clean {gt_root}, '
                'lq_key_regex='
                f'{self.lq_key_regex and self.lq_key_regex.pattern!r}'
            )
        return out

    def __getitem__(self, idx: int) -> dict:
        if not self._fully_initialized:
            self.full_init()
        return guarded_getitem(
            self, idx, self.prepare_data, self.on_corrupt, self.max_refetch
        )


@DATASETS.register_module()
class DegradedDataset:
    """A task dataset (mmpretrain, mmseg, ...) whose samples get degraded,
    keeping image and label/mask.

    Args:
        dataset: the wrapped dataset or its config, e.g.
            ``dict(type='mmpretrain.CUB', ...)`` with a pipeline that loads
            (and geometrically augments) the image and its annotation.
        pipeline: transforms run after the wrapped dataset's pipeline,
            typically ``unirestore_mm.RandomDegradation`` (or ``Degradation``)
            and ``unirestore_mm.PackRestorationInputs``.
        on_corrupt: ``'skip'`` or ``'raise'`` for unreadable files (see the
            module docstring).

    ``sample_idx`` from the wrapped dataset seeds the degradation, so a seeded
    transform gives the same degraded image for an index in every worker and
    run.
    """

    def __init__(
        self,
        dataset: Union[dict, object],
        pipeline: Sequence = (),
        on_corrupt: str = 'skip',
        max_refetch: int = 100,
        lazy_init: bool = False,
    ):
        self.dataset = (
            DATASETS.build(dataset) if isinstance(dataset, dict) else dataset
        )
        self.pipeline = Compose(list(pipeline))
        self.on_corrupt = _check_on_corrupt(on_corrupt)
        self.max_refetch = int(max_refetch)
        self._fully_initialized = False
        if not lazy_init:
            self.full_init()

    @property
    def metainfo(self) -> dict:
        return dict(getattr(self.dataset, 'metainfo', {}))

    def full_init(self):
        if self._fully_initialized:
            return
        if hasattr(self.dataset, 'full_init'):
            self.dataset.full_init()
        self._fully_initialized = True

    def __len__(self) -> int:
        self.full_init()
        return len(self.dataset)

    def get_data_info(self, idx: int) -> dict:
        return self.dataset.get_data_info(idx)

    def prepare_data(self, idx: int) -> Optional[dict]:
        if hasattr(self.dataset, 'prepare_data'):
            results = self.dataset.prepare_data(idx)
        else:  # wrappers such as mmengine's ConcatDataset
            results = self.dataset[idx]
        if results is None:
            return None
        # this dataset's index seeds the degradation
        results['sample_idx'] = idx
        return self.pipeline(results)

    def __getitem__(self, idx: int) -> dict:
        self.full_init()
        return guarded_getitem(
            self, idx, self.prepare_data, self.on_corrupt, self.max_refetch
        )

    def __repr__(self) -> str:
        return (
            f'{type(self).__name__}(dataset={type(self.dataset).__name__}, '
            f'len={len(self)}, pipeline={self.pipeline}, '
            f'on_corrupt={self.on_corrupt!r})'
        )
