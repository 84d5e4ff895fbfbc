"""Write a fixed degraded benchmark set with a manifest, so that anyone can
rebuild the same images.

Layout of ``<out>``::

    manifest.json                        mmengine annotation format (read by PairedImageDataset):
                                         {"metainfo": {seed, corruptions, severities, source, classes?,
                                                       skipped, versions},
                                          "data_list": [{"img_path": "degraded/<name>/<severity>/<rel>.png",
                                                         "gt_path": "clean/<rel>.png",
                                                         "source": "<rel as in the source folder>",
                                                         "degradation": {"name", "severity", "seed"},
                                                         "gt_label": k?, "seg_map_path": "masks/<rel>.png"?}]}
    clean/<rel>.png                      the clean images (PNG, dtype kept)
    degraded/<name>/<severity>/<rel>.png one per image, corruption and severity (PNG, lossless)
    masks/<rel>.png                      copied masks, when the source is the embedded set

Each image's seed is ``sample_seed(seed, rel, name, severity)``: it does not
depend on the order of the files or on which other corruptions are written.
Rebuilding gives the same bytes with the same numpy and OpenCV releases
(recorded in the manifest's ``versions``).  The set is written to a temporary
folder and renamed into place when complete.
"""  # noqa: E501

import json
import logging
import os
import os.path as osp
import shutil
import tempfile
from typing import Dict, List, Optional, Sequence, Union

import cv2
import numpy as np

from .transforms.degradations import check_severity, corrupt, sample_seed
from .transforms.transforms import (
    CorruptImageError,
    _expand_corruptions,
    _flip_channels,
    read_image,
)

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

__all__ = ['make_benchmark_set', 'load_manifest']


def _log(msg, level=logging.INFO):
    try:
        from mmengine.logging import print_log

        print_log(msg, logger='current', level=level)
    except ImportError:  # pragma: no cover
        print(msg)


def _source_items(source: str, split: str) -> List[Dict]:
    """``[{'path', 'rel', 'gt_label'?, 'mask'?}]`` for a folder of images or an
    embedded set."""
    if osp.exists(osp.join(source, 'meta.json')) and osp.exists(
        osp.join(source, 'meta', f'{split}.txt')
    ):
        items = []
        with open(osp.join(source, 'meta', f'{split}.txt')) as f:
            for line in f:
                if line.strip():
                    rel, label = line.split()
                    stem = osp.splitext(osp.basename(rel))[0]
                    items.append(
                        dict(
                            path=osp.join(source, 'images', rel),
                            rel=rel,
                            gt_label=int(label),
                            mask=osp.join(
                                source, 'masks', split, stem + '.png'
                            ),
                        )
                    )
        return items
    items = []
    for dirpath, _, files in os.walk(source, followlinks=True):
        for f in files:
            if f.lower().endswith(IMG_EXTENSIONS):
                p = osp.join(dirpath, f)
                items.append(
                    dict(
                        path=p, rel=osp.relpath(p, source).replace(os.sep, '/')
                    )
                )
    if not items:
        raise FileNotFoundError(f'no images found under {source}')
    return sorted(items, key=lambda d: d['rel'])


def _versions() -> dict:
    import platform

    out = dict(
        python=platform.python_version(),
        numpy=np.__version__,
        opencv=cv2.__version__,
    )
    try:
        from unirestore_mm import __version__

        out['unirestore_mm'] = __version__
    except ImportError:  # pragma: no cover
        pass
    return out


