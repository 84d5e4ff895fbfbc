"""Evaluate restorers for people and for recognizers on one degraded test set
(the demo's table).

For every corruption (at one severity, each image with its own fixed seed) and
every *row* (the degraded input, a restorer under a prompt, the clean input,
the clean input restored) this computes PSNR and SSIM against the clean image,
top-1 of each classifier and mIoU of each segmenter.  Top-1 goes through
mmpretrain's ``Accuracy`` and mIoU through mmseg's ``IoUMetric`` (their own
code, fed per corruption), the recognizers through
:class:`~unirestore_mm.models.Recognizer` (each with its own normalisation).

Results are kept per (row, seed, corruption) cell in a JSON-lines file, so an
interrupted evaluation goes on where it stopped; :func:`summarise` turns the
cells into the table (mean over corruptions, then mean and spread over the
restorer's training seeds), and :func:`write_tables` writes Markdown, CSV (with
the per-corruption breakdown) and JSON.
"""

import csv
import json
import os
import os.path as osp
from dataclasses import dataclass, field
from typing import (
    Callable,
    Dict,
    Iterable,
    List,
    Mapping,
    Optional,
    Sequence,
    Tuple,
)

import numpy as np
import torch

from ..datasets.transforms.degradations import corrupt, sample_seed
from ..utils.fileio import atomic_write_text
from .metrics import psnr, ssim

__all__ = [
    'Row',
    'degrade_set',
    'restore_with_prompts',
    'evaluate_rows',
    'summarise',
    'write_tables',
    'load_cells',
]


@dataclass
class Row:
    """One row of the table.

    ``name``: its label; ``source``: ``'degraded'`` or ``'clean'`` (what goes
    in); ``restorer``: ``None`` (the input as it is) or a key of the restorers
    given to :func:`evaluate_rows`; ``task``: the prompt.
    """

    name: str
    source: str = 'degraded'
    restorer: Optional[str] = None
    task: Optional[str] = None
    seeds: Tuple[int, ...] = field(default_factory=tuple)


def degrade_set(
    images: np.ndarray, corruption: str, severity: int = 3, seed: int = 0
) -> np.ndarray:
    """``images`` (N, H, W, 3) RGB uint8 -> the same degraded; image ``i`` uses
    seed ``(seed, corruption, i)``."""
    return np.stack(
        [
            corrupt(
                img, corruption, severity, rng=sample_seed(seed, corruption, i)
            )
            for i, img in enumerate(images)
        ]
    )


def to_tensor(images: np.ndarray) -> torch.Tensor:
    """(N, H, W, 3) uint8 -> (N, 3, H, W) float in [0, 1]."""
    return (
        torch.from_numpy(np.ascontiguousarray(images))
        .permute(0, 3, 1, 2)
        .float()
        / 255.0
    )


@torch.no_grad()
def restore_with_prompts(
    model, images: torch.Tensor, tasks: Sequence[str], seed: int = 0
) -> Dict[str, torch.Tensor]:
    """Restore ``images`` (B, 3, H, W in [0, 1], sizes a multiple of the
    restorer's divisor) under several prompts from one encoding and one sampled
    latent: what ``model.restore(images, task, seed=seed)`` gives for each
    task, at the cost of one encoder and UNet pass."""
    if (
        images.shape[-1] % model.size_divisor
        or images.shape[-2] % model.size_divisor
    ):
        return {t: model.restore(images, task=t, seed=seed) for t in tasks}
    gen = torch.Generator(device=images.device).manual_seed(int(seed))
    enc = model.encode(images, generator=gen)
    latent = model.sample(enc.latent, num_steps=1, generator=gen)
    return {t: model.decode(latent, enc.skips, t).clamp(0, 1) for t in tasks}


def _accuracy(logits: torch.Tensor, labels: torch.Tensor) -> float:
    from mmpretrain.evaluation import Accuracy

    return float(Accuracy.calculate(logits, labels, topk=(1,))[0][0])


def _miou(
    pred: torch.Tensor,
    masks: torch.Tensor,
    num_classes: int,
    ignore_index: int = 255,
) -> float:
    from mmseg.evaluation import IoUMetric

    metric = IoUMetric(
        iou_metrics=['mIoU'], ignore_index=ignore_index, prefix='mIoU'
    )
    totals = [torch.zeros(num_classes, dtype=torch.float64) for _ in range(4)]
    for p, m in zip(pred, masks):
        for acc, v in zip(
            totals, metric.intersect_and_union(p, m, num_classes, ignore_index)
        ):
            acc += v.double()
    iou = metric.total_area_to_metrics(*totals, ['mIoU'])['IoU']
    return float(np.nanmean(iou) * 100)


