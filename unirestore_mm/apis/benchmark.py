"""The adverse-weather benchmark: restorers × downstream models × corruptions ×
severities (``tools/benchmark.py``).

A *row* is what the downstream models are shown: the degraded input, a restorer
under one of its task prompts, or the clean input.  A *condition* is one
corruption at one severity (or, for a data set with real degradations, the data
as given).  A *cell* is one row under one condition: PSNR/SSIM against the
clean image where the data set has one, and every downstream model's own
metrics from its own evaluator (the config's ``test_evaluator``: mmpretrain's
``Accuracy``, mmseg's ``IoUMetric``, ...), on the restored image passed through
that model's own test pipeline (its loading steps replaced by the image in
memory) and its ``test_step``.

Distributed like mmpretrain's and mmseg's ``tools/test.py``: under ``torchrun``
(or slurm through MMEngine's launcher) each process takes its share of the
images (MMEngine's ``DefaultSampler``), and every metric is collected by
MMEngine's evaluator (``collect_results``) before it is computed, so the
numbers do not depend on the number of processes.  Each image's sampling noise
comes from the seed and the image's index, not from the batch it falls in.

Cells are appended to ``cells.jsonl`` as they finish (by rank 0), so an
interrupted run goes on where it stopped; a cell is tied to its row's settings
(restorer file, task, steps, seed), and results of other settings in the same
work dir are refused rather than mixed.

Bad files (an image that cannot be read or decoded, a cut PNG/JPEG, a missing
clean file, a pair of different sizes) are left out of the cell they belong to,
which is computed over the other images: its ``images`` is the number evaluated
and ``failed`` lists ``[path, reason]`` of the left-out ones (the data set is
wrapped in :class:`~unirestore_mm.engine.tolerant_test.SkipBadSamples`).  A
resumed run keeps such cells (and reports their files again); after mending the
files, ``--overwrite`` recomputes everything.
"""

import copy
import hashlib
import json
import logging
import os
import os.path as osp
import platform
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch

from ..datasets.transforms.degradations import check_severity, sample_seed
from ..datasets.transforms.transforms import _expand_corruptions
from ..engine.tolerant_test import (
    BAD_KEY,
    SkipBadSamples,
    evaluate_by_index,
    gather_bad,
    is_bad,
)
from ..evaluation.task_benchmark import _atomic_text, load_cells

__all__ = [
    'Condition',
    'BenchRow',
    'Downstream',
    'BenchmarkData',
    'RestorerSpec',
    'run_benchmark',
    'summarise_cells',
    'write_benchmark_tables',
    'BenchmarkError',
]

DEGRADATION_TYPES = ('RandomDegradation', 'Degradation')
LABEL_SOURCES = ('auto', 'dataset', 'clean-prediction')


class BenchmarkError(ValueError):
    """A benchmark setting that cannot work (named in the message); raised
    before any computation."""


# -----------------------------------------------------------------------------
# Conditions and rows
# -----------------------------------------------------------------------------
@dataclass(frozen=True)
class Condition:
    """One corruption at one severity; ``('clean', 0)`` is the pass over clean
    images, ``('as-given', 0)`` a data set with real degradations."""

    corruption: str
    severity: int = 0

    @property
    def key(self) -> str:
        return f'{self.corruption}/{self.severity}'


CLEAN = Condition('clean', 0)
AS_GIVEN = Condition('as-given', 0)


@dataclass
class BenchRow:
    """``source``: ``'degraded'`` or ``'clean'``; ``restorer``: a key of the
    restorers (``None``: the input as it is); ``fingerprint``: the settings its
    cells were computed with."""

    name: str
    source: str = 'degraded'
    restorer: Optional[str] = None
    task: Optional[str] = None
    fingerprint: str = ''


@dataclass
class RestorerSpec:
    """A restorer to benchmark: a ``save_pretrained`` folder, or a checkpoint
    file built on ``preset`` (+ ``prior``)."""

    name: str
    path: str
    preset: str = 'tiny'
    prior: Optional[str] = None
    tasks: Optional[Sequence[str]] = None

    def build(self):
        from ..models.restorer_model import build_restorer
        from ..models.unirestore import CONFIG_NAME, UniRestore

        if osp.isdir(self.path):
            if not osp.isfile(osp.join(self.path, CONFIG_NAME)):
                raise BenchmarkError(
                    f'restorer {self.name!r}: {self.path} is a folder '
                    f'without {CONFIG_NAME} '
                    '(expected a UniRestore.save_pretrained folder or a '
                    'checkpoint file)'
                )
            return UniRestore.from_pretrained(self.path, prior=self.prior)
        if not osp.isfile(self.path):
            raise BenchmarkError(
                f'restorer {self.name!r}: no file or folder at {self.path}'
            )
        spec = dict(preset=self.preset)
        if self.prior:
            spec['prior'] = dict(pretrained=self.prior)
        try:
            return build_restorer(spec, self.path)
        except (ValueError, KeyError, RuntimeError) as err:
            raise BenchmarkError(
                f'restorer {self.name!r}: checkpoint {self.path} does not '
                f'fit the {self.preset!r} preset: {str(err)[:400]}'
            ) from None

    def fingerprint(self) -> str:
        return _file_fingerprint(self.path) + f'|{self.preset}|{self.prior}'


