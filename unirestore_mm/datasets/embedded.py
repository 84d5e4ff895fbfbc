"""The embedded benchmark set: real images that need no download, with class
labels and masks.

Each sample is a Fashion-MNIST item (Debian's ``dataset-fashion-mnist``
package, the same 70k items as the original) recoloured in a random hue
(bright, shaded by its own intensities), scaled to 70-95 % of the side and
shifted onto a dimmed crop of one of scikit-image's bundled photographs and
textures (DESIGN.md §10).  A 3-layer CNN reaches about 65 % clean top-1 on the
test split after 8 epochs (about half a minute on 2 idle cores), and drops to
10-45 % under ImageNet-C corruptions at severity 3: room for restoration to
help.  The label is the item's class; the mask is the item's pixels, valued by
class.  Everything is drawn from one seed, so a seed gives the same set on
every machine with the same sources and the same numpy and OpenCV releases (the
sources' checksums and the versions are recorded in ``meta.json``; numpy does
not promise identical random streams across its releases).

Build it with :func:`build_embedded_set` (or
``python tools/dataset_converters/build_embedded_set.py``); it is
written on first use, to a temporary folder renamed into place when complete,
so it is never half-written, and later calls return at once.  Default location:
``$UNIRESTORE_DATA/embedded``, else ``<repository>/data/embedded``
(git-ignored) when the package runs from a checkout, else
``~/.cache/unirestore_mm/data/embedded``.

Layout (``<set>`` is ``embedded/s{seed}-{size}px-{n_train}-{n_test}``)::

    <set>/meta.json              version, seed, size, counts, classes, palette, sources (+ sha1)
    <set>/classes.txt            the 10 class names, one a line
    <set>/images/train/00000.png clean RGB images, size×size (train: Fashion-MNIST train items)
    <set>/images/test/00000.png  (test: Fashion-MNIST test items, so no item is in both splits)
    <set>/masks/train/00000.png  uint8 masks: 0 = background, k + 1 = item of class k
    <set>/masks/test/00000.png
    <set>/meta/train.txt         "train/00000.png 3" lines: mmpretrain CustomDataset's ann_file
    <set>/meta/test.txt          (with data_prefix='images')
    <set>/splits/train.txt       "00000" lines: mmseg BaseSegDataset's ann_file (with
    <set>/splits/test.txt        img_path='images/train', seg_map_path='masks/train', suffix '.png')

Read it with :func:`embedded_cls_dataset_cfg` /
:func:`embedded_seg_dataset_cfg`, or the configs in
``configs/_base_/datasets/embedded_*.py``.
"""

import gzip
import hashlib
import json
import os
import os.path as osp
import shutil
import tempfile
import time
from typing import List, Optional, Tuple

import cv2
import numpy as np

__all__ = [
    'EMBEDDED_CLASSES',
    'EMBEDDED_SEG_CLASSES',
    'EMBEDDED_PALETTE',
    'EMBEDDED_VERSION',
    'SKIMAGE_SOURCES',
    'FASHION_MNIST_DIRS',
    'build_embedded_set',
    'default_data_root',
    'embedded_set_path',
    'embedded_cls_dataset_cfg',
    'embedded_seg_dataset_cfg',
    'load_fashion_mnist',
    'EmbeddedClsDataset',
    'EmbeddedSegDataset',
    'EmbeddedRestorationDataset',
]