def _batches(n: int, size: int) -> Iterable[slice]:
    for i in range(0, n, size):
        yield slice(i, min(i + size, n))


def load_cells(path: str) -> List[dict]:
    """The cells written so far (a partly written last line, from a killed run,
    is dropped)."""
    cells = []
    if osp.isfile(path):
        with open(path, encoding='utf-8') as f:
            for line in f:
                try:
                    cells.append(json.loads(line))
                except ValueError:
                    break
    return cells


def evaluate_rows(
    rows: Sequence[Row],
    clean: np.ndarray,
    labels: np.ndarray,
    masks: np.ndarray,
    corruptions: Sequence[str],
    restorers: Mapping[Tuple[str, int], Callable[[], object]],
    classifiers: Mapping[str, object],
    segmenters: Mapping[str, object],
    cells_path: str,
    severity: int = 3,
    seed: int = 0,
    batch_size: int = 100,
    progress: Optional[Callable[[str], None]] = None,
) -> List[dict]:
    """Fill ``cells_path`` with one JSON line per (row, restorer seed,
    corruption) and return all cells.

    ``clean`` (N, H, W, 3) RGB uint8, ``labels`` (N,), ``masks`` (N, H, W);
    ``restorers`` maps (name, seed) to a function that builds the restorer
    (called only for cells still missing); ``classifiers`` and ``segmenters``
    map a column name to a :class:`~unirestore_mm.models.Recognizer`.
    """
    os.makedirs(osp.dirname(osp.abspath(cells_path)), exist_ok=True)
    kept = load_cells(cells_path)
    # a run killed while writing leaves a cut last line: keep only the whole
    # cells before appending new ones
    _atomic_text(cells_path, ''.join(json.dumps(c) + '\n' for c in kept))
    done = {(c['row'], c['seed'], c['corruption']) for c in kept}
    clean_t = to_tensor(clean)
    labels_t = torch.as_tensor(labels).long()
    masks_t = torch.as_tensor(masks).long()
    built: Dict[Tuple[str, int], object] = {}
    degraded_cache: Dict[str, torch.Tensor] = {}

    def degraded(name: str) -> torch.Tensor:
        if name not in degraded_cache:
            degraded_cache[name] = to_tensor(
                degrade_set(clean, name, severity, seed)
            )
        return degraded_cache[name]

    # rows that share a restorer and a source are restored together (one
    # encoding, several prompts)
    groups: Dict[Tuple[Optional[str], str, int], List[Row]] = {}
    for row in rows:
        for s in (row.seeds or (0,)) if row.restorer else (0,):
            groups.setdefault((row.restorer, row.source, s), []).append(row)
    with open(cells_path, 'a', encoding='utf-8') as out:
        for (rname, source, s), group in groups.items():
            for corruption in (
                corruptions if source == 'degraded' else ('none',)
            ):
                todo = [
                    r for r in group if (r.name, s, corruption) not in done
                ]
                if not todo:
                    continue
                x = degraded(corruption) if source == 'degraded' else clean_t
                if rname is None:
                    outputs = {r.name: x for r in todo}
                else:
                    if (rname, s) not in built:
                        built[(rname, s)] = restorers[(rname, s)]()
                    model = built[(rname, s)]
                    tasks = list(dict.fromkeys(r.task for r in todo))
                    parts: Dict[str, List[torch.Tensor]] = {
                        t: [] for t in tasks
                    }
                    for sl in _batches(len(x), batch_size):
                        for t, y in restore_with_prompts(
                            model, x[sl], tasks, seed=seed
                        ).items():
                            parts[t].append(y)
                    restored = {t: torch.cat(v) for t, v in parts.items()}
                    outputs = {r.name: restored[r.task] for r in todo}
                for row in todo:
                    y = outputs[row.name]
                    # PSNR of an image with itself: none
                    identical = source == 'clean' and rname is None
                    cell = dict(
                        row=row.name,
                        seed=s,
                        corruption=corruption,
                        psnr=None
                        if identical
                        else float(psnr(y, clean_t).mean()),
                        ssim=None
                        if identical
                        else float(ssim(y, clean_t).mean()),
                    )
                    with torch.no_grad():
                        for col, rec in classifiers.items():
                            logits = torch.cat(
                                [
                                    rec.logits(y[sl])
                                    for sl in _batches(len(y), batch_size)
                                ]
                            )
                            cell[f'top1/{col}'] = _accuracy(logits, labels_t)
                        for col, rec in segmenters.items():
                            pred = torch.cat(
                                [
                                    rec.logits(y[sl]).argmax(1)
                                    for sl in _batches(len(y), batch_size)
                                ]
                            )
                            cell[f'miou/{col}'] = _miou(
                                pred,
                                masks_t,
                                rec.num_classes,
                                rec.ignore_index,
                            )
                    out.write(json.dumps(cell) + '\n')
                    out.flush()
                    done.add((row.name, s, corruption))
                    if progress is not None:
                        shown = (
                            'n/a'
                            if cell['psnr'] is None
                            else f'{cell["psnr"]:.2f}'
                        )
                        progress(
                            f'{row.name} seed {s} {corruption}: PSNR {shown}'
                        )
    return load_cells(cells_path)