def _file_fingerprint(path: str) -> str:
    """Path, size and modification time of a file (or of every file in a
    folder)."""
    files = (
        [path]
        if osp.isfile(path)
        else sorted(
            osp.join(d, f)
            for d, _, fs in os.walk(path)
            for f in fs
            if not f.startswith('.')
        )
    )
    parts = [osp.abspath(path)] + [
        f'{osp.relpath(f, path) if f != path else ""}:{os.stat(f).st_size}:'
        f'{int(os.stat(f).st_mtime)}'
        for f in files
    ]
    return hashlib.sha1('|'.join(parts).encode()).hexdigest()[:12]


# -----------------------------------------------------------------------------
# Downstream models
# -----------------------------------------------------------------------------
def _type_name(t) -> str:
    return (t if isinstance(t, str) else getattr(t, '__name__', str(t))).split(
        '.'
    )[-1]


def _pipeline_of(dataset_cfg) -> Optional[list]:
    """The first pipeline down a chain of dataset wrappers that packs its
    samples (``Pack*``)."""
    while dataset_cfg is not None:
        pipe = (
            dataset_cfg.get('pipeline')
            if hasattr(dataset_cfg, 'get')
            else None
        )
        if pipe and any(
            _type_name(t.get('type', '')).startswith('Pack') for t in pipe
        ):
            return list(pipe)
        dataset_cfg = (
            dataset_cfg.get('dataset') if hasattr(dataset_cfg, 'get') else None
        )
    return None


def find_test_pipeline(cfg) -> Optional[list]:
    """``test_pipeline``, else the packing pipeline of
    ``test_dataloader.dataset`` (then ``val_dataloader``)."""
    if cfg.get('test_pipeline'):
        return list(cfg['test_pipeline'])
    for key in ('test_dataloader', 'val_dataloader'):
        loader = cfg.get(key)
        if loader and loader.get('dataset'):
            pipe = _pipeline_of(loader['dataset'])
            if pipe:
                return pipe
    return None


class Downstream:
    """An mmpretrain classifier or mmseg segmenter with its own test pipeline
    and evaluator.

    Its loading steps (``Load*``) are replaced by the image in memory (BGR
    ``uint8``, as ``LoadImageFromFile`` gives) and the label or mask put in the
    results, so every other test transform (resize, crop, packing) and the
    model's data preprocessor (normalisation, channel order) run as in the
    model's own ``tools/test.py``.
    """

    def __init__(
        self,
        name: str,
        config: str,
        checkpoint: str,
        device: str = 'cpu',
        cfg_options: Optional[dict] = None,
    ):
        from mmengine.config import Config
        from mmengine.dataset import Compose
        from mmengine.registry import DefaultScope

        from ..models.recognizers import build_recognizer

        self.name, self.config, self.checkpoint = name, config, checkpoint
        if not osp.isfile(config):
            raise BenchmarkError(
                f'downstream model {name!r}: no config file at {config}'
            )
        if not checkpoint or not osp.isfile(checkpoint):
            raise BenchmarkError(
                f'downstream model {name!r}: no checkpoint file at '
                f'{checkpoint}'
            )
        cfg = Config.fromfile(config)
        if cfg_options:
            cfg.merge_from_dict(cfg_options)
        pipeline = find_test_pipeline(cfg)
        if not pipeline:
            raise BenchmarkError(
                f'downstream model {name!r}: config {config} has no test '
                'pipeline (set test_pipeline '
                'or test_dataloader.dataset.pipeline, ending in '
                'PackInputs/PackSegInputs)'
            )
        evaluator = cfg.get('test_evaluator')
        if not evaluator:
            raise BenchmarkError(
                f'downstream model {name!r}: config {config} has no '
                'test_evaluator (e.g. '
                "dict(type='Accuracy', topk=(1, )) or dict(type='IoUMetric', "
                "iou_metrics=['mIoU']))"
            )
        try:
            self.recognizer = build_recognizer(cfg, checkpoint, frozen=True)
        except (ValueError, FileNotFoundError, TypeError) as err:
            raise BenchmarkError(f'downstream model {name!r}: {err}') from None
        self.kind = self.recognizer.kind
        self.scope = 'mmpretrain' if self.kind == 'cls' else 'mmseg'
        self.model = self.recognizer.model.to(device).eval()
        self.num_classes = self.recognizer.num_classes
        self.classes = self.recognizer.classes
        self.evaluator_cfg = [
            dict(m)
            for m in (
                evaluator
                if isinstance(evaluator, (list, tuple))
                else [evaluator]
            )
        ]
        self.pipeline_cfg = [
            dict(t)
            for t in pipeline
            if not _type_name(t.get('type', '')).startswith('Load')
        ]
        with DefaultScope.overwrite_default_scope(self.scope):
            self.pipeline = Compose(copy.deepcopy(self.pipeline_cfg))
            # a bad evaluator config fails here, before any computation
            self.new_evaluator()

    def new_evaluator(self, classes: Optional[Sequence[str]] = None):
        from mmengine.evaluator import Evaluator
        from mmengine.registry import METRICS, DefaultScope

        # no "prefix is not set" warnings
        with DefaultScope.overwrite_default_scope(self.scope), _quiet():
            evaluator = Evaluator(
                [METRICS.build(copy.deepcopy(m)) for m in self.evaluator_cfg]
            )
        names = (
            list(classes)
            if classes is not None and len(classes) == self.num_classes
            else (
                self.classes
                if self.classes and len(self.classes) == self.num_classes
                else [str(i) for i in range(self.num_classes)]
            )
        )
        evaluator.dataset_meta = dict(classes=names)
        return evaluator

    def pack(
        self,
        images: Sequence[np.ndarray],
        targets: Sequence[Optional[Any]],
        names: Sequence[str],
        indices: Sequence[int],
    ) -> dict:
        """A collated batch from BGR ``uint8`` images and their labels (int) or
        masks (H x W) or ``None``."""
        from mmengine.dataset import pseudo_collate

        samples = []
        for img, target, name, idx in zip(images, targets, names, indices):
            results = dict(
                img=img,
                img_shape=img.shape[:2],
                ori_shape=img.shape[:2],
                img_path=name,
                sample_idx=int(idx),
            )
            if target is not None:
                if self.kind == 'cls':
                    results['gt_label'] = int(target)
                else:
                    results['gt_seg_map'] = np.asarray(target)
                    results['reduce_zero_label'] = False
            samples.append(self.pipeline(results))
        return pseudo_collate(samples)

    @torch.no_grad()
    def predict(self, batch: dict) -> list:
        return self.model.test_step(batch)

    def reference(self, outputs: Sequence) -> List[Any]:
        """The model's own predictions, as targets: top-1 class (cls) or the
        label map (seg)."""
        if self.kind == 'cls':
            return [
                int(o.pred_label.item())
                if o.pred_label.numel() == 1
                else int(o.pred_score.argmax())
                for o in outputs
            ]
        return [
            o.pred_sem_seg.data[0].cpu().numpy().astype(np.int64)
            for o in outputs
        ]


