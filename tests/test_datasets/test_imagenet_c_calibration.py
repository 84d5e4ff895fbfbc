"""Degradation strength: our levels against the reference implementation, and
growth with severity.

Strength is the mean absolute change of the pixel values (0-255) that a
corruption makes, on 224×224 centre crops of three real photographs
(scikit-image's astronaut, coffee and chelsea).

* Every ImageNet-C corruption at every severity is within 10 % (relative) of
  the maintained reference, ``imagecorruptions-imaug`` (import name
  ``imagecorruptions``; the package does not use it, it draws from numpy's
  global RNG and needs numba).  No absolute floor is needed: the weakest
  reference level (impulse noise at 1) changes pixels by 3.8 grey levels, and
  10 % of that is still far above the estimation noise of the averages below.
* Every corruption, the weather and composite ones included (they have no
  reference), is strictly stronger at each severity than at the one below,
  averaged over the photographs and a few seeds (the same seeds at every
  severity, so the comparison is paired).

Run as a script to print the table (corruption × severity: ours, reference,
difference)::

    python tests/test_datasets/test_imagenet_c_calibration.py [name ...]
"""

import functools
import sys
import warnings

import numpy as np
import pytest

from unirestore_mm.datasets.transforms.degradations import (
    ALL_CORRUPTIONS,
    IMAGENET_C_CORRUPTIONS,
    SEVERITIES,
    corrupt,
)

PHOTOS = ('astronaut', 'coffee', 'chelsea')
CROP = 224
# How many random draws each estimate averages (per photograph); corruptions
# that draw nothing take one.  The counts keep the standard error of every
# average near 1 % of its value or below: fog's plasma (the reference's
# per-draw standard deviation is 4.5 grey levels, skewed, so 24 draws can miss
# by 6 %) and the reference's frost photographs vary most from draw to draw.
DETERMINISTIC = (
    'defocus_blur',
    'zoom_blur',
    'brightness',
    'contrast',
    'pixelate',
    'jpeg_compression',
)
DRAWS = {'fog': 64, 'frost': 12}
DEFAULT_DRAWS = 4
# The reference's frost blends one of six frost photographs (its first draw
# from numpy's global RNG picks which); the estimate takes the same number of
# draws of each (stratified), as their strengths differ by 2.7x; what is left
# is the random crop of the frost photograph (standard deviation 3-8 grey
# levels).
FROST_PER_PHOTO = 6


def draws(name: str) -> int:
    return 1 if name in DETERMINISTIC else DRAWS.get(name, DEFAULT_DRAWS)


@functools.lru_cache(maxsize=1)
def photos():
    """Centre ``CROP``×``CROP`` crops of scikit-image's sample photographs (RGB
    ``uint8``)."""
    import skimage.data

    out = []
    for name in PHOTOS:
        img = getattr(skimage.data, name)()
        h, w = img.shape[:2]
        top, left = (h - CROP) // 2, (w - CROP) // 2
        out.append(
            np.ascontiguousarray(img[top : top + CROP, left : left + CROP, :3])
        )
    return tuple(out)


def mean_abs_change(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.float32) - b.astype(np.float32)).mean())


def ours(name: str, severity: int, n_draws: int = None) -> float:
    """Our strength: the mean over the photographs and seeds ``0..n_draws-1``
    (the same at every severity)."""
    n_draws = draws(name) if n_draws is None else n_draws
    return float(
        np.mean(
            [
                mean_abs_change(corrupt(im, name, severity, seed), im)
                for seed in range(n_draws)
                for im in photos()
            ]
        )
    )


def _frost_seeds(per_photo: int):
    """Seeds of numpy's global RNG that make the reference pick each frost
    photograph ``per_photo`` times."""
    by_photo = {k: [] for k in range(6)}
    seed = 0
    while min(len(v) for v in by_photo.values()) < per_photo:
        np.random.seed(seed)
        k = np.random.randint(6)
        if len(by_photo[k]) < per_photo:
            by_photo[k].append(seed)
        seed += 1
    return sorted(s for v in by_photo.values() for s in v)


def reference(name: str, severity: int) -> float:
    """The reference's strength, over the same photographs; seeded through
    numpy's global RNG."""
    import imagecorruptions

    seeds = (
        _frost_seeds(FROST_PER_PHOTO)
        if name == 'frost'
        else [1000 * severity + s for s in range(draws(name))]
    )
    values = []
    state = np.random.get_state()
    try:
        for seed in seeds:
            for im in photos():
                np.random.seed(seed)
                # glass_blur seeds its own pixel shuffle (fresh OS entropy
                # unless given a seed)
                kwargs = {'seed': seed} if name == 'glass_blur' else {}
                with warnings.catch_warnings():
                    warnings.simplefilter('ignore')
                    out = imagecorruptions.corrupt(
                        im, corruption_name=name, severity=severity, **kwargs
                    )
                values.append(mean_abs_change(out, im))
    finally:
        np.random.set_state(state)
    return float(np.mean(values))


@pytest.mark.parametrize('name', IMAGENET_C_CORRUPTIONS)
def test_levels_within_10_percent_of_the_reference(name):
    pytest.importorskip('skimage.data')
    pytest.importorskip(
        'imagecorruptions',
        reason='reference imagecorruptions-imaug not installed',
    )
    bad = []
    for sev in SEVERITIES:
        o, t = ours(name, sev), reference(name, sev)
        if abs(o - t) > 0.10 * t:
            bad.append(
                f'severity {sev}: ours {o:.2f}, reference {t:.2f} '
                f'({100 * (o - t) / t:+.1f} %)'
            )
    assert not bad, (
        f'{name} off the reference by more than 10 %: ' + '; '.join(bad)
    )


@pytest.mark.parametrize('name', ALL_CORRUPTIONS)
def test_strength_grows_with_severity(name):
    pytest.importorskip('skimage.data')
    levels = [ours(name, sev) for sev in SEVERITIES]
    for sev in SEVERITIES[:-1]:
        assert levels[sev] > levels[sev - 1], (
            f'{name}: severity {sev + 1} changes pixels by '
            f'{levels[sev]:.2f}, not more than severity {sev} '
            f'({levels[sev - 1]:.2f}); all levels: '
            f'{[round(v, 2) for v in levels]}'
        )


def strength_table(names=ALL_CORRUPTIONS) -> str:
    """The table: per corruption and severity our strength, the reference's
    (where it has the corruption and is installed) and the difference in %."""
    try:
        import imagecorruptions  # noqa: F401

        have_ref = True
    except ImportError:
        have_ref = False
    lines = [
        f'{"corruption":<18} sev {"ours":>7} {"reference":>9} {"diff":>7}'
    ]
    for name in names:
        for sev in SEVERITIES:
            o = ours(name, sev)
            if have_ref and name in IMAGENET_C_CORRUPTIONS:
                t = reference(name, sev)
                lines.append(
                    f'{name:<18} {sev:>3} {o:7.2f} {t:9.2f} '
                    f'{100 * (o - t) / t:+6.1f}%'
                )
            else:
                lines.append(f'{name:<18} {sev:>3} {o:7.2f} {"-":>9} {"-":>7}')
    return '\n'.join(lines)


if __name__ == '__main__':
    print(strength_table(sys.argv[1:] or ALL_CORRUPTIONS))
