"""The evaluation of ``tools/demo.py``: the table of DESIGN §4 at small scale,
on the embedded test set.

Rows: the degraded input, the restoration-only baseline, UniRestore under its
``ir``, ``cls`` and ``seg`` prompts, the clean input, and the clean input
restored under ``cls``.  Columns: PSNR and SSIM against the clean image, top-1
of the classifier the ``cls`` prompt was trained through and of two classifiers
that no restorer ever saw, mIoU of the segmenter the ``seg`` prompt was trained
through and of one unseen segmenter.  Restorer rows are averaged over the
restorer's training seeds (mean ± half the range).
"""

import json
import os
import os.path as osp
import time
import warnings
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch

from ..datasets.transforms.degradations import (
    IMAGENET_C_CORRUPTIONS,
    WEATHER_CORRUPTIONS,
)
from ..evaluation.task_benchmark import (
    Row,
    evaluate_rows,
    summarise,
    write_tables,
)
from ..utils.fileio import atomic_write_bytes

__all__ = [
    'run_evaluation',
    'load_test_set',
    'check_goals',
    'recognizer_checkpoint',
]

CORRUPTIONS = IMAGENET_C_CORRUPTIONS + WEATHER_CORRUPTIONS
QUICK_CORRUPTIONS = ('gaussian_noise', 'motion_blur', 'fog')
SEVERITY = 3
# (column, recognizer step of tools/demo.py, seen by the restorer in training?)
CLASSIFIERS = (
    ('cls_seen', 'ResNet-18 (seen)'),
    ('cls_mobilenet', 'MobileNetV2 (unseen)'),
    ('cls_vit', 'ViT (unseen)'),
)
SEGMENTERS = (
    ('seg_seen', 'PSPNet (seen)'),
    ('seg_segformer', 'SegFormer (unseen)'),
)
ROW_NAMES = dict(
    degraded='degraded input',
    baseline='restoration-only (ir loss only)',
    ir='UniRestore ir',
    cls='UniRestore cls',
    seg='UniRestore seg',
    clean='clean input',
    clean_cls='clean, restored by UniRestore cls',
)


def demo_rows(seeds: Sequence[int]) -> List[Row]:
    s = tuple(seeds)
    return [
        Row(ROW_NAMES['degraded']),
        Row(ROW_NAMES['baseline'], restorer='baseline', task='ir', seeds=s),
        Row(ROW_NAMES['ir'], restorer='unirestore', task='ir', seeds=s),
        Row(ROW_NAMES['cls'], restorer='unirestore', task='cls', seeds=s),
        Row(ROW_NAMES['seg'], restorer='unirestore', task='seg', seeds=s),
        Row(ROW_NAMES['clean'], source='clean'),
        Row(
            ROW_NAMES['clean_cls'],
            source='clean',
            restorer='unirestore',
            task='cls',
            seeds=s,
        ),
    ]


def load_test_set(data_root: str, n_images: Optional[int] = None):
    """Clean RGB uint8 images (N, H, W, 3), labels (N,) and masks (N, H, W) of
    the embedded test split."""
    import cv2

    with open(osp.join(data_root, 'meta', 'test.txt'), encoding='utf-8') as f:
        lines = [ln.split() for ln in f if ln.strip()]
    lines = lines[:n_images] if n_images else lines
    images, labels, masks = [], [], []
    for rel, label in lines:
        img = cv2.imread(osp.join(data_root, 'images', rel), cv2.IMREAD_COLOR)
        mask = cv2.imread(
            osp.join(data_root, 'masks', rel), cv2.IMREAD_UNCHANGED
        )
        if img is None or mask is None:
            raise FileNotFoundError(
                f'demo: cannot read test image or mask {rel!r} under '
                f'{data_root!r}'
            )
        images.append(img[..., ::-1])
        masks.append(mask)
        labels.append(int(label))
    return np.stack(images), np.asarray(labels), np.stack(masks)


def recognizer_checkpoint(root: str, step: str, iters: int) -> str:
    """Where the demo's recognizer step ``step`` leaves its weights."""
    return osp.join(root, step, f'iter_{iters}.pth')


