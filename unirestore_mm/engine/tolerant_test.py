"""Testing over folders that hold bad files: go on past them, list them at the
end, never count them.

Where this sits in an MMEngine test run, and why there:

* **Detection is in the data set** (:class:`SkipBadSamples`, a wrapper around
  the config's test data set): it is where the files are read, in the data
  loader's workers, and where the sample's paths are known.  A sample whose
  files cannot be read (missing, zero bytes, undecodable, truncated, a folder,
  unreadable, a pair of different sizes) becomes a small marker
  ``{BAD_KEY: dict(index, path, reason)}`` instead of an exception.  Errors
  that are not about files (bugs) still raise.  The paired data sets' own
  ``on_corrupt='skip'`` is not used here: it replaces a bad sample with the
  next index, which in testing would count that other sample twice.
* **Removal is in the collate function** (:func:`drop_bad_samples_collate`,
  wrapping the config's own): the model and the evaluator only ever see good
  samples, so no model, metric or hook needs to know about bad files.
* **Bookkeeping is in the loop** (:class:`SkipBadSamplesTestLoop`): it collects
  the markers (from every process), skips a batch that had only bad samples,
  and computes the metrics over the samples that ran.  In a distributed run a
  dropped sample leaves the processes with different numbers of results, which
  MMEngine's ``collect_results`` would misalign (it interleaves the parts by
  position); the loop then gathers each result with its sample index instead,
  drops the padding repeats by index and computes each metric on process 0
  (:func:`evaluate_by_index`).

``tools/test.py`` puts the three in place (:func:`make_tolerant`);
``tools/benchmark.py`` uses the data set wrapper and :func:`evaluate_by_index`
in its own loop.
"""

import logging
import os
import os.path as osp
import pickle
import re
from typing import Any, Dict, List, Optional, Sequence, Union

import torch
from mmengine.dist import (
    all_gather_object,
    broadcast_object_list,
    get_dist_info,
)
from mmengine.evaluator import DumpResults
from mmengine.logging import print_log
from mmengine.registry import FUNCTIONS
from mmengine.runner import TestLoop

from ..registry import DATASETS, LOOPS, METRICS
from ..utils.fileio import atomic_write_bytes

__all__ = [
    'BAD_KEY',
    'SkipBadSamples',
    'drop_bad_samples_collate',
    'SkipBadSamplesTestLoop',
    'AtomicDumpResults',
    'evaluate_by_index',
    'file_error_reason',
    'check_image_complete',
    'make_tolerant',
    'is_bad',
]

BAD_KEY = '__bad_sample__'
PATH_KEYS = ('img_path', 'gt_path', 'seg_map_path', 'lq_path')
COLLATE_NAME = 'unirestore_mm_drop_bad_samples_collate'


# -----------------------------------------------------------------------------
# Recognising a bad file
# -----------------------------------------------------------------------------
def _one_line(err: BaseException) -> str:
    return ' '.join(str(err).split()) or type(err).__name__


def check_image_complete(path: str) -> None:
    """Raise ``CorruptImageError`` when a PNG or JPEG file is cut short.

    OpenCV decodes a truncated JPEG without an error (the missing rows come out
    grey; libjpeg only prints a warning), so a cut file would be restored and
    scored as if it were whole.  A complete JPEG has its end-of-image marker
    (``FF D9``) after its last start-of-scan (``FF DA``: entropy-coded data
    never holds ``FF D9``); a complete PNG has its ``IEND`` chunk (whose CRC is
    the constant ``AE 42 60 82``).  Other formats are not checked.
    """
    from ..datasets.transforms.transforms import CorruptImageError

    ext = osp.splitext(str(path))[1].lower()
    if ext not in ('.jpg', '.jpeg', '.png') or '://' in str(path):
        return
    with open(path, 'rb') as f:
        data = f.read()
    if ext == '.png':
        if data.startswith(b"\x89PNG") and b"IEND\xaeB`\x82" not in data:
            raise CorruptImageError(
                f'truncated image file {path}: a PNG without its IEND chunk '
                f'({len(data)} bytes)'
            )
    elif data.startswith(b'\xff\xd8') and data.rfind(b'\xff\xd9') < data.rfind(
        b'\xff\xda'
    ):
        raise CorruptImageError(
            f'truncated image file {path}: a JPEG without its end-of-image '
            f'marker ({len(data)} bytes)'
        )


