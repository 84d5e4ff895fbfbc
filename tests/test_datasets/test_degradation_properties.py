"""Property-based tests (hypothesis) of every degradation, as a function and as
a registered transform.

Over sizes from 1×1 to 257 pixels a side (odd and non-square included), the
documented dtypes (``uint8``, ``uint16``, float16/32/64 in 0-255), channel
layouts (``H×W``, ``H×W×1``, ``H×W×3``, ``H×W×4``) and value ranges (random,
constant black or white, floats far outside 0-255): the output has the input's
shape and dtype, its values lie in the documented range (0-255; 0-65535 for
``uint16``), nothing is NaN, an alpha channel is kept and the input is not
modified.  Anything else (other dtypes and shapes, NaN or infinity) raises
``TypeError`` or ``ValueError`` whose message names the input and what is
wrong, never another exception.
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from unirestore_mm.datasets.transforms import (
    NAMED_DEGRADATIONS,
    RandomDegradation,
)
from unirestore_mm.datasets.transforms import degradations as D

from .image_strategies import (
    DTYPES,
    FLOAT_DTYPES,
    SETTINGS,
    bad_images,
    check_output,
    images,
)

# numpy's overflow and invalid-value warnings (a cast out of range, a NaN made
# on the way) are failures here
pytestmark = pytest.mark.filterwarnings('error::RuntimeWarning')


@pytest.mark.parametrize('name', D.ALL_CORRUPTIONS)
@settings(max_examples=20, **SETTINGS)
@given(
    img=images(), severity=st.integers(1, 5), seed=st.integers(0, 2**32 - 1)
)
def test_functions_keep_shape_dtype_and_range(name, img, severity, seed):
    before = img.copy()
    out = D.CORRUPTION_FUNCS[name](img, severity, seed)
    check_output(
        out, img, f'add_{name}({img.shape}, {img.dtype}, severity={severity})'
    )
    np.testing.assert_array_equal(
        img, before, err_msg='the input was modified in place'
    )
    # the same seed gives the same output
    np.testing.assert_array_equal(D.corrupt(img, name, severity, seed), out)


@settings(max_examples=30, **SETTINGS)
@given(
    img=images(max_pixels=24 * 24, dtypes=FLOAT_DTYPES, values=('outside',)),
    name=st.sampled_from(D.ALL_CORRUPTIONS),
    severity=st.integers(1, 5),
)
def test_floats_far_outside_0_255_are_clipped_not_refused(img, name, severity):
    """Finite values of any size (float64 up to 1e300, beyond float32's range)
    are clipped to 0-255."""
    check_output(
        D.corrupt(img, name, severity, 0),
        img,
        f'add_{name}({img.shape}, {img.dtype})',
    )


@pytest.mark.parametrize('name', D.ALL_CORRUPTIONS)
def test_every_dtype_and_layout(name):
    """Each documented dtype and layout once per corruption (hypothesis above
    draws them at random), values across the whole range (floats also far
    beyond it)."""
    rng = np.random.default_rng(0)
    for dtype in DTYPES:
        for layout, shape in (
            ('HW', (5, 7)),
            ('HW1', (5, 7, 1)),
            ('HW3', (5, 7, 3)),
            ('HW4', (5, 7, 4)),
        ):
            if np.dtype(dtype).kind == 'f':
                img = rng.uniform(-1e4, 6e4, shape).astype(dtype)
            else:
                img = rng.integers(0, np.iinfo(dtype).max + 1, shape).astype(
                    dtype
                )
            out = D.corrupt(img, name, 4, 0)
            check_output(out, img, f'add_{name}({shape}, {np.dtype(dtype)})')


@pytest.mark.parametrize('name', D.ALL_CORRUPTIONS)
@settings(max_examples=12, **SETTINGS)
@given(bad=bad_images())
def test_functions_refuse_bad_images_with_a_clear_error(name, bad):
    img, error, text = bad
    with pytest.raises(error) as info:
        D.CORRUPTION_FUNCS[name](img, 3, 0)
    assert text in str(info.value) and str(info.value).startswith('image:'), (
        str(info.value)
    )


@settings(max_examples=25, **SETTINGS)
@given(
    img=images(max_pixels=64 * 64),
    depth_shape=st.sampled_from([None, (1, 1), (5, 3), (64, 64), (7, 9, 1)]),
    depth_kind=st.sampled_from(['random', 'constant', 'huge']),
    airlight=st.one_of(
        st.none(),
        st.floats(0, 1),
        st.tuples(st.floats(0, 1), st.floats(0, 1), st.floats(0, 1)),
    ),
)
def test_haze_with_any_depth_map_and_airlight(
    img, depth_shape, depth_kind, airlight
):
    """A depth map of any size and range is resized and normalised; a constant
    one is a uniform haze."""
    depth = None
    if depth_shape is not None:
        depth = {
            'random': np.random.default_rng(0).random(depth_shape),
            'constant': np.full(depth_shape, 3.0),
            'huge': np.random.default_rng(0).uniform(-1e30, 1e30, depth_shape),
        }[depth_kind].astype(np.float32)
    out = D.add_haze(img, 4, 0, depth=depth, airlight=airlight)
    check_output(
        out,
        img,
        f'add_haze({img.shape}, {img.dtype}, depth {depth_shape}, airlight '
        f'{airlight})',
    )


@pytest.mark.parametrize(
    'depth,airlight,text',
    [
        (np.zeros((4, 4, 2)), None, 'depth'),
        (np.zeros((0, 3)), None, 'depth'),
        (np.full((4, 4), np.nan), None, 'NaN'),
        (np.zeros(7), None, 'depth'),
        (None, (0.5, 0.5), 'airlight'),
        (None, 1.5, 'airlight'),
        (None, (0, np.nan, 0), 'airlight'),
    ],
)
def test_haze_refuses_bad_depth_and_airlight(depth, airlight, text):
    with pytest.raises(ValueError, match=text):
        D.add_haze(
            np.zeros((4, 4, 3), np.uint8), 3, 0, depth=depth, airlight=airlight
        )


# -----------------------------------------------------------------------------
# The registered transforms
# -----------------------------------------------------------------------------
def check_transform(t, img, idx):
    before = img.copy()
    out = t(dict(img=img, sample_idx=idx))
    check_output(out['img'], img, repr(t))
    np.testing.assert_array_equal(
        out['gt_img'],
        before,
        err_msg=f'{t!r}: clean copy differs from the input',
    )
    np.testing.assert_array_equal(
        img, before, err_msg=f'{t!r}: the input was modified in place'
    )
    return out


@pytest.mark.parametrize(
    'cls', list(NAMED_DEGRADATIONS.values()), ids=list(NAMED_DEGRADATIONS)
)
@settings(max_examples=8, **SETTINGS)
@given(
    img=images(max_pixels=96 * 96),
    severity=st.integers(1, 5),
    order=st.sampled_from(['bgr', 'rgb']),
    idx=st.integers(0, 10**6),
)
def test_named_transforms_keep_shape_dtype_and_range(
    cls, img, severity, order, idx
):
    check_transform(
        cls(severity=severity, seed=0, channel_order=order), img, idx
    )


@settings(max_examples=30, **SETTINGS)
@given(
    img=images(),
    scale=st.one_of(st.none(), st.floats(0.01, 0.99)),
    order=st.sampled_from(['bgr', 'rgb']),
    idx=st.integers(0, 10**6),
)
def test_random_degradation_with_resizing_keeps_shape_dtype_and_range(
    img, scale, order, idx
):
    """Down-scale (to ``scale`` of the short side), corrupt, scale back (cubic,
    which overshoots) for every dtype, float16 included."""
    short_side = (
        None
        if scale is None
        else (max(1, int(min(img.shape[:2]) * scale)),) * 2
    )
    short_side = (
        None if short_side is None else (short_side[0], short_side[0] + 1)
    )
    t = RandomDegradation(
        corruptions='all',
        resize_short_side=short_side,
        seed=1,
        channel_order=order,
    )
    out = check_transform(t, img, idx)
    assert out['degradation']['name'] in D.ALL_CORRUPTIONS
    if short_side is not None and short_side[0] < min(img.shape[:2]):
        assert out['degradation']['short_side'] == short_side[0]


@settings(max_examples=30, **SETTINGS)
@given(bad=bad_images())
def test_transforms_refuse_bad_images_naming_the_key(bad):
    img, error, text = bad
    t = RandomDegradation(corruptions='all', resize_short_side=(2, 3), seed=0)
    with pytest.raises(error) as info:
        t(dict(img=img, sample_idx=0))
    msg = str(info.value)
    assert text in msg and "RandomDegradation: results['img']" in msg, msg