EMBEDDED_VERSION = 2  # bump whenever the content that a seed gives changes
EMBEDDED_CLASSES = (
    'T-shirt/top',
    'Trouser',
    'Pullover',
    'Dress',
    'Coat',
    'Sandal',
    'Shirt',
    'Sneaker',
    'Bag',
    'Ankle boot',
)
EMBEDDED_SEG_CLASSES = ('background',) + EMBEDDED_CLASSES
EMBEDDED_PALETTE = [
    [0, 0, 0],
    [230, 25, 75],
    [60, 180, 75],
    [255, 225, 25],
    [0, 130, 200],
    [245, 130, 48],
    [145, 30, 180],
    [70, 240, 240],
    [240, 50, 230],
    [210, 245, 60],
    [250, 190, 212],
]
# scikit-image's bundled photographs and textures (shipped in its wheel, no
# download).
SKIMAGE_SOURCES = (
    'astronaut',
    'brick',
    'camera',
    'cat',
    'coffee',
    'coins',
    'grass',
    'gravel',
    'hubble_deep_field',
    'immunohistochemistry',
    'moon',
    'page',
    'rocket',
    'text',
)
FASHION_MNIST_DIRS = ('/usr/share/datasets/fashion-mnist',)
INSTALL_HINT = (
    "install Debian's package (apt-get install dataset-fashion-mnist), or set "
    'UNIRESTORE_FASHION_MNIST to a folder with the four *-ubyte.gz files'
)


def _repo_root() -> Optional[str]:
    here = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
    return (
        here
        if osp.exists(osp.join(here, 'setup.py'))
        and osp.isdir(osp.join(here, 'unirestore_mm'))
        else None
    )


def default_data_root() -> str:
    """``$UNIRESTORE_DATA``, else ``<repo>/data`` from a checkout, else
    ``~/.cache/unirestore_mm/data``."""
    if os.environ.get('UNIRESTORE_DATA'):
        return os.environ['UNIRESTORE_DATA']
    repo = _repo_root()
    if repo is not None:
        return osp.join(repo, 'data')
    return osp.join(osp.expanduser('~'), '.cache', 'unirestore_mm', 'data')


def embedded_set_path(
    root: Optional[str] = None,
    seed: int = 0,
    size: int = 32,
    n_train: int = 4000,
    n_test: int = 500,
) -> str:
    """Where :func:`build_embedded_set` puts the set with these parameters."""
    root = default_data_root() if root is None else root
    return osp.join(root, 'embedded', f's{seed}-{size}px-{n_train}-{n_test}')


# -----------------------------------------------------------------------------
# Sources
# -----------------------------------------------------------------------------
def _read_idx(path: str) -> np.ndarray:
    with gzip.open(path, 'rb') as f:
        data = f.read()
    ndim = data[3]
    dims = [
        int.from_bytes(data[4 + 4 * i : 8 + 4 * i], 'big') for i in range(ndim)
    ]
    return np.frombuffer(data, np.uint8, offset=4 + 4 * ndim).reshape(dims)


def load_fashion_mnist(split: str = 'train') -> Tuple[np.ndarray, np.ndarray]:
    """Fashion-MNIST ``(images N×28×28 uint8, labels N)`` from Debian's package
    (no download)."""
    prefix = {'train': 'train', 'test': 't10k'}[split]
    dirs = (
        [os.environ['UNIRESTORE_FASHION_MNIST']]
        if os.environ.get('UNIRESTORE_FASHION_MNIST')
        else []
    ) + list(FASHION_MNIST_DIRS)
    for d in dirs:
        img_path = osp.join(d, f'{prefix}-images-idx3-ubyte.gz')
        lbl_path = osp.join(d, f'{prefix}-labels-idx1-ubyte.gz')
        if osp.exists(img_path) and osp.exists(lbl_path):
            return _read_idx(img_path), _read_idx(lbl_path).astype(np.int64)
    raise FileNotFoundError(
        f'Fashion-MNIST not found in {dirs}: {INSTALL_HINT}'
    )


def _load_skimage_sources() -> List[Tuple[str, np.ndarray]]:
    try:
        import skimage.data
    except ImportError as e:
        raise ImportError(
            'the embedded set needs scikit-image for its bundled photographs: '
            'pip install "unirestore_mm[optional]" (or scikit-image)'
        ) from e
    sources = []
    for name in SKIMAGE_SOURCES:
        try:
            img = getattr(skimage.data, name)()
        # a missing bundled file must name itself
        except Exception as e:  # noqa: BLE001
            raise RuntimeError(
                f'scikit-image has no bundled image {name!r} ({e}); '
                f'the embedded set needs {SKIMAGE_SOURCES}'
            ) from e
        img = np.asarray(img)
        if img.dtype != np.uint8:
            img = (
                np.clip(
                    img.astype(np.float64) / max(float(img.max()), 1e-8), 0, 1
                )
                * 255
            ).astype(np.uint8)
        if img.ndim == 2:
            img = np.repeat(img[..., None], 3, axis=2)
        sources.append((name, np.ascontiguousarray(img[..., :3])))
    return sources


