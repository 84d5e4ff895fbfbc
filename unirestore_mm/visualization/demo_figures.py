"""Pictures of the demo: image grids per corruption family, segmentation
overlays, and a bar chart."""

import os
import os.path as osp
from typing import Dict, Sequence

import numpy as np
import torch

from ..datasets.embedded import EMBEDDED_PALETTE
from ..evaluation.task_benchmark import (
    degrade_set,
    restore_with_prompts,
    to_tensor,
)
from ..utils.fileio import atomic_write_bytes

__all__ = ['FAMILIES', 'image_grids', 'bar_chart']

# one corruption per family (ImageNet-C's noise, blur, weather and digital
# families, and adverse weather)
FAMILIES = (
    ('noise', 'gaussian_noise'),
    ('blur', 'motion_blur'),
    ('weather', 'snow'),
    ('digital', 'contrast'),
    ('rain', 'rain_streaks'),
    ('haze', 'haze'),
    ('low light', 'low_light'),
)
# 32-pixel images are drawn 4x larger (nearest neighbour), so pixels stay
# visible
SCALE = 4


def _u8(x: torch.Tensor) -> np.ndarray:
    return (x.clamp(0, 1) * 255).round().byte().permute(1, 2, 0).numpy()


def _big(img: np.ndarray) -> np.ndarray:
    return np.repeat(np.repeat(img, SCALE, axis=0), SCALE, axis=1)


def _overlay(img: np.ndarray, mask: np.ndarray) -> np.ndarray:
    palette = np.asarray(EMBEDDED_PALETTE, np.float32)
    color = palette[np.clip(mask, 0, len(palette) - 1)]
    fg = (mask > 0)[..., None]
    out = np.where(
        fg,
        0.45 * img.astype(np.float32) + 0.55 * color,
        img.astype(np.float32),
    )
    return out.clip(0, 255).astype(np.uint8)


def _save_figure(fig, path: str) -> str:
    """Lay out, render to PNG and write ``path`` atomically (a reader never
    sees half a picture)."""
    import io

    import matplotlib.pyplot as plt

    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format='png', dpi=100)
    plt.close(fig)
    atomic_write_bytes(buf.getvalue(), path)
    return path


def _save_grid(
    path: str,
    tiles: Sequence[Sequence[np.ndarray]],
    col_titles: Sequence[str],
    row_titles: Sequence[str],
) -> str:
    import matplotlib

    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    rows, cols = len(tiles), len(tiles[0])
    h, w = tiles[0][0].shape[:2]
    tile = 1.6  # inches for the long side of a tile, whatever the image size
    fig, axes = plt.subplots(
        rows,
        cols,
        figsize=(
            tile * cols * w / max(h, w) + 0.6,
            tile * rows * h / max(h, w) + 0.4,
        ),
        squeeze=False,
    )
    for r in range(rows):
        for c in range(cols):
            ax = axes[r][c]
            ax.imshow(tiles[r][c], interpolation='nearest')
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(col_titles[c], fontsize=8)
            if c == 0:
                ax.set_ylabel(row_titles[r], fontsize=8)
    return _save_figure(fig, path)


@torch.no_grad()
def image_grids(
    clean: np.ndarray,
    masks: np.ndarray,
    baseline,
    unirestore,
    segmenter,
    out_dir: str,
    index: int = 0,
    seed: int = 0,
) -> Dict[str, str]:
    """``grid.png``: degraded | restoration-only | ir | cls | seg | clean, one
    row per corruption family; ``grid_seg.png``: the seen segmenter's masks on
    degraded, restoration-only, ``seg`` and clean input, and the ground truth.
    Test image ``index`` of each family's corruption at severity 3 (the table's
    seeds)."""
    os.makedirs(out_dir, exist_ok=True)
    img = clean[index : index + 1]
    gt = to_tensor(img)
    rows, seg_rows = [], []
    for _, corruption in FAMILIES:
        x = to_tensor(degrade_set(img, corruption, 3, seed))
        base = restore_with_prompts(baseline, x, ['ir'], seed=seed)['ir']
        ours = restore_with_prompts(
            unirestore, x, ['ir', 'cls', 'seg'], seed=seed
        )
        rows.append(
            [
                _big(_u8(t[0]))
                for t in (x, base, ours['ir'], ours['cls'], ours['seg'], gt)
            ]
        )
        preds = [
            segmenter.logits(t).argmax(1)[0].numpy()
            for t in (x, base, ours['seg'], gt)
        ]
        views = [_u8(t[0]) for t in (x, base, ours['seg'], gt)]
        seg_rows.append(
            [_big(_overlay(v, p)) for v, p in zip(views, preds)]
            + [_big(_overlay(_u8(gt[0]), masks[index]))]
        )
    names = [f'{fam}\n({c})' for fam, c in FAMILIES]
    grid = _save_grid(
        osp.join(out_dir, 'grid.png'),
        rows,
        [
            'degraded',
            'restoration-only',
            'UniRestore ir',
            'UniRestore cls',
            'UniRestore seg',
            'clean',
        ],
        names,
    )
    grid_seg = _save_grid(
        osp.join(out_dir, 'grid_seg.png'),
        seg_rows,
        [
            'on degraded',
            'on restoration-only',
            'on UniRestore seg',
            'on clean',
            'ground truth',
        ],
        names,
    )
    return dict(grid=grid, grid_seg=grid_seg)


def bar_chart(table: Sequence[dict], metrics: Sequence[str], path: str) -> str:
    """Top-1 of each classifier and mIoU of each segmenter per row, with the
    seed spread as error bars."""
    import matplotlib

    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    cols = [m for m in metrics if m.startswith(('top1/', 'miou/'))]
    fig, ax = plt.subplots(figsize=(11, 4.5))
    width = 0.8 / len(table)
    xs = np.arange(len(cols))
    for i, entry in enumerate(table):
        vals = [entry[m] for m in cols]
        err = [entry[m + '/spread'] for m in cols]
        ax.bar(
            xs + (i - (len(table) - 1) / 2) * width,
            vals,
            width,
            yerr=err,
            capsize=2,
            label=entry['row'],
        )
    ax.set_xticks(xs)
    ax.set_xticklabels(
        [
            m.replace('top1/', 'top-1\n').replace('miou/', 'mIoU\n')
            for m in cols
        ],
        fontsize=8,
    )
    ax.set_ylabel('%')
    ax.set_ylim(0, 100)
    ax.legend(fontsize=7, ncol=2)
    ax.set_title('Embedded test set, severity 3, mean over corruptions')
    return _save_figure(fig, path)