def file_error_reason(
    err: BaseException, paths: Optional[Dict[str, str]] = None
) -> Optional[str]:
    """A one-line reason when ``err`` (or what caused it) is about the sample's
    files, else ``None`` (a bug).

    Uses the paired data sets' own classification
    (:func:`unirestore_mm.datasets.paired.file_error`); a
    ``CorruptSampleError`` from those data sets is judged by its cause."""
    from ..datasets.paired import CorruptSampleError, file_error

    while isinstance(err, CorruptSampleError) and err.__cause__ is not None:
        err = err.__cause__
    cause = file_error(err, dict(paths or {}))
    if cause is None:
        return None
    return f'{type(cause).__name__}: {_one_line(cause)}'


def is_bad(sample: Any) -> bool:
    return isinstance(sample, dict) and BAD_KEY in sample


# -----------------------------------------------------------------------------
# The data set wrapper
# -----------------------------------------------------------------------------
@DATASETS.register_module()
class SkipBadSamples(torch.utils.data.Dataset):
    """A test data set whose samples with bad files come out as markers
    (``{BAD_KEY: dict(index, path, reason)}``) instead of raising.

    Args:
        dataset: the data set or its config.  A ``PairedImageDataset`` config
            gets ``missing_gt='skip'`` (a degraded image without its clean file
            is listed as bad, not a reason to stop) and any data set with an
            ``on_corrupt`` attribute gets ``'raise'`` (its errors reach this
            wrapper; no replacement sample).
        indices: run only these indices of ``dataset`` (in this order), e.g.
            those whose outputs do not exist yet; ``None``: all.  The data
            samples keep the wrapped data set's ``sample_idx``.
        check_complete: also refuse PNG and JPEG files that are cut short
            (:func:`check_image_complete`).

    ``missing``: ``dict(index=-1, path, reason)`` of samples the wrapped data
    set left out when it was built (degraded images without a clean match).
    """

    def __init__(
        self,
        dataset: Union[dict, Any],
        indices: Optional[Sequence[int]] = None,
        check_complete: bool = True,
    ):
        if isinstance(dataset, dict):
            dataset = dict(dataset)
            if (
                str(dataset.get('type', '')).split('.')[-1]
                == 'PairedImageDataset'
            ):
                dataset['missing_gt'] = 'skip'
            dataset = DATASETS.build(dataset)
        self.dataset = dataset
        if hasattr(dataset, 'on_corrupt'):
            dataset.on_corrupt = 'raise'
        self.indices = None if indices is None else [int(i) for i in indices]
        self.check_complete = bool(check_complete)
        self.missing = [
            dict(index=-1, path=path, reason='no clean image to pair it with')
            for path in getattr(dataset, 'missing_gt_files', None) or []
        ]

    @property
    def metainfo(self) -> dict:
        return dict(getattr(self.dataset, 'metainfo', {}) or {})

    def full_init(self) -> None:
        if hasattr(self.dataset, 'full_init'):
            self.dataset.full_init()

    def __len__(self) -> int:
        return len(self.dataset) if self.indices is None else len(self.indices)

    def source_index(self, idx: int) -> int:
        return idx if self.indices is None else self.indices[idx]

    def paths(self, source_idx: int) -> Dict[str, str]:
        """The files of sample ``source_idx`` of the wrapped data set (``{}``
        when it does not say)."""
        try:
            info = self.dataset.get_data_info(source_idx)
        except Exception:  # noqa: BLE001 - a data set without file paths
            return {}
        return {k: str(info[k]) for k in PATH_KEYS if info.get(k)}

    def get_data_info(self, idx: int) -> dict:
        return self.dataset.get_data_info(self.source_index(idx))

    def __getitem__(self, idx: int):
        src = self.source_index(idx)
        try:
            data = self.dataset[src]
            if self.check_complete:
                for path in dict.fromkeys(self.paths(src).values()):
                    check_image_complete(path)
            return data
        # a bad file becomes a marker; anything else is raised
        except Exception as err:  # noqa: BLE001
            paths = self.paths(src)
            reason = file_error_reason(err, paths)
            if reason is None:
                raise
            # the file the reason names (the clean one of a pair may be the bad
            # one), else the degraded one
            named = [p for p in dict.fromkeys(paths.values()) if p in reason]
            path = (
                named
                or [
                    paths.get('img_path')
                    or paths.get('gt_path')
                    or f'sample {src}'
                ]
            )[0]
            return {BAD_KEY: dict(index=src, path=path, reason=reason)}