def build_demo_recognizers(root: str, configs: Dict[str, str], iters: int):
    """The demo's classifiers and segmenters, from their recipes and the
    checkpoints their steps wrote."""
    from ..models.recognizers import build_recognizer

    cls, seg = {}, {}
    # mmseg's and setuptools' deprecation notes, not the user's concern here
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        for key, label in CLASSIFIERS:
            cls[label] = build_recognizer(
                configs[key], recognizer_checkpoint(root, key, iters)
            )
        for key, label in SEGMENTERS:
            seg[label] = build_recognizer(
                configs[key], recognizer_checkpoint(root, key, iters)
            )
    return cls, seg


@torch.no_grad()
def vae_ceiling(
    vae, clean: np.ndarray, batch_size: int = 100
) -> Dict[str, float]:
    """PSNR/SSIM of the prior's VAE reconstructing the clean images (posterior
    mode): what the latent path alone can give, which CFRM's skips and the TFAs
    have to beat."""
    from ..evaluation.metrics import psnr, ssim
    from ..evaluation.task_benchmark import to_tensor

    x = to_tensor(clean)
    rec = torch.cat(
        [
            (
                (
                    vae.decode(
                        vae.encode(
                            x[i : i + batch_size] * 2 - 1
                        ).latent_dist.mode()
                    ).sample
                    + 1
                )
                / 2
            )
            for i in range(0, len(x), batch_size)
        ]
    ).clamp(0, 1)
    return dict(
        psnr=float(psnr(rec, x).mean()), ssim=float(ssim(rec, x).mean())
    )


def check_goals(table: Sequence[dict]) -> List[dict]:
    """The issue's goals, measured: each with the figures it compares and
    whether it is reached."""
    by = {e['row']: e for e in table}
    deg, base, ir, cls, seg = (
        by[ROW_NAMES[k]] for k in ('degraded', 'baseline', 'ir', 'cls', 'seg')
    )
    clean, clean_cls = by[ROW_NAMES['clean']], by[ROW_NAMES['clean_cls']]
    unseen_cls = [
        f'top1/{label}' for key, label in CLASSIFIERS if 'unseen' in label
    ]
    unseen_seg = [
        f'miou/{label}' for key, label in SEGMENTERS if 'unseen' in label
    ]
    seen_cls = f'top1/{CLASSIFIERS[0][1]}'
    goals = [
        dict(
            goal='UniRestore ir PSNR >= degraded + 4 dB',
            value=ir['psnr'] - deg['psnr'],
            target=4.0,
        ),
        dict(
            goal='UniRestore ir PSNR within 0.5 dB of restoration-only',
            value=ir['psnr'] - base['psnr'],
            target=-0.5,
        ),
    ]
    for col in unseen_cls:
        goals.append(
            dict(
                goal=f'cls prompt {col} >= restoration-only + 3 points',
                value=cls[col] - base[col],
                target=3.0,
            )
        )
    for col in unseen_seg:
        goals.append(
            dict(
                goal=f'seg prompt {col} >= restoration-only + 2 points',
                value=seg[col] - base[col],
                target=2.0,
            )
        )
    goals.append(
        dict(
            goal=f'clean restored by cls loses <= 1 point of clean {seen_cls}',
            value=clean_cls[seen_cls] - clean[seen_cls],
            target=-1.0,
        )
    )
    for g in goals:
        g['value'] = round(float(g['value']), 3)
        g['reached'] = bool(g['value'] >= g['target'])
    return goals


