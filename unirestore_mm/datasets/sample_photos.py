"""Photographs bundled with scikit-image and scikit-learn: a labelless set that
needs no download.

For benchmarks of real pretrained recognizers (ImageNet classifiers) without a
data set at hand: their labels are the recognizer's own prediction on the clean
photograph (``tools/benchmark.py --labels clean-prediction``).
:func:`build_sample_photos` writes them once as PNGs
(``<data root>/sample_photos/v1``, a temporary folder renamed into place) and
:func:`SamplePhotosDataset`, a registered dataset factory, reads them with
mmpretrain's ``CustomDataset`` (``with_label=False``).
"""

import os
import os.path as osp
import shutil
import tempfile
from typing import Dict, Optional

import cv2
import numpy as np

from .embedded import default_data_root

__all__ = [
    'SAMPLE_PHOTOS',
    'load_sample_photos',
    'build_sample_photos',
    'SamplePhotosDataset',
]

# (name, source): scikit-image's ``skimage.data.<name>()`` or scikit-learn's
# ``load_sample_image(<file>)``; photographs only (no textures, drawings or
# microscopy).
SAMPLE_PHOTOS = (
    ('astronaut', 'skimage'),
    ('camera', 'skimage'),
    ('chelsea', 'skimage'),
    ('coffee', 'skimage'),
    ('coins', 'skimage'),
    ('rocket', 'skimage'),
    ('motorcycle_left', 'skimage'),
    ('motorcycle_right', 'skimage'),
    ('china', 'sklearn'),
    ('flower', 'sklearn'),
)
VERSION = 'v1'


def load_sample_photos() -> Dict[str, np.ndarray]:
    """``{name: H x W x 3 RGB uint8}`` (gray photographs as three equal
    channels)."""
    try:
        import skimage.data
    except ImportError as err:
        raise ImportError(
            'the sample photographs need scikit-image: pip install '
            '"unirestore_mm[optional]" (or scikit-image)'
        ) from err
    out = {}
    for name, source in SAMPLE_PHOTOS:
        if source == 'sklearn':
            try:
                from sklearn.datasets import load_sample_image
            except ImportError as err:
                raise ImportError(
                    'the sample photographs need scikit-learn: pip install '
                    '"unirestore_mm[optional]" (or scikit-learn)'
                ) from err
            img = load_sample_image(f'{name}.jpg')
        elif name.startswith('motorcycle_'):
            left, right, _ = skimage.data.stereo_motorcycle()
            img = left if name.endswith('left') else right
        else:
            img = getattr(skimage.data, name)()
        img = np.asarray(img)
        if img.ndim == 2:
            img = np.repeat(img[..., None], 3, axis=2)
        out[name] = np.ascontiguousarray(img[..., :3].astype(np.uint8))
    return out


def build_sample_photos(root: Optional[str] = None) -> str:
    """Write the photographs (once) and return their folder."""
    path = osp.join(
        default_data_root() if root is None else root, 'sample_photos', VERSION
    )
    if osp.isdir(path):
        return path
    parent = osp.dirname(path)
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=f'.{VERSION}-', dir=parent)
    try:
        for name, img in load_sample_photos().items():
            if not cv2.imwrite(osp.join(tmp, f'{name}.png'), img[..., ::-1]):
                raise OSError(f'cannot write {osp.join(tmp, name)}.png')
        try:
            os.rename(tmp, path)
        except OSError:  # another process finished first
            if not osp.isdir(path):
                raise
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return path


def SamplePhotosDataset(root: Optional[str] = None, pipeline=(), **kwargs):
    """Registered dataset factory: writes the photographs if needed and returns
    an mmpretrain ``CustomDataset`` over them (no labels)."""
    from unirestore_mm.registry import DATASETS

    cfg = dict(
        type='mmpretrain.CustomDataset',
        data_root=build_sample_photos(root),
        data_prefix='',
        with_label=False,
        pipeline=list(pipeline),
    )
    cfg.update(kwargs)
    return DATASETS.build(cfg)


def _register():
    from unirestore_mm.registry import DATASETS

    DATASETS.register_module(
        name='SamplePhotosDataset', module=SamplePhotosDataset
    )


_register()
