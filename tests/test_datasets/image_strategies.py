"""Hypothesis strategies of images for the property-based tests, and the output
check they share."""

import numpy as np
from hypothesis import HealthCheck
from hypothesis import strategies as st

# derandomize: the same examples on every run (a CI failure reproduces
# locally); deadline: CPU time varies
SETTINGS = dict(
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    derandomize=True,
)
DTYPES = (np.uint8, np.uint16, np.float16, np.float32, np.float64)
LAYOUTS = ('HW', 'HW1', 'HW3', 'HW4')
PEAK = {np.dtype(np.uint8): 255, np.dtype(np.uint16): 65535}
# sides: tiny ones, the odd large ones, anything in between
SIDES = st.one_of(
    st.integers(1, 4),
    st.sampled_from([5, 7, 31, 33, 64, 127, 131, 255, 256, 257]),
    st.integers(1, 257),
)


def _shape(h, w, layout):
    return {
        'HW': (h, w),
        'HW1': (h, w, 1),
        'HW3': (h, w, 3),
        'HW4': (h, w, 4),
    }[layout]


FLOAT_DTYPES = (np.float16, np.float32, np.float64)


@st.composite
def images(draw, max_pixels=257 * 131, dtypes=DTYPES, values=None):
    """A valid image: size, layout, dtype and values (``random``, ``black``,
    ``white``, and for floats ``outside``: values far below 0 and above 255, up
    to the dtype's limits, which are documented to be clipped). ``values``
    restricts the kinds of values drawn."""
    h, w = draw(SIDES), draw(SIDES)
    # keep the run short: at most the 257×131 of the brief
    if h * w > max_pixels:
        w = max(1, max_pixels // h)
    layout = draw(st.sampled_from(LAYOUTS))
    dtype = np.dtype(draw(st.sampled_from(dtypes)))
    floating = dtype.kind == 'f'
    kinds = (
        ('random', 'black', 'white', 'outside')
        if floating
        else ('random', 'black', 'white')
    )
    values = draw(
        st.sampled_from([v for v in kinds if values is None or v in values])
    )
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    shape = _shape(h, w, layout)
    peak = PEAK.get(dtype, 255)
    if values == 'random':
        img = (
            rng.integers(0, peak + 1, shape)
            if not floating
            else rng.uniform(0, 255, shape)
        )
    elif values == 'black':
        img = np.zeros(shape)
    elif values == 'white':
        img = np.full(shape, peak)
    else:
        big = {np.dtype(np.float16): 6e4, np.dtype(np.float32): 1e30}.get(
            dtype, 1e300
        )
        img = rng.choice(
            [-big, -300.0, -1.0, 0.0, 128.0, 255.0, 256.0, 1e4, big],
            size=shape,
        )
    return np.ascontiguousarray(img.astype(dtype))


def check_output(out, img, where):
    """``out`` has ``img``'s shape and dtype, no NaN, colour values in 0-255
    for floats (integer dtypes are in range by construction), and ``img``'s
    alpha channel."""
    assert isinstance(out, np.ndarray), where
    assert out.shape == img.shape, (
        f'{where}: shape {out.shape} from {img.shape}'
    )
    assert out.dtype == img.dtype, (
        f'{where}: dtype {out.dtype} from {img.dtype}'
    )
    color = out[..., :3] if (out.ndim == 3 and out.shape[2] == 4) else out
    if out.dtype.kind == 'f':
        assert not np.isnan(out).any(), f'{where}: NaN in the output'
        assert color.min() >= 0 and color.max() <= 255, (
            f'{where}: values {color.min()}..{color.max()} outside 0..255'
        )
    if out.ndim == 3 and out.shape[2] == 4:
        np.testing.assert_array_equal(
            out[..., 3], img[..., 3], err_msg=f'{where}: alpha channel changed'
        )


@st.composite
def bad_images(draw):
    """An image that must be refused:
    ``(image, exception type, text the message has to contain)``."""
    kind = draw(
        st.sampled_from(
            ('dtype', 'channels', 'ndim', 'empty', 'nonfinite', 'type')
        )
    )
    h, w = draw(st.integers(1, 9)), draw(st.integers(1, 9))
    if kind == 'dtype':
        dtype = np.dtype(
            draw(
                st.sampled_from(
                    [
                        np.int8,
                        np.int16,
                        np.int32,
                        np.int64,
                        np.uint32,
                        np.uint64,
                        bool,
                        np.complex64,
                        object,
                    ]
                )
            )
        )
        return (
            np.zeros(_shape(h, w, draw(st.sampled_from(LAYOUTS))), dtype),
            TypeError,
            str(dtype),
        )
    if kind == 'channels':
        shape = (h, w, draw(st.sampled_from([0, 2, 5, 6])))
        return np.zeros(shape, np.uint8), ValueError, str(shape)
    if kind == 'ndim':
        shape = draw(st.sampled_from([(h,), (h, w, 3, 1), (1, h, w, 3), ()]))
        return np.zeros(shape, np.uint8), ValueError, str(shape)
    if kind == 'empty':
        shape = draw(st.sampled_from([(0, w), (h, 0, 3), (0, 0, 1)]))
        return np.zeros(shape, np.float32), ValueError, str(shape)
    if kind == 'nonfinite':
        dtype = np.dtype(
            draw(st.sampled_from([np.float16, np.float32, np.float64]))
        )
        shape = _shape(h, w, draw(st.sampled_from(LAYOUTS)))
        img = np.full(shape, 100.0, dtype)
        img.flat[draw(st.integers(0, img.size - 1))] = draw(
            st.sampled_from([np.nan, np.inf, -np.inf])
        )
        return img, ValueError, 'NaN or infinite'
    return (
        draw(st.sampled_from([[[0, 1], [2, 3]], None, 'img.png'])),
        TypeError,
        'numpy array',
    )