# -----------------------------------------------------------------------------
# Composition
# -----------------------------------------------------------------------------
def _background(sources, size, rng):
    name, src = sources[int(rng.integers(len(sources)))]
    h, w = src.shape[:2]
    # Crops of 1.5 to 4 output sizes: real texture, but calm enough that the
    # item stays the subject.
    side = int(
        rng.integers(max(size, int(size * 1.5)), max(size, size * 4) + 1)
    )
    side = min(side, h, w)
    top, left = (
        int(rng.integers(0, h - side + 1)),
        int(rng.integers(0, w - side + 1)),
    )
    crop = src[top : top + side, left : left + side].astype(np.float32) / 255.0
    bg = cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA)
    if rng.random() < 0.5:
        bg = bg[:, ::-1]
    # gray source
    if (
        np.ptp(crop.reshape(-1, 3).mean(0)) < 1e-3
        and crop.std(axis=2).mean() < 1e-3
    ):
        # light random tint
        bg = bg * rng.uniform(0.6, 1.0, size=3).astype(np.float32)
    return np.ascontiguousarray(bg, dtype=np.float32), name


def _composite(bg, item, size, rng):
    """Put a recoloured, scaled, shifted item on ``bg``; return image and the
    boolean item mask."""
    k = int(rng.integers(int(round(size * 0.7)), int(round(size * 0.95)) + 1))
    item = item.astype(np.float32)
    a = cv2.resize(
        item / max(float(item.max()), 1.0),
        (k, k),
        interpolation=cv2.INTER_LINEAR,
    )
    top, left = (
        int(rng.integers(0, size - k + 1)),
        int(rng.integers(0, size - k + 1)),
    )
    alpha = np.zeros((size, size), np.float32)
    alpha[top : top + k, left : left + k] = a
    # Every non-background pixel of the item (dark items included) is part of
    # it and opaque.
    region = alpha > 0.04
    # One polarity, as in Fashion-MNIST itself: a bright item (its own
    # intensities as shading) on a dimmed photograph, in a random hue, so shape
    # (not colour or contrast sign) tells the class.
    bg = bg * rng.uniform(0.3, 0.6)
    lum_w = np.array([0.299, 0.587, 0.114], np.float32)
    color = rng.uniform(0, 1, size=3).astype(np.float32)
    color = np.clip(
        color + (rng.uniform(0.75, 0.95) - float(color @ lum_w)), 0, 1
    )
    # the item's own texture (seams, prints) shows
    shade = (0.35 + 0.65 * alpha)[..., None]
    opacity = np.clip(alpha * 4.0, 0, 1)[..., None]
    img = bg * (1 - opacity) + color * shade * opacity
    return np.clip(img, 0, 1), region


def _sha1(arr: np.ndarray) -> str:
    return hashlib.sha1(np.ascontiguousarray(arr).tobytes()).hexdigest()[:16]


