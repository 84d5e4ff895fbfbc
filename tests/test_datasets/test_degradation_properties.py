"""Property-based tests (hypothesis) of every degradation, as a function and as a registered transform.

Over sizes from 1×1 to 257 pixels a side (odd and non-square included), the documented dtypes (``uint8``,
``uint16``, float16/32/64 in 0-255), channel layouts (``H×W``, ``H×W×1``, ``H×W×3``, ``H×W×4``) and value ranges
(random, constant black or white, floats far outside 0-255): the output has the input's shape and dtype, its
values lie in the documented range (0-255; 0-65535 for ``uint16``), nothing is NaN, an alpha channel is kept and
the input is not modified.  Anything else (other dtypes and shapes, NaN or infinity) raises ``TypeError`` or
``ValueError`` whose message names the input and what is wrong, never another exception.
"""
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from unirestore_mm.datasets.transforms import NAMED_DEGRADATIONS, RandomDegradation
from unirestore_mm.datasets.transforms import degradations as D

SETTINGS = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True)
DTYPES = (np.uint8, np.uint16, np.float16, np.float32, np.float64)
LAYOUTS = ('HW', 'HW1', 'HW3', 'HW4')
PEAK = {np.dtype(np.uint8): 255, np.dtype(np.uint16): 65535}
# sides: tiny ones, the odd large ones, anything in between
SIDES = st.one_of(st.integers(1, 4), st.sampled_from([5, 7, 31, 33, 64, 127, 131, 255, 256, 257]), st.integers(1, 257))


def _shape(h, w, layout):
    return {'HW': (h, w), 'HW1': (h, w, 1), 'HW3': (h, w, 3), 'HW4': (h, w, 4)}[layout]


