"""The TFA gates' fast path (one shared InstanceNorm, the last conv + average
pool folded into per-tap means) computes what the gates' nn.Sequential
computes, values and gradients, at every size including 1-pixel edges."""

import pytest
import torch
from torch import nn

from unirestore_mm.models.tfa import TaskFeatureAdapter, pooled_conv3x3


@pytest.mark.parametrize(
    'hw', [(1, 1), (1, 5), (4, 1), (2, 3), (7, 9), (33, 32)]
)
def test_pooled_conv3x3_is_pool_of_conv(hw):
    torch.manual_seed(0)
    conv = nn.Conv2d(6, 10, 3, padding=1)
    g = torch.randn(2, 6, *hw, dtype=torch.float64)
    conv = conv.double()
    ref = nn.AdaptiveAvgPool2d(1)(conv(g))
    got = pooled_conv3x3(g, conv)
    assert got.shape == ref.shape == (2, 10, 1, 1)
    torch.testing.assert_close(got, ref, rtol=0, atol=1e-12)


def test_pooled_conv3x3_edges_matter():
    """Zero padding: a tap reads the image less one edge row/column, so a value
    on the edge changes the pooled output differently from a value inside (a
    plain mean-then-centre-tap would miss this)."""
    conv = nn.Conv2d(1, 1, 3, padding=1, bias=False).double()
    with torch.no_grad():
        conv.weight.zero_()
        # top-left tap: reads g[y-1, x-1], never the last row or column
        conv.weight[0, 0, 0, 0] = 1.0
    g = torch.zeros(1, 1, 4, 4, dtype=torch.float64)
    g[0, 0, 3, 1] = 1.0  # last row
    assert (
        pooled_conv3x3(g, conv).item()
        == 0.0
        == nn.AdaptiveAvgPool2d(1)(conv(g)).item()
    )
    g[0, 0, 1, 1] = 1.0
    assert (
        pooled_conv3x3(g, conv).item()
        == pytest.approx(1 / 16)
        == nn.AdaptiveAvgPool2d(1)(conv(g)).item()
    )


def _adapter():
    torch.manual_seed(1)
    tfa = TaskFeatureAdapter(c_x=24, c_skip=16, next_dim=8)
    for p in tfa.parameters():
        nn.init.normal_(p, std=0.2)
    return tfa


def test_fast_gates_equal_the_sequentials_values_and_gradients():
    tfa = _adapter()
    x = torch.randn(2, 24, 12, 10)
    skip = torch.randn(2, 16, 12, 10, requires_grad=True)
    token = torch.randn(2, 1, 16)
    outs, grads = {}, {}
    for fast in (True, False):
        tfa.fast_gates = fast
        tfa.zero_grad()
        skip.grad = None
        y, nxt = tfa(x, skip, token)
        (y.square().mean() + nxt.sum()).backward()
        outs[fast] = (y.detach(), nxt.detach())
        grads[fast] = [skip.grad.clone()] + [
            p.grad.clone() for p in tfa.parameters()
        ]
    torch.testing.assert_close(outs[True], outs[False], rtol=1e-5, atol=1e-6)
    for a, b in zip(grads[True], grads[False]):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)
    # the gates are not trivially equal: the token moves with the skip
    y2, _ = tfa(x, skip.detach() * 2, token)
    assert not torch.allclose(y2, outs[False][0])


def test_fast_gates_fall_back_when_a_gate_is_not_the_standard_one():
    tfa = _adapter()
    # not a plain 3x3: cannot be folded
    tfa.info_gate[3] = nn.Conv2d(16, 16, 3, padding=2, dilation=2)
    skip = torch.randn(1, 16, 8, 8)
    seqs = [tfa.filter_gate(skip), tfa.info_gate(skip), tfa.content_gate(skip)]
    for got, ref in zip(tfa.gates(skip), seqs):
        assert torch.equal(got, ref)