def _write_split(out, split, n, items, labels, sources, size, rng):
    img_dir, mask_dir = (
        osp.join(out, 'images', split),
        osp.join(out, 'masks', split),
    )
    os.makedirs(img_dir)
    os.makedirs(mask_dir)
    # Balanced classes: sample i has class i mod 10 (shuffled), items drawn
    # without replacement per class.
    classes = rng.permutation(np.arange(n) % len(EMBEDDED_CLASSES))
    pools = {
        c: rng.permutation(np.flatnonzero(labels == c))
        for c in range(len(EMBEDDED_CLASSES))
    }
    used = {c: 0 for c in pools}
    ann, names, records = [], [], []
    for i in range(n):
        c = int(classes[i])
        item_idx = int(pools[c][used[c] % len(pools[c])])
        used[c] += 1
        bg, src_name = _background(sources, size, rng)
        img, region = _composite(bg, items[item_idx], size, rng)
        mask = np.where(region, c + 1, 0).astype(np.uint8)
        stem = f'{i:05d}'
        rgb = (img * 255 + 0.5).astype(np.uint8)
        cv2.imwrite(
            osp.join(img_dir, stem + '.png'),
            cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR),
        )
        cv2.imwrite(osp.join(mask_dir, stem + '.png'), mask)
        ann.append(f'{split}/{stem}.png {c}')
        names.append(stem)
        records.append(
            dict(stem=stem, label=c, item=item_idx, background=src_name)
        )
    os.makedirs(osp.join(out, 'meta'), exist_ok=True)
    os.makedirs(osp.join(out, 'splits'), exist_ok=True)
    with open(osp.join(out, 'meta', f'{split}.txt'), 'w') as f:
        f.write('\n'.join(ann) + '\n')
    with open(osp.join(out, 'splits', f'{split}.txt'), 'w') as f:
        f.write('\n'.join(names) + '\n')
    with open(osp.join(out, 'meta', f'{split}_sources.json'), 'w') as f:
        json.dump(records, f)


def _matches(path, params) -> bool:
    try:
        with open(osp.join(path, 'meta.json')) as f:
            meta = json.load(f)
    except (OSError, ValueError):
        return False
    return all(meta.get(k) == v for k, v in params.items())