@st.composite
def images(draw, max_pixels=257 * 131):
    """A valid image: size, layout, dtype and values (``random``, ``black``, ``white``, and for floats
    ``outside``: values far below 0 and above 255, which are documented to be clipped)."""
    h, w = draw(SIDES), draw(SIDES)
    if h * w > max_pixels:  # keep the run short: at most the 257×131 of the brief
        w = max(1, max_pixels // h)
    layout = draw(st.sampled_from(LAYOUTS))
    dtype = np.dtype(draw(st.sampled_from(DTYPES)))
    floating = dtype.kind == 'f'
    values = draw(st.sampled_from(('random', 'black', 'white', 'outside') if floating else ('random', 'black', 'white')))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    shape = _shape(h, w, layout)
    peak = PEAK.get(dtype, 255)
    if values == 'random':
        img = rng.integers(0, peak + 1, shape) if not floating else rng.uniform(0, 255, shape)
    elif values == 'black':
        img = np.zeros(shape)
    elif values == 'white':
        img = np.full(shape, peak)
    else:
        big = 6e4 if dtype == np.float16 else 1e30
        img = rng.choice([-big, -300.0, -1.0, 0.0, 128.0, 255.0, 256.0, 1e4, big], size=shape)
    return np.ascontiguousarray(img.astype(dtype))


def check_output(out, img, where):
    assert isinstance(out, np.ndarray), where
    assert out.shape == img.shape, f'{where}: shape {out.shape} from {img.shape}'
    assert out.dtype == img.dtype, f'{where}: dtype {out.dtype} from {img.dtype}'
    color = out[..., :3] if (out.ndim == 3 and out.shape[2] == 4) else out
    if out.dtype.kind == 'f':
        assert not np.isnan(out).any(), f'{where}: NaN in the output'
        assert color.min() >= 0 and color.max() <= 255, f'{where}: values {color.min()}..{color.max()} outside 0..255'
    if out.ndim == 3 and out.shape[2] == 4:
        np.testing.assert_array_equal(out[..., 3], img[..., 3], err_msg=f'{where}: alpha channel changed')


@pytest.mark.parametrize('name', D.ALL_CORRUPTIONS)
@settings(max_examples=20, **SETTINGS)
@given(img=images(), severity=st.integers(1, 5), seed=st.integers(0, 2**32 - 1))
def test_functions_keep_shape_dtype_and_range(name, img, severity, seed):
    before = img.copy()
    out = D.CORRUPTION_FUNCS[name](img, severity, seed)
    check_output(out, img, f'add_{name}({img.shape}, {img.dtype}, severity={severity})')
    np.testing.assert_array_equal(img, before, err_msg='the input was modified in place')
    # the same seed gives the same output
    np.testing.assert_array_equal(D.corrupt(img, name, severity, seed), out)


@st.composite
def bad_images(draw):
    """An image the functions must refuse, and a piece of text the error message has to contain."""
    kind = draw(st.sampled_from(('dtype', 'channels', 'ndim', 'empty', 'nonfinite', 'type')))
    h, w = draw(st.integers(1, 9)), draw(st.integers(1, 9))
    if kind == 'dtype':
        dtype = np.dtype(draw(st.sampled_from([np.int8, np.int16, np.int32, np.int64, np.uint32, np.uint64, bool,
                                               np.complex64, object])))
        return np.zeros(_shape(h, w, draw(st.sampled_from(LAYOUTS))), dtype), TypeError, str(dtype)
    if kind == 'channels':
        shape = (h, w, draw(st.sampled_from([0, 2, 5, 6])))
        return np.zeros(shape, np.uint8), ValueError, str(shape)
    if kind == 'ndim':
        shape = draw(st.sampled_from([(h, ), (h, w, 3, 1), (1, h, w, 3), ()]))
        return np.zeros(shape, np.uint8), ValueError, str(shape)
    if kind == 'empty':
        shape = draw(st.sampled_from([(0, w), (h, 0, 3), (0, 0, 1)]))
        return np.zeros(shape, np.float32), ValueError, str(shape)
    if kind == 'nonfinite':
        dtype = np.dtype(draw(st.sampled_from([np.float16, np.float32, np.float64])))
        shape = _shape(h, w, draw(st.sampled_from(LAYOUTS)))
        img = np.full(shape, 100.0, dtype)
        img.flat[draw(st.integers(0, img.size - 1))] = draw(st.sampled_from([np.nan, np.inf, -np.inf]))
        return img, ValueError, 'NaN or infinite'
    return draw(st.sampled_from([[[0, 1], [2, 3]], None, 'img.png'])), TypeError, 'numpy array'


@pytest.mark.parametrize('name', D.ALL_CORRUPTIONS)
@settings(max_examples=12, **SETTINGS)
@given(bad=bad_images())
def test_functions_refuse_bad_images_with_a_clear_error(name, bad):
    img, error, text = bad
    with pytest.raises(error) as info:
        D.CORRUPTION_FUNCS[name](img, 3, 0)
    assert text in str(info.value) and str(info.value).startswith('image:'), str(info.value)


@settings(max_examples=25, **SETTINGS)
@given(img=images(max_pixels=64 * 64), depth_shape=st.sampled_from([None, (1, 1), (5, 3), (64, 64), (7, 9, 1)]),
       depth_kind=st.sampled_from(['random', 'constant', 'huge']),
       airlight=st.one_of(st.none(), st.floats(0, 1), st.tuples(st.floats(0, 1), st.floats(0, 1), st.floats(0, 1))))
def test_haze_with_any_depth_map_and_airlight(img, depth_shape, depth_kind, airlight):
    """A depth map of any size and range is resized and normalised; a constant one is a uniform haze."""
    depth = None
    if depth_shape is not None:
        depth = {'random': np.random.default_rng(0).random(depth_shape), 'constant': np.full(depth_shape, 3.0),
                 'huge': np.random.default_rng(0).uniform(-1e30, 1e30, depth_shape)}[depth_kind].astype(np.float32)
    out = D.add_haze(img, 4, 0, depth=depth, airlight=airlight)
    check_output(out, img, f'add_haze({img.shape}, {img.dtype}, depth {depth_shape}, airlight {airlight})')


@pytest.mark.parametrize('depth,airlight,text', [
    (np.zeros((4, 4, 2)), None, 'depth'), (np.zeros((0, 3)), None, 'depth'), (np.full((4, 4), np.nan), None, 'NaN'),
    (np.zeros(7), None, 'depth'), (None, (0.5, 0.5), 'airlight'), (None, 1.5, 'airlight'), (None, (0, np.nan, 0), 'airlight')])
def test_haze_refuses_bad_depth_and_airlight(depth, airlight, text):
    with pytest.raises(ValueError, match=text):
        D.add_haze(np.zeros((4, 4, 3), np.uint8), 3, 0, depth=depth, airlight=airlight)


# ----------------------------------------------------------------------------------------------------------------
# The registered transforms
# ----------------------------------------------------------------------------------------------------------------
def check_transform(t, img, idx):
    before = img.copy()
    out = t(dict(img=img, sample_idx=idx))
    check_output(out['img'], img, repr(t))
    np.testing.assert_array_equal(out['gt_img'], before, err_msg=f'{t!r}: clean copy differs from the input')
    np.testing.assert_array_equal(img, before, err_msg=f'{t!r}: the input was modified in place')
    return out


@pytest.mark.parametrize('cls', list(NAMED_DEGRADATIONS.values()), ids=list(NAMED_DEGRADATIONS))
@settings(max_examples=8, **SETTINGS)
@given(img=images(max_pixels=96 * 96), severity=st.integers(1, 5), order=st.sampled_from(['bgr', 'rgb']),
       idx=st.integers(0, 10**6))
def test_named_transforms_keep_shape_dtype_and_range(cls, img, severity, order, idx):
    check_transform(cls(severity=severity, seed=0, channel_order=order), img, idx)


@settings(max_examples=30, **SETTINGS)
@given(img=images(), scale=st.one_of(st.none(), st.floats(0.01, 0.99)), order=st.sampled_from(['bgr', 'rgb']),
       idx=st.integers(0, 10**6))
def test_random_degradation_with_resizing_keeps_shape_dtype_and_range(img, scale, order, idx):
    """Down-scale (to ``scale`` of the short side), corrupt, scale back (cubic, which overshoots) for every dtype,
    float16 included."""
    short_side = None if scale is None else (max(1, int(min(img.shape[:2]) * scale)), ) * 2
    short_side = None if short_side is None else (short_side[0], short_side[0] + 1)
    t = RandomDegradation(corruptions='all', resize_short_side=short_side, seed=1, channel_order=order)
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