# -----------------------------------------------------------------------------
# Data
# -----------------------------------------------------------------------------
def _find_degradation(dataset_cfg) -> Optional[dict]:
    """The ``RandomDegradation``/``Degradation`` step in a dataset config (or
    its wrapped datasets)."""
    while dataset_cfg is not None and hasattr(dataset_cfg, 'get'):
        for t in dataset_cfg.get('pipeline') or []:
            if _type_name(t.get('type', '')) in DEGRADATION_TYPES:
                return t
        dataset_cfg = dataset_cfg.get('dataset')
    return None


class _Indexed(torch.utils.data.Dataset):
    """``(index, sample)`` pairs, so each sample's seed and its place in the
    results are known."""

    def __init__(self, dataset):
        self.dataset = dataset

    def __len__(self):
        return len(self.dataset)

    def __getitem__(self, idx):
        return idx, self.dataset[idx]


class _Head(torch.utils.data.Dataset):
    """The first ``n`` samples of a data set (``--limit``)."""

    def __init__(self, dataset, n: int):
        self.dataset, self.n = dataset, min(int(n), len(dataset))
        self.metainfo = getattr(dataset, 'metainfo', {})
        self.missing = getattr(dataset, 'missing', [])

    def __len__(self):
        return self.n

    def __getitem__(self, idx):
        if not 0 <= idx < self.n:
            raise IndexError(idx)
        return self.dataset[idx]


