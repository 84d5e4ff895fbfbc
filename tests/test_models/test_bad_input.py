"""restore() refuses bad input with an error that says what was expected."""
import pytest
import torch

from unirestore_mm.models import UniRestore


@pytest.fixture(scope='module')
def model():
    return UniRestore('tiny').eval()


@pytest.mark.parametrize('bad, error, match', [
    (torch.randint(0, 255, (1, 3, 8, 8), dtype=torch.uint8), TypeError, r'floating-point.*divide uint8'),
    (torch.randint(0, 2, (1, 3, 8, 8)), TypeError, 'floating-point'),
    (torch.rand(1, 3, 8, 8) * 255, ValueError, r'\[0, 1\].*divide by 255'),
    (torch.rand(1, 3, 8, 8) - 0.5, ValueError, r'values must lie in \[0, 1\]'),
    (torch.rand(1, 1, 8, 8), ValueError, r'3 \(RGB\) channels'),
    (torch.rand(1, 4, 8, 8), ValueError, r'3 \(RGB\) channels'),
    (torch.rand(0, 3, 8, 8), ValueError, 'batch is empty'),
    (torch.rand(8, 8), ValueError, r'shape \(B, 3, H, W\)'),
    (torch.rand(1, 3, 0, 8), ValueError, 'empty spatial size'),
    (torch.full((1, 3, 8, 8), float('nan')), ValueError, 'NaN or Inf'),
    (torch.tensor([[[[float('inf')]]] * 3]).view(1, 3, 1, 1), ValueError, 'NaN or Inf'),
    ([[0.5]], TypeError, 'torch.Tensor'),
])
def test_bad_images(model, bad, error, match):
    with pytest.raises(error, match=match):
        model.restore(bad)


def test_half_precision_input_round_trips_dtype(model):
    x = torch.rand(1, 3, 16, 16, dtype=torch.float64)
    assert model.restore(x, seed=0).dtype == torch.float64