def run_evaluation(
    root: str,
    data_root: str,
    seeds: Sequence[int],
    recognizer_iters: int,
    configs: Dict[str, str],
    quick: bool = False,
    n_images: Optional[int] = None,
    corruptions: Optional[Sequence[str]] = None,
    out_dir: Optional[str] = None,
) -> dict:
    """Evaluate the demo's trained models (work dirs under ``root``) and write
    ``<root>/results``."""
    from ..models.unirestore import UniRestore

    out_dir = out_dir or osp.join(root, 'results')
    os.makedirs(out_dir, exist_ok=True)
    n_images = n_images or (40 if quick else 200)
    corruptions = list(
        corruptions or (QUICK_CORRUPTIONS if quick else CORRUPTIONS)
    )
    clean, labels, masks = load_test_set(data_root, n_images)
    classifiers, segmenters = build_demo_recognizers(
        root, configs, recognizer_iters
    )
    prior = osp.join(root, 'prior_unet', 'prior')

    built: Dict[str, UniRestore] = {}

    def loader(step: str):
        # once per step: the evaluation, the grids and the VAE ceiling share it
        def build():
            if step not in built:
                model = UniRestore(preset='tiny', prior=dict(pretrained=prior))
                model.load_weights(
                    osp.join(root, step, 'unirestore.safetensors')
                )
                built[step] = model.eval()
            return built[step]

        return build

    restorers = {}
    for s in seeds:
        restorers[('unirestore', s)] = loader(f'stage2_seed{s}')
        restorers[('baseline', s)] = loader(f'baseline_seed{s}')
    rows = demo_rows(seeds)
    settings = dict(
        n_images=int(len(clean)),
        corruptions=corruptions,
        severity=SEVERITY,
        seeds=list(seeds),
        data=data_root,
    )
    cells_path = osp.join(out_dir, 'cells.jsonl')
    settings_path = osp.join(out_dir, 'settings.json')
    if osp.isfile(settings_path):
        with open(settings_path, encoding='utf-8') as f:
            if json.load(f) != settings and osp.isfile(cells_path):
                # other settings: the cached cells do not belong to this table
                os.remove(cells_path)
    atomic_write_bytes(json.dumps(settings).encode('utf-8'), settings_path)
    t0 = time.time()
    n_cells = [0]

    def progress(msg):
        n_cells[0] += 1
        if n_cells[0] % 10 == 0:
            print(
                f'[demo eval {time.strftime("%H:%M:%S")}] {n_cells[0]} cells '
                f'({msg})',
                flush=True,
            )

    torch.manual_seed(0)
    # the tiny models' small ops run fastest on one thread, and alike on every
    # machine
    torch.set_num_threads(1)
    cells = evaluate_rows(
        rows,
        clean,
        labels,
        masks,
        corruptions,
        restorers,
        classifiers,
        segmenters,
        cells_path,
        severity=SEVERITY,
        progress=progress,
    )
    metrics, table = summarise(cells, rows)
    goals = check_goals(table)
    ceiling = vae_ceiling(
        restorers[('unirestore', seeds[0])]().prior.vae, clean
    )
    header = (
        f'Embedded test set, {len(clean)} images x {len(corruptions)} '
        f'corruptions at severity {SEVERITY}; restorer rows: mean ± half the '
        f'range over training seeds {list(seeds)}.  The trained prior\'s VAE '
        f'reconstructs the clean test images at {ceiling["psnr"]:.2f} dB '
        f'PSNR / {ceiling["ssim"]:.3f} '
        'SSIM (the ceiling of the latent path alone).\n'
    )
    paths = write_tables(out_dir, metrics, table, cells, header=header)
    atomic_write_bytes(
        json.dumps(dict(goals=goals, vae_ceiling=ceiling), indent=1).encode(
            'utf-8'
        ),
        osp.join(out_dir, 'goals.json'),
    )
    from ..visualization.demo_figures import bar_chart, image_grids

    figures = dict(
        bar_chart=bar_chart(table, metrics, osp.join(out_dir, 'bars.png'))
    )
    seed0 = seeds[0]
    figures.update(
        image_grids(
            clean,
            masks,
            restorers[('baseline', seed0)](),
            restorers[('unirestore', seed0)](),
            segmenters[SEGMENTERS[0][1]],
            out_dir,
        )
    )
    with open(paths['md'], encoding='utf-8') as f:
        print(f.read())
    for g in goals:
        print(
            f"[demo] goal {'reached' if g['reached'] else 'NOT reached'}: "
            f"{g['goal']}: {g['value']:+.2f} (target {g['target']:+.1f})"
        )
    print(
        f'[demo] evaluation {time.time() - t0:.0f} s; tables {paths}; '
        f'figures {figures}',
        flush=True,
    )
    return dict(table=table, goals=goals, paths=paths, figures=figures)