class BenchmarkData:
    """The data set of a benchmark (a config's ``test_dataloader``) and its
    conditions.

    * A pipeline with a ``RandomDegradation``/``Degradation`` (clean images
      degraded on the fly): every ``corruptions`` × ``severities`` condition,
      by setting that step (fixed seed, so every row sees the same degraded
      images).
    * A set written by ``tools/dataset_converters/make_benchmark_set.py``
      (``PairedImageDataset`` over its manifest): the corruptions and
      severities of its manifest (a subset with
      ``corruptions``/``severities``), via ``select_degradation``.
    * Any other set (real degradations: Foggy Cityscapes, ACDC, RESIDE SOTS,
      Rain100L, Snow100K): one condition, the data as given.
    """

    def __init__(
        self,
        config: str,
        corruptions: Optional[Sequence[str]] = None,
        severities: Optional[Sequence[int]] = None,
        seed: int = 0,
        cfg_options: Optional[dict] = None,
        limit: Optional[int] = None,
    ):
        from mmengine.config import Config

        if not osp.isfile(config):
            raise BenchmarkError(f'data config: no file at {config}')
        cfg = Config.fromfile(config)
        if cfg_options:
            cfg.merge_from_dict(cfg_options)
        loader = cfg.get('test_dataloader')
        if not loader or not loader.get('dataset'):
            raise BenchmarkError(
                f'data config {config} has no test_dataloader.dataset'
            )
        self.config = config
        self.loader_cfg = copy.deepcopy(loader)
        self.seed = int(seed)
        self.limit = limit
        dataset_cfg = self.loader_cfg['dataset']
        step = _find_degradation(dataset_cfg)
        severities = (
            None
            if severities is None
            else [check_severity(s) for s in severities]
        )
        if step is not None:
            self.mode = 'synthetic'
            names = _expand_corruptions(
                corruptions
                or step.get('corruptions')
                or step.get('corruption')
                or 'imagenet_c'
            )
            sevs = severities or [check_severity(step.get('severity') or 3)]
            self.conditions = [Condition(c, s) for c in names for s in sevs]
        elif _type_name(
            dataset_cfg.get('type', '')
        ) == 'PairedImageDataset' and str(
            dataset_cfg.get('ann_file', '')
        ).endswith('.json'):
            self.mode = 'manifest'
            meta = self._manifest_meta(dataset_cfg)
            names = (
                _expand_corruptions(corruptions)
                if corruptions
                else list(meta.get('corruptions', []))
            )
            missing = [
                c for c in names if c not in meta.get('corruptions', [])
            ]
            sevs = severities or list(meta.get('severities', []))
            missing_s = [
                s for s in sevs if s not in meta.get('severities', [])
            ]
            if missing or missing_s:
                raise BenchmarkError(
                    f'data {config}: the manifest has corruptions '
                    f'{meta.get("corruptions")} and severities '
                    f'{meta.get("severities")}; not {missing + missing_s}'
                )
            self.conditions = [Condition(c, s) for c in names for s in sevs]
        else:
            if corruptions or severities:
                raise BenchmarkError(
                    f'data {config} has its own (real) degradations and no '
                    'RandomDegradation step; '
                    '--corruptions/--severities do not apply to it'
                )
            self.mode = 'fixed'
            self.conditions = [AS_GIVEN]
        if not self.conditions:
            raise BenchmarkError(
                f'data {config}: no corruption/severity to benchmark'
            )
        try:
            first = self.dataset(self.conditions[0])
        except (ValueError, FileNotFoundError, RuntimeError, KeyError) as err:
            raise BenchmarkError(
                f'data {config}: cannot build its data set: {err}'
            ) from None
        if len(first) == 0:
            raise BenchmarkError(
                f'data {config}: the data set is empty (check its data_root '
                'and ann_file)'
            )
        self.size = len(first)
        probe = next(
            (
                s
                for s in (first[i] for i in range(len(first)))
                if not is_bad(s)
            ),
            None,
        )
        if probe is None:
            bad = first[0][BAD_KEY]
            raise BenchmarkError(
                f'data {config}: every one of its {len(first)} samples is a '
                f'bad file (the first: {bad["path"]}: {bad["reason"]})'
            )
        sample = probe['data_samples']
        self.has_clean = 'gt_img' in sample
        self.has_label = 'gt_label' in sample
        self.has_mask = 'gt_sem_seg' in sample
        self.classes = (
            first.metainfo.get('classes')
            if hasattr(first, 'metainfo')
            else None
        )

    @staticmethod
    def _manifest_meta(dataset_cfg) -> dict:
        path = osp.join(
            dataset_cfg.get('data_root', ''), dataset_cfg['ann_file']
        )
        if not osp.isfile(path):
            raise BenchmarkError(
                f'benchmark set manifest not found: {path} (write it with '
                'tools/dataset_converters/make_benchmark_set.py)'
            )
        with open(path, encoding='utf-8') as f:
            return json.load(f).get('metainfo', {})

    def dataset(self, cond: Condition):
        """The data set under ``cond`` (``CLEAN``: the first condition's; only
        its clean images are used)."""
        from mmengine.registry import DefaultScope

        if cond == CLEAN:
            cond = self.conditions[0]
        cfg = copy.deepcopy(self.loader_cfg['dataset'])
        # the step becomes this one corruption at this severity, seeded, no
        # resizing
        if self.mode == 'synthetic':
            step = _find_degradation(cfg)
            keep = {
                k: step[k]
                for k in (
                    'keys',
                    'gt_key',
                    'channel_order',
                    'meta_key',
                    'depth_key',
                )
                if k in step
            }
            step.clear()
            step.update(
                type='unirestore_mm.RandomDegradation',
                corruptions=[cond.corruption],
                severity=cond.severity,
                resize_short_side=None,
                seed=self.seed,
                **keep,
            )
        elif self.mode == 'manifest':
            cfg['select_degradation'] = dict(
                name=cond.corruption, severity=cond.severity
            )
        with DefaultScope.overwrite_default_scope('unirestore_mm'):
            # a sample with a bad file comes out as a marker (is_bad), not an
            # error
            dataset = SkipBadSamples(cfg)
        return dataset if self.limit is None else _Head(dataset, self.limit)

    def loader(self, dataset, batch_size: int, num_workers: int = 0):
        """Batches of this process's share (MMEngine's ``DefaultSampler``, no
        shuffling, padded like its ``tools/test.py``: the evaluators drop the
        repeats)."""
        from mmengine.dataset import DefaultSampler

        return torch.utils.data.DataLoader(
            _Indexed(dataset),
            batch_size=batch_size,
            num_workers=num_workers,
            sampler=DefaultSampler(dataset, shuffle=False),
            collate_fn=_as_list,
        )