def make_benchmark_set(
    source: str,
    out: str,
    corruptions: Union[str, Sequence[str]] = 'imagenet_c',
    severities: Sequence[int] = (3,),
    seed: int = 0,
    split: str = 'test',
    limit: Optional[int] = None,
    on_corrupt: str = 'skip',
    overwrite: bool = False,
) -> str:
    """Degrade every image of ``source`` with every corruption and severity;
    write ``out``.

    Args:
        source: a folder of clean images (searched recursively) or an embedded
            set folder (:func:`~unirestore_mm.datasets.build_embedded_set`;
            then ``split``'s labels and masks come along).
        out: output folder (must not exist unless ``overwrite``).
        corruptions: names and/or groups, as for ``RandomDegradation``.
        severities: severities 1..5 to write (the paper evaluates at 3).
        seed: base seed.
        limit: only the first ``limit`` images (sorted by path).
        on_corrupt: ``'skip'`` records unreadable source files in the
            manifest's ``skipped``; ``'raise'`` stops.
    Returns:
        ``out``.
    """
    names = _expand_corruptions(corruptions)
    severities = [check_severity(s) for s in severities]
    if on_corrupt not in ('skip', 'raise'):
        raise ValueError(
            f"on_corrupt must be 'skip' or 'raise', got {on_corrupt!r}"
        )
    if osp.exists(out):
        if not overwrite:
            raise FileExistsError(
                f'{out} exists; pass overwrite=True (--overwrite) to replace '
                'it'
            )
    items = _source_items(source, split)
    if limit is not None:
        items = items[: int(limit)]
    parent = osp.dirname(osp.abspath(out))
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(
        prefix='.tmp-' + osp.basename(osp.abspath(out)) + '-', dir=parent
    )
    data_list, skipped = [], []
    try:
        for item in items:
            rel_png = osp.splitext(item['rel'])[0] + '.png'
            try:
                img = read_image(item['path'], 'unchanged')
            except CorruptImageError as err:
                if on_corrupt == 'raise':
                    raise
                _log(
                    f'make_benchmark_set: skipping {item["path"]}: {err}',
                    logging.WARNING,
                )
                skipped.append(dict(source=item['rel'], error=str(err)))
                continue
            clean_rel = f'clean/{rel_png}'
            os.makedirs(osp.dirname(osp.join(tmp, clean_rel)), exist_ok=True)
            cv2.imwrite(osp.join(tmp, clean_rel), img)
            extra = {}
            if 'gt_label' in item:
                extra['gt_label'] = item['gt_label']
            if item.get('mask') and osp.exists(item['mask']):
                mask_rel = f'masks/{rel_png}'
                os.makedirs(
                    osp.dirname(osp.join(tmp, mask_rel)), exist_ok=True
                )
                shutil.copyfile(item['mask'], osp.join(tmp, mask_rel))
                extra['seg_map_path'] = mask_rel
            # files are BGR(A) as read; the functions take RGB
            rgb = _flip_channels(img)
            for name in names:
                for sev in severities:
                    s = sample_seed(seed, item['rel'], name, sev)
                    deg = _flip_channels(
                        corrupt(rgb, name, sev, np.random.default_rng(s))
                    )
                    deg_rel = f'degraded/{name}/{sev}/{rel_png}'
                    os.makedirs(
                        osp.dirname(osp.join(tmp, deg_rel)), exist_ok=True
                    )
                    cv2.imwrite(osp.join(tmp, deg_rel), deg)
                    data_list.append(
                        dict(
                            img_path=deg_rel,
                            gt_path=clean_rel,
                            source=item['rel'],
                            degradation=dict(name=name, severity=sev, seed=s),
                            **extra,
                        )
                    )
        metainfo = dict(
            seed=int(seed),
            corruptions=names,
            severities=severities,
            source=osp.abspath(source),
            split=split,
            skipped=skipped,
            versions=_versions(),
        )
        if osp.exists(osp.join(source, 'meta.json')):
            with open(osp.join(source, 'meta.json')) as f:
                src_meta = json.load(f)
            metainfo.update(
                classes=src_meta.get('classes'),
                seg_classes=src_meta.get('seg_classes'),
            )
        with open(osp.join(tmp, 'manifest.json'), 'w') as f:
            json.dump(
                dict(metainfo=metainfo, data_list=data_list), f, indent=0
            )
        if osp.exists(out):
            shutil.rmtree(out)
        os.rename(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    _log(
        f'make_benchmark_set: wrote {len(data_list)} degraded images of '
        f'{len(items) - len(skipped)} sources to {out}'
        + (f' ({len(skipped)} unreadable sources skipped)' if skipped else '')
    )
    return out


def load_manifest(out: str) -> dict:
    """The manifest of a benchmark set written by
    :func:`make_benchmark_set`."""
    with open(osp.join(out, 'manifest.json')) as f:
        return json.load(f)