def build_embedded_set(
    root: Optional[str] = None,
    seed: int = 0,
    size: int = 32,
    n_train: int = 4000,
    n_test: int = 500,
    force: bool = False,
) -> str:
    """Build (once) and return the folder of the embedded set; see the module
    docstring for the layout.

    Args:
        root: data root (default :func:`default_data_root`); the set goes to
            ``<root>/embedded/s{seed}-{size}px-{n_train}-{n_test}``.
        seed: fixes every draw (backgrounds, items, colours, positions).
        size: image side in pixels (>= 8); 32 builds 4.5k images in a few
            seconds.
        n_train, n_test: number of images per split (>= 1 each).
        force: rebuild even if a complete set is there.
    """
    if int(size) < 8:
        raise ValueError(f'size must be >= 8 pixels, got {size}')
    if int(n_train) < 1 or int(n_test) < 1:
        raise ValueError(
            f'n_train and n_test must be >= 1, got {n_train}, {n_test}'
        )
    path = embedded_set_path(root, seed, size, n_train, n_test)
    params = dict(
        version=EMBEDDED_VERSION,
        seed=int(seed),
        size=int(size),
        n_train=int(n_train),
        n_test=int(n_test),
    )
    if not force and _matches(path, params):
        return path
    parent = osp.dirname(path)
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(
        prefix='.tmp-' + osp.basename(path) + '-', dir=parent
    )
    try:
        start = time.time()
        sources = _load_skimage_sources()
        rng = np.random.default_rng(
            np.random.SeedSequence([int(seed), EMBEDDED_VERSION])
        )
        for split, n in (('train', int(n_train)), ('test', int(n_test))):
            items, labels = load_fashion_mnist(split)
            _write_split(tmp, split, n, items, labels, sources, int(size), rng)
        with open(osp.join(tmp, 'classes.txt'), 'w') as f:
            f.write('\n'.join(EMBEDDED_CLASSES) + '\n')
        meta = dict(
            params,
            classes=list(EMBEDDED_CLASSES),
            seg_classes=list(EMBEDDED_SEG_CLASSES),
            palette=EMBEDDED_PALETTE,
            mask_values='0 = background, k + 1 = class k',
            sources=dict(
                skimage={n: _sha1(a) for n, a in sources},
                fashion_mnist='Debian dataset-fashion-mnist (train items for '
                'train, t10k items for test)',
            ),
            versions=dict(numpy=np.__version__, opencv=cv2.__version__),
            build_seconds=round(time.time() - start, 2),
        )
        with open(osp.join(tmp, 'meta.json'), 'w') as f:
            json.dump(meta, f, indent=1)
        if osp.exists(path):
            # another process finished first
            if not force and _matches(path, params):
                shutil.rmtree(tmp, ignore_errors=True)
                return path
            shutil.rmtree(path)
        os.rename(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return path


# -----------------------------------------------------------------------------
# Dataset configs
# -----------------------------------------------------------------------------
def embedded_cls_dataset_cfg(
    path: str, split: str = 'train', pipeline=()
) -> dict:
    """An mmpretrain ``CustomDataset`` config reading the embedded set's
    labels."""
    return dict(
        type='mmpretrain.CustomDataset',
        data_root=path,
        ann_file=f'meta/{split}.txt',
        data_prefix='images',
        metainfo=dict(classes=EMBEDDED_CLASSES),
        with_label=True,
        pipeline=list(pipeline),
        test_mode=split != 'train',
    )


def embedded_seg_dataset_cfg(
    path: str, split: str = 'train', pipeline=()
) -> dict:
    """An mmseg ``BaseSegDataset`` config reading the embedded set's masks
    (class 0 = background)."""
    return dict(
        type='mmseg.BaseSegDataset',
        data_root=path,
        ann_file=f'splits/{split}.txt',
        data_prefix=dict(
            img_path=f'images/{split}', seg_map_path=f'masks/{split}'
        ),
        img_suffix='.png',
        seg_map_suffix='.png',
        reduce_zero_label=False,
        metainfo=dict(classes=EMBEDDED_SEG_CLASSES, palette=EMBEDDED_PALETTE),
        pipeline=list(pipeline),
        test_mode=split != 'train',
    )


def _embedded_path(root, seed, size, n_train, n_test):
    return build_embedded_set(
        root=root, seed=seed, size=size, n_train=n_train, n_test=n_test
    )


def EmbeddedClsDataset(
    split: str = 'train',
    root: Optional[str] = None,
    seed: int = 0,
    size: int = 32,
    n_train: int = 4000,
    n_test: int = 500,
    pipeline=(),
    **kwargs,
):
    """Registered dataset factory: builds the embedded set if needed, returns
    an mmpretrain ``CustomDataset`` over its ``split`` (10 classes,
    :data:`EMBEDDED_CLASSES`)."""
    from unirestore_mm.registry import DATASETS

    cfg = embedded_cls_dataset_cfg(
        _embedded_path(root, seed, size, n_train, n_test), split, pipeline
    )
    cfg.update(kwargs)
    return DATASETS.build(cfg)


def EmbeddedSegDataset(
    split: str = 'train',
    root: Optional[str] = None,
    seed: int = 0,
    size: int = 32,
    n_train: int = 4000,
    n_test: int = 500,
    pipeline=(),
    **kwargs,
):
    """Registered dataset factory: builds the embedded set if needed, returns
    an mmseg ``BaseSegDataset`` over its ``split`` (11 classes,
    :data:`EMBEDDED_SEG_CLASSES`)."""
    from unirestore_mm.registry import DATASETS

    cfg = embedded_seg_dataset_cfg(
        _embedded_path(root, seed, size, n_train, n_test), split, pipeline
    )
    cfg.update(kwargs)
    return DATASETS.build(cfg)


def EmbeddedRestorationDataset(
    split: str = 'train',
    root: Optional[str] = None,
    seed: int = 0,
    size: int = 32,
    n_train: int = 4000,
    n_test: int = 500,
    pipeline=(),
    **kwargs,
):
    """Registered dataset factory: the embedded set's clean images as a
    clean-only :class:`~unirestore_mm.datasets.PairedImageDataset` (degrade
    them in the pipeline)."""
    from .paired import PairedImageDataset

    path = _embedded_path(root, seed, size, n_train, n_test)
    kwargs.setdefault('test_mode', split != 'train')
    return PairedImageDataset(
        data_root=path,
        data_prefix=dict(gt_path=f'images/{split}'),
        pipeline=list(pipeline),
        **kwargs,
    )


def _register():
    from unirestore_mm.registry import DATASETS

    for fn in (
        EmbeddedClsDataset,
        EmbeddedSegDataset,
        EmbeddedRestorationDataset,
    ):
        DATASETS.register_module(name=fn.__name__, module=fn)


_register()
