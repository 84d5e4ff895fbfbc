"""restore() refuses bad input with an error that says what was expected."""

import pytest
import torch

from unirestore_mm.models import UniRestore


@pytest.fixture(scope='module')
def model():
    return UniRestore('tiny').eval()


@pytest.mark.parametrize(
    'bad, error, match',
    [
        (
            torch.randint(0, 255, (1, 3, 8, 8), dtype=torch.uint8),
            TypeError,
            r'floating-point.*divide uint8',
        ),
        (torch.randint(0, 2, (1, 3, 8, 8)), TypeError, 'floating-point'),
        (torch.rand(1, 3, 8, 8) * 255, ValueError, r'\[0, 1\].*divide by 255'),
        (
            torch.rand(1, 3, 8, 8) - 0.5,
            ValueError,
            r'values must lie in \[0, 1\]',
        ),
        (torch.rand(1, 1, 8, 8), ValueError, r'3 \(RGB\) channels'),
        (torch.rand(1, 4, 8, 8), ValueError, r'3 \(RGB\) channels'),
        (torch.rand(0, 3, 8, 8), ValueError, 'batch is empty'),
        (torch.rand(8, 8), ValueError, r'shape \(B, 3, H, W\)'),
        (torch.rand(1, 3, 0, 8), ValueError, 'empty spatial size'),
        (torch.full((1, 3, 8, 8), float('nan')), ValueError, 'NaN or Inf'),
        (
            torch.tensor([[[[float('inf')]]] * 3]).view(1, 3, 1, 1),
            ValueError,
            'NaN or Inf',
        ),
        ([[0.5]], TypeError, 'torch.Tensor'),
    ],
)
def test_bad_images(model, bad, error, match):
    with pytest.raises(error, match=match):
        model.restore(bad)


@pytest.mark.parametrize(
    'dtype', [torch.float16, torch.bfloat16, torch.float64]
)
def test_half_precision_input_round_trips_dtype(model, dtype):
    """float16/bfloat16/float64 images are restored in the model's precision
    (float32) and handed back in their own dtype: the result is the float32
    restoration of the same values, cast to the input's dtype."""
    x = torch.rand(
        2, 3, 16, 24, generator=torch.Generator().manual_seed(0)
    ).to(dtype)
    y = model.restore(x, seed=0)
    assert y.dtype == dtype and y.shape == x.shape
    ref = model.restore(x.float(), seed=0)
    assert torch.equal(y, ref.to(dtype))
    # a restoration, not the input handed back
    assert (y.float() - x.float()).abs().mean() > 0.01
