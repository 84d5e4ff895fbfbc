"""Pictures of ``tools/benchmark.py``: bars per corruption, corruption ×
severity heat maps, and image grids."""

import os.path as osp
import re
from typing import Dict, List, Sequence

import numpy as np

from .demo_figures import _save_figure, _save_grid

__all__ = ['benchmark_bars', 'benchmark_heatmaps', 'benchmark_grid']


def _plt():
    import matplotlib

    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    return plt


def _safe(name: str) -> str:
    return re.sub(r'[^A-Za-z0-9_.-]+', '_', name).strip('_')


def _synthetic(cells: Sequence[dict]) -> List[dict]:
    return [
        c for c in cells if c['condition'] not in ('clean/0', 'as-given/0')
    ]


def benchmark_bars(
    cells: Sequence[dict],
    rows: Sequence[str],
    metrics: Sequence[str],
    path: str,
) -> str:
    """One panel per metric: per corruption (mean over severities), a bar per
    row; the clean row as a line."""
    plt = _plt()
    synth = _synthetic(cells)
    corruptions = list(dict.fromkeys(c['corruption'] for c in synth)) or [
        'as-given'
    ]
    metrics = [m for m in metrics if any(c.get(m) is not None for c in cells)]
    bar_rows = [
        r
        for r in rows
        if any(c['row'] == r and c['condition'] != 'clean/0' for c in cells)
    ]
    width_in = min(
        20.0, max(6.0, 0.2 * len(corruptions) * max(1, len(bar_rows)) + 2.0)
    )
    fig, axes = plt.subplots(
        len(metrics),
        1,
        figsize=(width_in, 2.4 * len(metrics) + 0.6),
        squeeze=False,
    )
    width = 0.8 / max(1, len(bar_rows))
    for ax, m in zip(axes[:, 0], metrics):
        x = np.arange(len(corruptions))
        for i, row in enumerate(bar_rows):
            vals = []
            for k in corruptions:
                v = [
                    c[m]
                    for c in cells
                    if c['row'] == row
                    and c.get(m) is not None
                    and (
                        c['corruption'] == k
                        or (k == 'as-given' and c['condition'] == 'as-given/0')
                    )
                ]
                vals.append(float(np.mean(v)) if v else np.nan)
            ax.bar(
                x + (i - (len(bar_rows) - 1) / 2) * width,
                vals,
                width,
                label=row,
            )
        clean = [
            c[m]
            for c in cells
            if c['condition'] == 'clean/0' and c.get(m) is not None
        ]
        if clean:
            ax.axhline(
                float(np.mean(clean)), color='k', lw=1, ls='--', label='clean'
            )
        ax.set_xticks(x)
        ax.set_xticklabels(corruptions, rotation=30, ha='right', fontsize=8)
        ax.set_ylabel(m, fontsize=8)
        ax.grid(axis='y', alpha=0.3)
    axes[0, 0].legend(
        fontsize=7,
        ncol=len(bar_rows) + 1,
        loc='lower left',
        bbox_to_anchor=(0, 1.02),
    )
    return _save_figure(fig, path)


def benchmark_heatmaps(
    cells: Sequence[dict],
    rows: Sequence[str],
    metrics: Sequence[str],
    out_dir: str,
    baseline: str = 'degraded',
) -> Dict[str, str]:
    """Per metric, ``heatmap_<metric>.png``: corruption × severity of the
    degraded input, then of each restorer row as its gain over the degraded
    input (blue better, red worse).  Needs synthetic conditions."""
    plt = _plt()
    synth = _synthetic(cells)
    corruptions = list(dict.fromkeys(c['corruption'] for c in synth))
    severities = sorted({c['severity'] for c in synth})
    if not corruptions:
        return {}
    panels = [r for r in rows if any(c['row'] == r for c in synth)]
    paths = {}
    for m in metrics:
        if not any(c.get(m) is not None for c in synth):
            continue

        def grid(row):
            g = np.full((len(corruptions), len(severities)), np.nan)
            for c in synth:
                if c['row'] == row and c.get(m) is not None:
                    g[
                        corruptions.index(c['corruption']),
                        severities.index(c['severity']),
                    ] = c[m]
            return g

        base = grid(baseline) if baseline in panels else None
        fig, axes = plt.subplots(
            1,
            len(panels),
            figsize=(
                1.0 + 0.55 * len(severities) * len(panels) + 1.2 * len(panels),
                0.8 + 0.32 * len(corruptions),
            ),
            squeeze=False,
        )
        for ax, row in zip(axes[0], panels):
            g = grid(row)
            gain = base is not None and row != baseline
            shown = g - base if gain else g
            if gain:
                lim = (
                    float(np.nanmax(np.abs(shown)))
                    if np.isfinite(shown).any()
                    else 1.0
                )
                im = ax.imshow(
                    shown,
                    cmap='RdBu',
                    vmin=-lim or -1,
                    vmax=lim or 1,
                    aspect='auto',
                )
            else:
                im = ax.imshow(shown, cmap='viridis', aspect='auto')
            for (i, j), v in np.ndenumerate(shown):
                if np.isfinite(v):
                    ax.text(
                        j,
                        i,
                        f'{v:+.1f}' if gain else f'{v:.1f}',
                        ha='center',
                        va='center',
                        fontsize=6,
                    )
            ax.set_title(f'{row}: gain' if gain else row, fontsize=8)
            ax.set_xticks(range(len(severities)))
            ax.set_xticklabels([str(s) for s in severities], fontsize=7)
            ax.set_xlabel('severity', fontsize=7)
            ax.set_yticks(range(len(corruptions)))
            ax.set_yticklabels(
                corruptions if ax is axes[0][0] else [], fontsize=7
            )
            fig.colorbar(im, ax=ax, fraction=0.05)
        fig.suptitle(m, fontsize=9)
        paths[m] = _save_figure(
            fig, osp.join(out_dir, f'heatmap_{_safe(m)}.png')
        )
    return paths


def benchmark_grid(
    tiles: Sequence[Sequence[np.ndarray]],
    row_titles: Sequence[str],
    col_titles: Sequence[str],
    path: str,
) -> str:
    """An image grid: one line per condition, one column per row of the table
    (RGB ``uint8`` tiles)."""
    return _save_grid(path, tiles, col_titles, row_titles)
