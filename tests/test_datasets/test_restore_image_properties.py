"""Property-based tests (hypothesis) of the ``RestoreImage`` transform with a
tiny, randomly initialised restorer.

Over sizes from 1×1 to 257×131 (odd and non-square included), ``uint8``,
``uint16`` and float16/32/64 images (floats in 0-255 as documented, also far
outside it), ``H×W``, ``H×W×1``, ``H×W×3`` and ``H×W×4`` layouts, both channel
orders: the restored image has the input's shape and dtype, values in the
documented range (0-255, 0-65535 for ``uint16``), no NaN, the input's alpha
channel, and the input is left as it was.  Other inputs raise
``TypeError``/``ValueError`` naming ``RestoreImage`` and the problem.  The
restorer's weights are random (``allow_random_weights=True``): these tests
check the plumbing around it, not restoration quality.
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from unirestore_mm.datasets.transforms import RestoreImage

from .image_strategies import (
    DTYPES,
    FLOAT_DTYPES,
    LAYOUTS,
    SETTINGS,
    bad_images,
    check_output,
    images,
)

pytestmark = pytest.mark.filterwarnings('error::RuntimeWarning')


@pytest.fixture(scope='module')
def transforms():
    torch = pytest.importorskip('torch')
    torch.set_num_threads(1)
    built = {
        order: RestoreImage(
            task='ir',
            seed=0,
            channel_order=order,
            allow_random_weights=True,
            lazy=False,
        )
        for order in ('bgr', 'rgb')
    }
    return built


@pytest.mark.parametrize('dtype', DTYPES)
@pytest.mark.parametrize('layout', LAYOUTS)
def test_every_dtype_and_layout(transforms, dtype, layout):
    """Each documented dtype and layout once, values across the whole range
    (floats also beyond it)."""
    rng = np.random.default_rng(0)
    shape = {
        'HW': (5, 7),
        'HW1': (5, 7, 1),
        'HW3': (5, 7, 3),
        'HW4': (5, 7, 4),
    }[layout]
    if np.dtype(dtype).kind == 'f':
        img = rng.uniform(-1e4, 6e4, shape).astype(dtype)
    else:
        img = rng.integers(0, np.iinfo(dtype).max + 1, shape).astype(dtype)
    img[0, 0] = 0
    before = img.copy()
    out = transforms['bgr'](dict(img=img))['img']
    check_output(out, img, f'RestoreImage({shape}, {np.dtype(dtype)})')
    np.testing.assert_array_equal(img, before)


@settings(max_examples=25, **SETTINGS)
@given(img=images(), order=st.sampled_from(['bgr', 'rgb']))
def test_restored_image_keeps_shape_dtype_and_range(transforms, img, order):
    before = img.copy()
    out = transforms[order](dict(img=img))
    check_output(
        out['img'], img, f'RestoreImage({img.shape}, {img.dtype}, {order})'
    )
    np.testing.assert_array_equal(
        img, before, err_msg='the input was modified in place'
    )
    assert out['restoration'] == dict(task='ir', num_steps=1)


@settings(max_examples=20, **SETTINGS)
@given(
    img=images(max_pixels=24 * 24, dtypes=FLOAT_DTYPES, values=('outside',))
)
def test_floats_far_outside_0_255_are_clipped_not_refused(transforms, img):
    """Finite values of any size (float64 up to 1e300, beyond float32's range)
    are clipped to 0-255."""
    out = transforms['rgb'](dict(img=img))['img']
    check_output(out, img, f'RestoreImage({img.shape}, {img.dtype})')


@settings(max_examples=30, **SETTINGS)
@given(bad=bad_images())
def test_bad_images_are_refused_with_a_clear_error(transforms, bad):
    img, error, _ = bad
    with pytest.raises(error) as info:
        transforms['bgr'](dict(img=img))
    msg = str(info.value)
    assert msg.startswith('RestoreImage'), msg
    # the message says what is wrong with it: its dtype, shape or values
    if isinstance(img, np.ndarray):
        assert (
            str(img.dtype) in msg or str(img.shape) in msg or 'NaN' in msg
        ), msg