def _as_list(batch):
    return list(batch)


def _to_rgb01(t: torch.Tensor) -> torch.Tensor:
    """A packed ``C x H x W`` image as loaded (BGR, uint8/uint16/0-255 float)
    -> RGB float in [0, 1]."""
    # uint8, or mmcv's float images in 0-255
    peak = 65535.0 if t.dtype == torch.uint16 else 255.0
    x = t.float() / peak
    if x.shape[0] == 1:
        x = x.expand(3, -1, -1)
    return x[:3].flip(0).clamp(0, 1)


def _to_bgr_u8(x: torch.Tensor) -> np.ndarray:
    """RGB float ``3 x H x W`` in [0, 1] -> ``H x W x 3`` BGR ``uint8`` (what
    ``LoadImageFromFile`` gives)."""
    return np.ascontiguousarray(
        (x.detach().float().clamp(0, 1) * 255)
        .round()
        .byte()
        .flip(0)
        .permute(1, 2, 0)
        .cpu()
        .numpy()
    )


# -----------------------------------------------------------------------------
# The run
# -----------------------------------------------------------------------------
def _group_by_shape(
    images: Sequence[torch.Tensor],
) -> Dict[Tuple[int, ...], List[int]]:
    groups: Dict[Tuple[int, ...], List[int]] = {}
    for i, x in enumerate(images):
        groups.setdefault(tuple(x.shape), []).append(i)
    return groups


@torch.no_grad()
def restore_batch(
    model,
    images: Sequence[torch.Tensor],
    indices: Sequence[int],
    tasks: Sequence[str],
    num_steps: int,
    seed: int,
) -> Dict[str, List[torch.Tensor]]:
    """Restore each image under each task; images of one size go together, each
    with the generator of its own index
    (``sample_seed(seed, 'restore', index)``), so a result does not depend on
    its batch."""
    device = next(model.cfrm.parameters()).device
    out: Dict[str, List[Optional[torch.Tensor]]] = {
        t: [None] * len(images) for t in tasks
    }
    for _, members in _group_by_shape(images).items():
        x = torch.stack([images[i] for i in members]).to(device)
        gens = [
            torch.Generator(device=device).manual_seed(
                sample_seed(seed, 'restore', int(indices[i]))
            )
            for i in members
        ]
        restored = model.restore_tasks(
            x, tasks, num_steps=num_steps, generator=gens
        )
        for t, y in restored.items():
            for j, i in enumerate(members):
                out[t][i] = y[j].float().cpu()
    return out  # type: ignore[return-value]


def tasks_by_restorer(rows: Sequence[BenchRow]) -> Dict[str, List[str]]:
    """``{restorer: [its tasks in these rows]}``: each restorer runs once for
    all its prompts."""
    out: Dict[str, List[str]] = {}
    for r in rows:
        if r.restorer is not None and r.task not in out.setdefault(
            r.restorer, []
        ):
            out[r.restorer].append(r.task)
    return out


def row_images(
    row: BenchRow, degraded, clean, restored: Dict[Tuple[str, str], Any]
):
    """What ``row`` shows: the clean or degraded input, or its restorer's
    output under its task."""
    if row.source == 'clean':
        return clean
    if row.restorer is None:
        return degraded
    return restored[(row.restorer, row.task)]


def _rank_world() -> Tuple[int, int]:
    from mmengine.dist import get_dist_info

    return get_dist_info()


def _broadcast(obj):
    from mmengine.dist import broadcast_object_list, get_world_size

    if get_world_size() == 1:
        return obj
    box = [obj]
    broadcast_object_list(box, src=0)
    return box[0]


def versions() -> dict:
    import diffusers
    import mmengine

    out = dict(
        python=platform.python_version(),
        torch=torch.__version__,
        diffusers=diffusers.__version__,
        mmengine=mmengine.__version__,
        machine=platform.machine(),
        cpus=os.cpu_count(),
    )
    for mod in ('mmpretrain', 'mmseg', 'mmcv'):
        try:
            out[mod] = __import__(mod).__version__
        except ImportError:  # pragma: no cover
            pass
    if torch.cuda.is_available():
        out['gpu'] = torch.cuda.get_device_name(0)
    return out


