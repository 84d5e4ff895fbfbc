"""Batches drawn from several task datasets with sampling weights (stage 2 of
DESIGN §3).

* :class:`MultiTaskDataset` concatenates one dataset per task (``ir``, ``cls``,
  ``seg``, ...) and writes the task name into each sample's metainfo
  (``data_samples.task``).
* :class:`TaskBatchSampler` makes every batch single-task: it picks the task of
  each batch at random with probability proportional to
  ``len(dataset) * weight`` (the weights are per sample, as in the paper's 0.2
  / 10 / 1 for the ImageNet subset, Foggy Cityscapes and the stage-1 set), then
  takes the next ``batch_size`` indices of that task's own reshuffled stream.
  The stream depends only on the seed and the batch count, so ``--resume``
  (which replays the batch count) sees the same batches.  Under ``torchrun``
  every process draws the same task sequence (so the same modules run
  everywhere) and its own samples.

Config::

    train_dataloader = dict(
        batch_size=6, num_workers=4,
        sampler=dict(type='DefaultSampler', shuffle=False),      # replaced by the batch sampler's order
        batch_sampler=dict(type='unirestore_mm.TaskBatchSampler'),
        dataset=dict(type='unirestore_mm.MultiTaskDataset',
                     datasets=dict(ir=..., cls=..., seg=...), weights=dict(ir=1, cls=0.2, seg=10)))
"""  # noqa: E501

import bisect
from typing import Dict, Iterator, List, Mapping, Optional, Union

import numpy as np
from mmengine.dataset import BaseDataset
from mmengine.dist import get_dist_info, sync_random_seed
from torch.utils.data import BatchSampler, Sampler

from ..registry import DATA_SAMPLERS, DATASETS


@DATASETS.register_module()
class MultiTaskDataset:
    """One dataset per task, concatenated; samples carry ``task`` in their
    metainfo.

    Args:
        datasets: ``{task: dataset config or dataset}``.
        weights: ``{task: per-sample sampling weight}`` (default 1 each); read
            by :class:`TaskBatchSampler`.
    """

    def __init__(
        self,
        datasets: Mapping[str, Union[dict, BaseDataset]],
        weights: Optional[Mapping[str, float]] = None,
        lazy_init: bool = False,
    ):
        if not datasets:
            raise ValueError(
                'MultiTaskDataset needs at least one task dataset, e.g. '
                'datasets=dict(ir=...)'
            )
        weights = dict(weights or {})
        unknown = set(weights) - set(datasets)
        if unknown:
            raise ValueError(
                'MultiTaskDataset: weights for tasks without a dataset: '
                f'{sorted(unknown)}; tasks: {list(datasets)}'
            )
        self.tasks: List[str] = list(datasets)
        self.datasets = {}
        for task, cfg in datasets.items():
            self.datasets[task] = (
                DATASETS.build(cfg) if isinstance(cfg, dict) else cfg
            )
        self.weights = {t: float(weights.get(t, 1.0)) for t in self.tasks}
        if any(w < 0 for w in self.weights.values()) or not any(
            self.weights.values()
        ):
            raise ValueError(
                'MultiTaskDataset: weights must be >= 0 and not all zero; '
                f'got {self.weights}'
            )
        self._metainfo = dict(
            tasks=list(self.tasks),
            task_metainfo={
                t: dict(getattr(d, 'metainfo', None) or {})
                for t, d in self.datasets.items()
            },
        )
        self._fully_initialized = False
        if not lazy_init:
            self.full_init()

    def full_init(self):
        if self._fully_initialized:
            return
        for d in self.datasets.values():
            if hasattr(d, 'full_init'):
                d.full_init()
        self.lengths = [len(self.datasets[t]) for t in self.tasks]
        empty = [t for t, n in zip(self.tasks, self.lengths) if n == 0]
        if empty:
            raise ValueError(
                f'MultiTaskDataset: the datasets of tasks {empty} are empty'
            )
        self.offsets = np.cumsum([0] + self.lengths).tolist()
        self._fully_initialized = True

    @property
    def metainfo(self) -> dict:
        return self._metainfo

    def __len__(self) -> int:
        self.full_init()
        return self.offsets[-1]

    def task_range(self, task: str) -> range:
        self.full_init()
        i = self.tasks.index(task)
        return range(self.offsets[i], self.offsets[i + 1])

    def locate(self, idx: int):
        self.full_init()
        if idx < 0:
            idx += len(self)
        i = bisect.bisect_right(self.offsets, idx) - 1
        return self.tasks[i], idx - self.offsets[i]

    def get_data_info(self, idx: int) -> dict:
        task, local = self.locate(idx)
        info = dict(self.datasets[task].get_data_info(local))
        info['task'] = task
        return info

    def __getitem__(self, idx: int):
        task, local = self.locate(idx)
        data = self.datasets[task][local]
        samples = data.get('data_samples') if isinstance(data, dict) else None
        if samples is not None:
            if isinstance(samples, (list, tuple)):
                for s in samples:
                    s.set_metainfo(dict(task=task))
            else:
                samples.set_metainfo(dict(task=task))
        elif isinstance(data, dict):
            data['task'] = task
        return data

    def __repr__(self) -> str:
        parts = ', '.join(
            f'{t}: {n} x {self.weights[t]}'
            for t, n in zip(self.tasks, self.lengths)
        )
        return f'{type(self).__name__}({parts})'