# -----------------------------------------------------------------------------
# Collate, loop, metric
# -----------------------------------------------------------------------------
@FUNCTIONS.register_module(name=COLLATE_NAME)
def drop_bad_samples_collate(
    data_batch: Sequence, collate_fn: Union[str, dict, None] = None
) -> dict:
    """``dict(batch=<the good samples collated by collate_fn>, bad=[markers])``;
    ``batch`` is ``None`` when the batch held only bad samples.
    ``collate_fn``: the config's own (a name or ``dict(type=...)``; default
    ``pseudo_collate``)."""
    bad = [d[BAD_KEY] for d in data_batch if is_bad(d)]
    good = [d for d in data_batch if not is_bad(d)]
    cfg = (
        dict(type='pseudo_collate')
        if collate_fn is None
        else (
            dict(type=collate_fn)
            if isinstance(collate_fn, str)
            else dict(collate_fn)
        )
    )
    fn_type = cfg.pop('type')
    fn = FUNCTIONS.get(fn_type) if isinstance(fn_type, str) else fn_type
    if fn is None:
        raise KeyError(f'collate function {fn_type!r} is not registered')
    return dict(batch=fn(good, **cfg) if good else None, bad=bad)


def _sample_indices(outputs: Sequence) -> List[Optional[int]]:
    out = []
    for s in outputs:
        meta = getattr(s, 'metainfo', None)
        if meta is None and isinstance(s, dict):
            meta = s
        idx = (meta or {}).get('sample_idx')
        out.append(None if idx is None else int(idx))
    return out


def evaluate_by_index(evaluator, indices: Sequence[Optional[int]]) -> dict:
    """Each metric of ``evaluator`` over its results gathered from every
    process, one per sample index (the first result of an index:
    ``DefaultSampler`` pads the last round with repeats), in index order,
    computed on process 0 and broadcast.  ``indices``: the sample index of each
    result this process holds, in order (every metric must hold exactly one
    result per sample)."""
    rank, _ = get_dist_info()
    if any(i is None for i in indices):
        raise RuntimeError(
            'evaluate_by_index: a data sample has no sample_idx in its '
            'metainfo; the results of the processes cannot be matched'
        )
    metrics: dict = {}
    for metric in evaluator.metrics:
        if len(metric.results) != len(indices):
            raise RuntimeError(
                f'{type(metric).__name__} holds {len(metric.results)} '
                f'results for {len(indices)} '
                'samples; evaluate_by_index needs one result per sample'
            )
        parts = all_gather_object(list(zip(indices, metric.results)))
        box = [None]
        if rank == 0:
            merged: Dict[int, Any] = {}
            for part in parts:
                for i, r in part:
                    merged.setdefault(i, r)
            from mmengine.evaluator.metric import _to_cpu

            values = metric.compute_metrics(
                _to_cpu([merged[i] for i in sorted(merged)])
            )
            if metric.prefix:
                values = {f'{metric.prefix}/{k}': v for k, v in values.items()}
            box = [values]
        broadcast_object_list(box, src=0)
        metric.results.clear()
        clash = set(box[0]) & set(metrics)
        if clash:
            raise ValueError(
                f'metrics {sorted(clash)} are given by two metrics; set a '
                'prefix on one of them'
            )
        metrics.update(box[0])
    return metrics