def summarise(
    cells: Sequence[dict], rows: Sequence[Row]
) -> Tuple[List[str], List[dict]]:
    """Per row: each metric's mean over corruptions, then mean and spread (half
    the range) over seeds."""
    metrics = [
        k
        for k in (cells[0] if cells else {})
        if k not in ('row', 'seed', 'corruption')
    ]
    table = []
    for row in rows:
        mine = [c for c in cells if c['row'] == row.name]
        entry = dict(
            row=row.name,
            seeds=sorted({c['seed'] for c in mine}) if row.restorer else [],
        )
        for m in metrics:
            per_seed = []
            for s in sorted({c['seed'] for c in mine}):
                vals = [
                    c[m] for c in mine if c['seed'] == s and c[m] is not None
                ]
                if vals:
                    per_seed.append(float(np.mean(vals)))
            entry[m] = float(np.mean(per_seed)) if per_seed else None
            entry[m + '/spread'] = (
                float((max(per_seed) - min(per_seed)) / 2)
                if len(per_seed) > 1
                else 0.0
            )
        table.append(entry)
    return metrics, table


def write_tables(
    out_dir: str,
    metrics: Sequence[str],
    table: Sequence[dict],
    cells: Sequence[dict],
    header: str = '',
) -> Dict[str, str]:
    """``table.md``, ``table.csv`` (one line per row, then the per-corruption
    breakdown) and ``table.json``."""
    os.makedirs(out_dir, exist_ok=True)
    paths = {k: osp.join(out_dir, f'table.{k}') for k in ('md', 'csv', 'json')}

    def fmt(entry, m):
        v, spread = entry[m], entry[m + '/spread']
        if v is None:
            return '–'
        digits = 3 if m == 'ssim' else 2
        return f'{v:.{digits}f}' + (
            f' ± {spread:.{digits}f}'
            if entry['seeds'] and len(entry['seeds']) > 1
            else ''
        )

    names = {'psnr': 'PSNR', 'ssim': 'SSIM'}
    cols = [
        names.get(m, m.replace('top1/', 'top-1 ').replace('miou/', 'mIoU '))
        for m in metrics
    ]
    lines = [header] if header else []
    lines += [
        '| row | ' + ' | '.join(cols) + ' |',
        '|---|' + '---|' * len(cols),
    ]
    lines += [
        '| ' + e['row'] + ' | ' + ' | '.join(fmt(e, m) for m in metrics) + ' |'
        for e in table
    ]
    _atomic_text(paths['md'], '\n'.join(lines) + '\n')

    import io

    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(['row', 'seed', 'corruption'] + list(metrics))
    for e in table:
        w.writerow([e['row'], 'mean', 'mean'] + [_num(e[m]) for m in metrics])
    for c in cells:
        w.writerow(
            [c['row'], c['seed'], c['corruption']]
            + [_num(c[m]) for m in metrics]
        )
    _atomic_text(paths['csv'], buf.getvalue())
    _atomic_text(
        paths['json'],
        json.dumps(
            dict(metrics=list(metrics), table=list(table), cells=list(cells)),
            indent=1,
        )
        + '\n',
    )
    return paths


def _num(v) -> str:
    return '' if v is None else f'{v:.4f}'


def _atomic_text(path: str, text: str) -> None:
    """``atomic_write_text`` with the arguments in this module's order
    (``apis.benchmark`` imports it)."""
    atomic_write_text(text, path)