@DATA_SAMPLERS.register_module()
class TaskBatchSampler(BatchSampler):
    """Single-task batches from a :class:`MultiTaskDataset`, tasks drawn by
    ``len * weight`` (see module doc).

    It is infinite in effect (``__len__`` reports one pass over the data, as
    mmengine's iteration loop expects, and the stream simply goes on).
    """

    def __init__(
        self,
        sampler: Sampler,
        batch_size: int,
        drop_last: bool = True,
        seed: Optional[int] = None,
        weights: Optional[Mapping[str, float]] = None,
    ):
        dataset = getattr(sampler, 'dataset', None) or getattr(
            sampler, 'data_source', None
        )
        if not isinstance(dataset, MultiTaskDataset):
            raise TypeError(
                'TaskBatchSampler needs a MultiTaskDataset (dataset=dict(type='
                "'unirestore_mm.MultiTaskDataset', ...)); got "
                f"{type(dataset).__name__}"
            )
        if batch_size < 1:
            raise ValueError(f'batch_size must be >= 1, got {batch_size}')
        self.sampler, self.dataset, self.batch_size = (
            sampler,
            dataset,
            batch_size,
        )
        self.rank, self.world_size = get_dist_info()
        if seed is None:
            seed = getattr(sampler, 'seed', None)
        self.seed = sync_random_seed() if seed is None else int(seed)
        dataset.full_init()
        w = dict(dataset.weights, **(weights or {}))
        mass = np.array(
            [n * w[t] for t, n in zip(dataset.tasks, dataset.lengths)],
            dtype=np.float64,
        )
        if mass.sum() <= 0:
            raise ValueError(
                f'TaskBatchSampler: all task weights are zero ({w})'
            )
        self.probs = mass / mass.sum()

    def task_probabilities(self) -> Dict[str, float]:
        return dict(zip(self.dataset.tasks, self.probs.tolist()))

    def __iter__(self) -> Iterator[List[int]]:
        # one generator for the task sequence (the same on every process), one
        # per task for its samples
        task_rng = np.random.default_rng([self.seed, 0])
        streams = {
            t: _TaskStream(
                self.dataset.task_range(t),
                np.random.default_rng([self.seed, 1 + i]),
                self.rank,
                self.world_size,
            )
            for i, t in enumerate(self.dataset.tasks)
        }
        while True:
            task = self.dataset.tasks[
                int(task_rng.choice(len(self.probs), p=self.probs))
            ]
            yield [streams[task].next() for _ in range(self.batch_size)]

    def __len__(self) -> int:
        return max(len(self.dataset) // (self.batch_size * self.world_size), 1)


class _TaskStream:
    """Endless reshuffled passes over one task's indices; process ``rank``
    takes every ``world``-th."""

    def __init__(
        self, indices: range, rng: np.random.Generator, rank: int, world: int
    ):
        self.indices, self.rng, self.rank, self.world = (
            np.asarray(indices),
            rng,
            rank,
            world,
        )
        self.order: List[int] = []

    def next(self) -> int:
        if not self.order:
            perm = self.indices[self.rng.permutation(len(self.indices))]
            if len(perm) < self.world:
                perm = np.resize(perm, self.world)
            self.order = perm[self.rank :: self.world].tolist()[::-1]
        return int(self.order.pop())