def gather_bad(bad: List[dict]) -> List[dict]:
    """Every process's bad-sample markers, one per sample index, sorted by
    index."""
    _, world = get_dist_info()
    parts = all_gather_object(list(bad)) if world > 1 else [bad]
    merged = {}
    for part in parts:
        for b in part:
            merged.setdefault((b['index'], b['path']), b)
    return [merged[k] for k in sorted(merged, key=lambda k: (k[0], k[1]))]


@LOOPS.register_module()
class SkipBadSamplesTestLoop(TestLoop):
    """MMEngine's ``TestLoop`` over a :class:`SkipBadSamples` data set and
    :func:`drop_bad_samples_collate`.

    After :meth:`run`: ``bad_samples`` (``dict(index, path, reason)`` of every
    process, sorted) and ``num_ran`` (samples that went through the model and
    the metrics).  A batch of bad samples only is skipped (no hook sees it).
    The metrics are computed over the samples that ran; ``{}`` when none did.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.bad_samples: List[dict] = []
        self.num_ran = 0

    def run(self) -> dict:
        self.runner.call_hook('before_test')
        self.runner.call_hook('before_test_epoch')
        self.runner.model.eval()
        self.test_loss.clear()
        # left out when it was built
        bad: List[dict] = list(getattr(self.dataloader.dataset, 'missing', []))
        indices: List[Optional[int]] = []
        for idx, packed in enumerate(self.dataloader):
            if not (
                isinstance(packed, dict) and set(packed) == {'batch', 'bad'}
            ):
                raise TypeError(
                    'SkipBadSamplesTestLoop needs the data loader\'s '
                    'collate_fn to be '
                    f'{COLLATE_NAME} (set by tools/test.py)'
                )
            for b in packed['bad']:
                print_log(
                    f'skipping a bad file: {b["path"]}: {b["reason"]}',
                    logger='current',
                    level=logging.WARNING,
                )
            bad.extend(packed['bad'])
            if packed['batch'] is None:
                continue
            self.run_iter(idx, packed['batch'])
            indices.extend(self._last_indices)
        _, world = get_dist_info()
        self.bad_samples = gather_bad(bad)
        # unique samples over every process (the sampler pads the last round
        # with repeats)
        if world > 1:
            every = [
                i for part in all_gather_object(list(indices)) for i in part
            ]
            self.num_ran = len(set(every)) if None not in every else len(every)
        else:
            self.num_ran = len(indices)
        if self.num_ran == 0:
            print_log(
                'no sample could be tested: no metrics',
                logger='current',
                level=logging.WARNING,
            )
            metrics: dict = {}
            for metric in self.evaluator.metrics:
                metric.results.clear()
        elif world > 1 and self.bad_samples:
            metrics = evaluate_by_index(self.evaluator, indices)
        else:
            metrics = self.evaluator.evaluate(len(self.dataloader.dataset))
        if self.test_loss:
            from mmengine.runner.loops import _parse_losses

            metrics.update(_parse_losses(self.test_loss, 'test'))
        self.runner.call_hook('after_test_epoch', metrics=metrics)
        self.runner.call_hook('after_test')
        return metrics

    @torch.no_grad()
    def run_iter(self, idx, data_batch) -> None:
        from mmengine.runner.amp import autocast
        from mmengine.runner.loops import _update_losses

        self.runner.call_hook(
            'before_test_iter', batch_idx=idx, data_batch=data_batch
        )
        with autocast(enabled=self.fp16):
            outputs = self.runner.model.test_step(data_batch)
        outputs, self.test_loss = _update_losses(outputs, self.test_loss)
        self.evaluator.process(data_samples=outputs, data_batch=data_batch)
        self._last_indices = _sample_indices(outputs)
        self.runner.call_hook(
            'after_test_iter',
            batch_idx=idx,
            data_batch=data_batch,
            outputs=outputs,
        )


@METRICS.register_module()
class AtomicDumpResults(DumpResults):
    """MMEngine's ``DumpResults`` (the predictions as a pickle file), written
    atomically: a temporary file in the same folder, then a rename, so an
    interrupted run never leaves a cut pickle."""

    def compute_metrics(self, results: list) -> dict:
        atomic_write_bytes(
            pickle.dumps(results, protocol=pickle.HIGHEST_PROTOCOL),
            self.out_file_path,
        )
        print_log(
            f'Results has been saved to {self.out_file_path}.',
            logger='current',
        )
        return {}


# -----------------------------------------------------------------------------
# What tools/test.py does to a config
# -----------------------------------------------------------------------------
def make_tolerant(cfg, indices: Optional[Sequence[int]] = None) -> None:
    """Wrap ``cfg.test_dataloader.dataset`` in :class:`SkipBadSamples`
    (``indices``: only these), its collate function in
    :func:`drop_bad_samples_collate` and the test loop in
    :class:`SkipBadSamplesTestLoop` (keeping the config's ``test_cfg`` options,
    e.g. ``fp16``)."""
    loader = cfg.test_dataloader
    loader['dataset'] = dict(
        type='unirestore_mm.SkipBadSamples',
        dataset=loader['dataset'],
        indices=None if indices is None else list(indices),
    )
    inner = loader.get('collate_fn')
    loader['collate_fn'] = dict(type=COLLATE_NAME, collate_fn=inner)
    test_cfg = dict(cfg.get('test_cfg') or {})
    loop_type = str(test_cfg.get('type', 'TestLoop')).split('.')[-1]
    if loop_type not in ('TestLoop', 'SkipBadSamplesTestLoop'):
        raise ValueError(
            f'test_cfg type {test_cfg["type"]!r}: only MMEngine\'s TestLoop '
            'can skip bad files'
        )
    test_cfg['type'] = 'unirestore_mm.SkipBadSamplesTestLoop'
    cfg.test_cfg = test_cfg


def picture_names(dataset: SkipBadSamples) -> Dict[int, str]:
    """The file name the test pictures (``RestorationVisualizationHook``) give
    each sample of the wrapped data set, in a run over all of it: the stem of
    ``img_path`` (else ``gt_path``; else the index), a repeat of a stem taking
    ``<stem>_<index>``."""
    names, seen = {}, set()
    for i in range(len(dataset.dataset)):
        paths = dataset.paths(i)
        path = paths.get('img_path') or paths.get('gt_path')
        name = osp.splitext(osp.basename(path))[0] if path else str(i)
        if name in seen:
            name = f'{name}_{i}'
        seen.add(name)
        names[i] = name + '.png'
    return names


def pending_indices(dataset: SkipBadSamples, folder: str) -> List[int]:
    """Indices of the wrapped data set whose test picture is not in ``folder``
    yet (what ``--skip-existing`` runs)."""
    return [
        i
        for i, name in picture_names(dataset).items()
        if not osp.isfile(osp.join(folder, name))
    ]


_TMP_NAME = re.compile(r'^\.(?P<name>.+)\.(?P<pid>\d+)(\.[0-9a-f]+)?\.tmp$')


def remove_stale_tmp(folder: str) -> List[str]:
    """Remove the temporary files that killed atomic writers left in ``folder``
    (``.<name>.<pid>[.<random>].tmp`` of a process that is gone); returns their
    names.  Files of a live process are kept."""
    removed = []
    if not osp.isdir(folder):
        return removed
    for f in sorted(os.listdir(folder)):
        m = _TMP_NAME.match(f)
        if m is None or int(m.group('pid')) == os.getpid():
            continue
        try:
            os.kill(int(m.group('pid')), 0)
            continue  # its writer is alive
        except ProcessLookupError:
            pass
        except (PermissionError, OverflowError):
            continue
        try:
            os.remove(osp.join(folder, f))
            removed.append(f)
        except FileNotFoundError:
            pass
    return removed
