"""Our ImageNet-C levels against the maintained reference implementation (``imagecorruptions-imaug``).

The reference is optional (it needs numba and draws from numpy's global RNG, so the package does not
use it); when it is installed, every corruption's mean absolute change at each severity must be close
to the reference's, on real photographs at ImageNet-C's 224×224.
"""
import warnings

import cv2
import numpy as np
import pytest

from unirestore_mm.datasets.transforms.degradations import IMAGENET_C_CORRUPTIONS, corrupt

ref = pytest.importorskip('imagecorruptions', reason='optional reference imagecorruptions-imaug not installed')
skdata = pytest.importorskip('skimage.data')


def _mae(a, b):
    return float(np.abs(a.astype(np.float32) - b.astype(np.float32)).mean())


@pytest.mark.parametrize('name', IMAGENET_C_CORRUPTIONS)
def test_levels_match_the_reference(name):
    imgs = [cv2.resize(f(), (224, 224), interpolation=cv2.INTER_AREA) for f in (skdata.astronaut, skdata.coffee)]
    ours, theirs = [], []
    for sev in range(1, 6):
        ours.append(np.mean([_mae(corrupt(im, name, sev, k), im) for k, im in enumerate(imgs)]))
        # Frost picks one of six photographs, fog and snow draw large random textures: average draws.
        draws = {'frost': 30, 'fog': 6, 'snow': 6}.get(name, 1)
        values = []
        for seed in range(draws):
            np.random.seed(100 * sev + seed)
            with warnings.catch_warnings():
                warnings.simplefilter('ignore')
                values += [_mae(np.uint8(ref.corrupt(im, corruption_name=name, severity=sev)), im) for im in imgs]
        theirs.append(np.mean(values))
    for sev, (o, t) in enumerate(zip(ours, theirs), 1):
        assert abs(o - t) <= max(0.25 * t, 3.0), f'{name} severity {sev}: ours {o:.1f}, reference {t:.1f}'