def run_benchmark(
    data: BenchmarkData,
    restorers: Dict[str, Any],
    row_specs: Sequence[BenchRow],
    models: Sequence[Downstream],
    work_dir: str,
    settings: dict,
    labels: str = 'auto',
    batch_size: int = 8,
    num_workers: int = 0,
    num_steps: int = 1,
    seed: int = 0,
    progress: bool = True,
) -> List[dict]:
    """Compute every missing cell, appending each to ``work_dir/cells.jsonl``;
    return all cells (every rank).

    ``restorers`` maps a restorer key to a built
    :class:`~unirestore_mm.models.UniRestore`; ``labels``: ``'dataset'`` (the
    data set's labels/masks), ``'clean-prediction'`` (each model's prediction
    on the clean image: agreement, no labels needed) or ``'auto'`` (the data
    set's when it has the model's kind, else the clean prediction).
    """
    rank, world = _rank_world()
    cells_path = osp.join(work_dir, 'cells.jsonl')
    label_source = {
        m.name: resolve_label_source(labels, m, data) for m in models
    }
    state = None
    if rank == 0:
        try:
            os.makedirs(work_dir, exist_ok=True)
            check_settings(work_dir, settings)
            valid = {r.name: r.fingerprint for r in row_specs}
            kept = [
                c
                for c in load_cells(cells_path)
                if valid.get(c['row']) == c.get('fingerprint')
            ]
            # drops a cut line, stale rows
            _atomic_text(
                cells_path, ''.join(json.dumps(c) + '\n' for c in kept)
            )
            state = dict(
                done=sorted({(c['row'], c['condition']) for c in kept})
            )
        # every process stops, not only the one that saw it
        except (BenchmarkError, OSError) as err:
            state = dict(error=str(err))
    state = _broadcast(state)
    if 'error' in state:
        raise BenchmarkError(state['error'])
    done = {tuple(k) for k in state['done']}

    passes = []
    clean_rows = [r for r in row_specs if r.source == 'clean']
    if clean_rows:
        passes.append((CLEAN, clean_rows))
    for cond in data.conditions:
        passes.append((cond, [r for r in row_specs if r.source == 'degraded']))
    passes = [
        (c, [r for r in rows if (r.name, c.key) not in done])
        for c, rows in passes
    ]
    passes = [(c, rows) for c, rows in passes if rows]
    per_rank = -(-data.size // world)
    bar = None
    if progress and rank == 0 and passes:
        from mmengine.utils import ProgressBar

        bar = ProgressBar(len(passes) * -(-per_rank // batch_size))
    for cond, rows in passes:
        dataset = data.dataset(cond)
        tasks_of = tasks_by_restorer(rows)
        quality = (
            {r.name: _pair_evaluator() for r in rows} if data.has_clean else {}
        )
        evaluators = {
            (r.name, m.name): m.new_evaluator(data.classes)
            for r in rows
            for m in models
        }
        # left out when the data set was built (no clean match)
        bad = list(getattr(dataset, 'missing', []))
        # data set index of every sample evaluated here, in order
        ran: List[int] = []
        for batch in data.loader(dataset, batch_size, num_workers):
            bad += [s[BAD_KEY] for _, s in batch if is_bad(s)]
            batch = [(i, s) for i, s in batch if not is_bad(s)]
            if not batch:
                if bar is not None:
                    bar.update()
                continue
            indices = [int(i) for i, _ in batch]
            ran += indices
            samples = [s for _, s in batch]
            degraded = [_to_rgb01(s['inputs']) for s in samples]
            clean = [
                _to_rgb01(s['data_samples'].gt_img) if data.has_clean else None
                for s in samples
            ]
            names = [
                str(s['data_samples'].metainfo.get('img_path', idx))
                for s, idx in zip(samples, indices)
            ]
            restored = {
                (rname, t): ys
                for rname, tasks in tasks_of.items()
                for t, ys in restore_batch(
                    restorers[rname], degraded, indices, tasks, num_steps, seed
                ).items()
            }
            targets = {}
            for m in models:
                if label_source[m.name] == 'dataset':
                    targets[m.name] = [
                        _dataset_target(s['data_samples'], m.kind)
                        for s in samples
                    ]
                # the model's own prediction on the clean image is the
                # reference
                else:
                    ref = m.pack(
                        [_to_bgr_u8(c) for c in clean],
                        [None] * len(clean),
                        names,
                        indices,
                    )
                    targets[m.name] = m.reference(m.predict(ref))
            for r in rows:
                ys = row_images(r, degraded, clean, restored)
                if r.name in quality:
                    quality[r.name].process(
                        data_batch=None,
                        data_samples=[
                            dict(pred_img=y, gt_img=c)
                            for y, c in zip(ys, clean)
                        ],
                    )
                images = [_to_bgr_u8(y) for y in ys]
                for m in models:
                    packed = m.pack(images, targets[m.name], names, indices)
                    evaluators[(r.name, m.name)].process(
                        data_batch=packed, data_samples=m.predict(packed)
                    )
            if bar is not None:
                bar.update()
        # every process's (a collective call: every process is here)
        bad = gather_bad(bad)
        failed = [[b['path'], b['reason']] for b in bad]
        lost = len({b['index'] for b in bad if b['index'] >= 0})

        def evaluate(evaluator):
            # a left-out sample leaves the processes with different numbers of
            # results: match them by index
            if world > 1 and bad:
                return evaluate_by_index(evaluator, ran)
            return evaluator.evaluate(data.size)

        for r in rows:
            cell = dict(
                row=r.name,
                condition=cond.key,
                corruption=cond.corruption,
                severity=cond.severity,
                images=data.size - lost,
                fingerprint=r.fingerprint,
            )
            if failed:
                cell['failed'] = failed
            if r.name in quality:
                q = evaluate(quality[r.name])
                identical = r.source == 'clean'
                cell['PSNR'] = None if identical else q['PSNR']
                cell['SSIM'] = None if identical else q['SSIM']
            for m in models:
                with _quiet():
                    scores = evaluate(evaluators[(r.name, m.name)])
                for k, v in scores.items():
                    cell[f'{m.name}/{k}'] = (
                        float(v) if np.ndim(v) == 0 else None
                    )
            if rank == 0:
                with open(cells_path, 'a', encoding='utf-8') as f:
                    f.write(json.dumps(cell) + '\n')
                    f.flush()
                    os.fsync(f.fileno())
    if bar is not None:
        print()
    return _broadcast(load_cells(cells_path) if rank == 0 else None)


class _quiet:
    """Silence the per-class tables evaluators log (mmseg's ``IoUMetric``)
    while the benchmark collects metrics."""

    def __enter__(self):
        from mmengine.logging import MMLogger

        self.logger = MMLogger.get_current_instance()
        self.level = self.logger.level
        self.logger.setLevel(logging.ERROR)

    def __exit__(self, *exc):
        self.logger.setLevel(self.level)


def _pair_evaluator():
    from mmengine.evaluator import Evaluator

    from ..evaluation.metrics import PSNR, SSIM

    with _quiet():  # no prefix: the columns are plain PSNR and SSIM
        return Evaluator([PSNR(), SSIM()])


def _dataset_target(sample, kind: str):
    if kind == 'cls':
        return int(sample.gt_label.reshape(-1)[0])
    return sample.gt_sem_seg.data[0].cpu().numpy().astype(np.int64)


def resolve_label_source(
    labels: str, model: Downstream, data: BenchmarkData
) -> str:
    if labels not in LABEL_SOURCES:
        raise BenchmarkError(
            f'labels must be one of {LABEL_SOURCES}, got {labels!r}'
        )
    has = data.has_label if model.kind == 'cls' else data.has_mask
    if labels == 'auto':
        labels = 'dataset' if has else 'clean-prediction'
    if labels == 'dataset':
        if not has:
            raise BenchmarkError(
                f'downstream model {model.name!r} ({model.kind}) needs '
                f'{"labels" if model.kind == "cls" else "masks"} and data '
                f'{data.config} has none; '
                'use --labels clean-prediction (agreement with the clean '
                'image\'s prediction)'
            )
        if (
            model.kind == 'cls'
            and data.classes
            and len(data.classes) != model.num_classes
        ):
            raise BenchmarkError(
                f'downstream model {model.name!r} predicts '
                f'{model.num_classes} classes but data {data.config} has '
                f'{len(data.classes)} ({list(data.classes)[:5]}...); its '
                'labels '
                'do not name the model\'s classes: use --labels '
                'clean-prediction'
            )
    if labels == 'clean-prediction' and not data.has_clean:
        raise BenchmarkError(
            f'downstream model {model.name!r}: data {data.config} has no '
            'clean images to predict '
            'reference labels from; it needs its own labels (--labels dataset)'
        )
    return labels


def check_settings(work_dir: str, settings: dict) -> None:
    """Refuse a work dir holding results of other data or downstream models
    (mixing them would be wrong)."""
    path = osp.join(work_dir, 'settings.json')
    if osp.isfile(path):
        with open(path, encoding='utf-8') as f:
            old = json.load(f)
        changed = [k for k in settings if k in old and old[k] != settings[k]]
        if changed:
            raise BenchmarkError(
                f'{work_dir} holds results of other settings '
                f'({", ".join(changed)} differ); use '
                'another --work-dir or --overwrite'
            )
    _atomic_text(path, json.dumps(settings, indent=1, sort_keys=True) + '\n')


# -----------------------------------------------------------------------------
# Tables
# -----------------------------------------------------------------------------
META_KEYS = (
    'row',
    'condition',
    'corruption',
    'severity',
    'images',
    'fingerprint',
    'failed',
)


def failed_files(cells: Sequence[dict]) -> List[Tuple[str, str, int]]:
    """``(path, reason, number of cells)`` of every file left out of some cell,
    sorted by path."""
    count: Dict[Tuple[str, str], int] = {}
    for c in cells:
        for path, reason in c.get('failed') or []:
            count[(path, reason)] = count.get((path, reason), 0) + 1
    return [(p, r, n) for (p, r), n in sorted(count.items())]


def metric_names(cells: Sequence[dict]) -> List[str]:
    names: List[str] = []
    for c in cells:
        for k in c:
            if k not in META_KEYS and k not in names:
                names.append(k)
    quality = [m for m in ('PSNR', 'SSIM') if m in names]
    return quality + [m for m in names if m not in quality]


def summarise_cells(
    cells: Sequence[dict], rows: Sequence[str]
) -> Tuple[List[str], List[dict]]:
    """Per row: each metric's mean over its conditions (the clean row: its one
    clean pass)."""
    metrics = metric_names(cells)
    table = []
    for row in rows:
        mine = [c for c in cells if c['row'] == row]
        entry: Dict[str, Any] = dict(row=row, conditions=len(mine))
        for m in metrics:
            vals = [c[m] for c in mine if c.get(m) is not None]
            entry[m] = float(np.mean(vals)) if vals else None
        table.append(entry)
    return metrics, table


def _fmt(m: str, v) -> str:
    if v is None:
        return '–'
    return f'{v:.3f}' if m == 'SSIM' else f'{v:.2f}'


def write_benchmark_tables(
    out_dir: str,
    cells: Sequence[dict],
    rows: Sequence[str],
    header: str = '',
    conditions: Optional[Sequence[Condition]] = None,
) -> Dict[str, str]:
    """``table.md`` (the mean table, then per metric a row × severity table),
    ``table.csv`` (the means, then one line per cell) and ``table.json``."""
    import csv
    import io

    metrics, table = summarise_cells(cells, rows)
    paths = {k: osp.join(out_dir, f'table.{k}') for k in ('md', 'csv', 'json')}
    lines = [header, ''] if header else []
    lines += [
        '| row | ' + ' | '.join(metrics) + ' |',
        '|---|' + '---|' * len(metrics),
    ]
    lines += [
        '| '
        + e['row']
        + ' | '
        + ' | '.join(_fmt(m, e[m]) for m in metrics)
        + ' |'
        for e in table
    ]
    severities = sorted(
        {
            c['severity']
            for c in cells
            if c['condition'] not in (CLEAN.key, AS_GIVEN.key)
        }
    )
    corruptions = list(
        dict.fromkeys(
            c['corruption']
            for c in cells
            if c['condition'] not in (CLEAN.key, AS_GIVEN.key)
        )
    )
    axes = (
        ('severity', severities, 'mean over corruptions'),
        ('corruption', corruptions, 'mean over severities'),
    )
    for m in metrics:
        for key, values, how in axes:
            if len(values) < 2:
                continue
            lines += [
                '',
                f'**{m}** by {key} ({how})',
                '',
                '| row | ' + ' | '.join(str(v) for v in values) + ' |',
                '|---|' + '---|' * len(values),
            ]
            for row in rows:
                vals = [
                    [
                        c[m]
                        for c in cells
                        if c['row'] == row
                        and c[key] == v
                        and c.get(m) is not None
                    ]
                    for v in values
                ]
                if any(vals):
                    lines.append(
                        f'| {row} | '
                        + ' | '.join(
                            _fmt(m, float(np.mean(v)) if v else None)
                            for v in vals
                        )
                        + ' |'
                    )
    _atomic_text(paths['md'], '\n'.join(lines) + '\n')
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(['row', 'corruption', 'severity'] + metrics)
    for e in table:
        w.writerow(
            [e['row'], 'mean', 'mean']
            + ['' if e[m] is None else f'{e[m]:.4f}' for m in metrics]
        )
    order = {r: i for i, r in enumerate(rows)}
    for c in sorted(
        cells,
        key=lambda c: (
            order.get(c['row'], 1e9),
            c['corruption'],
            c['severity'],
        ),
    ):
        w.writerow(
            [c['row'], c['corruption'], c['severity']]
            + ['' if c.get(m) is None else f'{c[m]:.4f}' for m in metrics]
        )
    _atomic_text(paths['csv'], buf.getvalue())
    _atomic_text(
        paths['json'],
        json.dumps(
            dict(metrics=metrics, table=table, cells=list(cells)), indent=1
        )
        + '\n',
    )
    return paths


# -----------------------------------------------------------------------------
# Pictures
# -----------------------------------------------------------------------------
@torch.no_grad()
def grid_tiles(
    data: BenchmarkData,
    restorers: Dict[str, Any],
    row_specs: Sequence[BenchRow],
    index: int = 0,
    max_conditions: int = 8,
    num_steps: int = 1,
    seed: int = 0,
) -> Tuple[list, List[str], List[str]]:
    """Tiles for
    :func:`~unirestore_mm.visualization.benchmark_figures.benchmark_grid`:
    image ``index`` under each corruption (at its highest benchmarked severity)
    as every row shows it."""
    if not 0 <= index < data.size:
        raise BenchmarkError(
            f'grid image index {index} is outside the data set '
            f'(0..{data.size - 1})'
        )
    highest: Dict[str, Condition] = {}
    for c in data.conditions:
        if (
            c.corruption not in highest
            or c.severity > highest[c.corruption].severity
        ):
            highest[c.corruption] = c
    conds = list(highest.values())[:max_conditions]
    tiles, titles = [], []
    for cond in conds:
        sample = data.dataset(cond)[index]
        # that image is a bad file under this condition: no tile line for it
        if is_bad(sample):
            continue
        x = _to_rgb01(sample['inputs'])
        clean = (
            _to_rgb01(sample['data_samples'].gt_img)
            if data.has_clean
            else None
        )
        restored = {
            (rname, t): ys[0]
            for rname, tasks in tasks_by_restorer(row_specs).items()
            for t, ys in restore_batch(
                restorers[rname], [x], [index], tasks, num_steps, seed
            ).items()
        }
        tiles.append(
            [
                _to_bgr_u8(row_images(r, x, clean, restored))[..., ::-1].copy()
                for r in row_specs
            ]
        )
        titles.append(cond.key if cond != AS_GIVEN else 'as given')
    return tiles, titles, [r.name for r in row_specs]
