"""The building blocks against the paper's equations (DESIGN.md §2)."""

import torch
from torch.nn import functional as F

from unirestore_mm.models import (
    CFRMBlock,
    Controller,
    NAFBlock,
    SkipAdapter,
    TaskFeatureAdapter,
    TaskFeatureAdapters,
    TaskPromptBank,
)
from unirestore_mm.models.cfrm import LayerNorm2d
from unirestore_mm.models.skip_adapters import unet_skip_channels


def test_layernorm2d_normalises_channels():
    x = torch.randn(2, 8, 5, 3) * 3 + 1
    y = LayerNorm2d(8)(x)
    assert torch.allclose(y.mean(1), torch.zeros(2, 5, 3), atol=1e-5)
    assert torch.allclose(
        y.var(1, unbiased=False), torch.ones(2, 5, 3), atol=1e-3
    )


def test_nafblock_starts_as_identity():
    x = torch.randn(2, 16, 9, 7)
    assert torch.equal(NAFBlock(16)(x), x)


def test_cfrm_block_steps():
    torch.manual_seed(0)
    block = CFRMBlock(8, expansion=4, groups=16)
    x = torch.randn(2, 8, 6, 5)
    # recompute the four steps by hand
    y = block.norm(block.conv_in(x))
    y = F.gelu(block.group_conv(y))
    y = y * block.intra_group_attn(y.mean((2, 3), keepdim=True))
    w = block.inter_group_attn(y.mean((2, 3), keepdim=True))  # (2, 16, 1, 1)
    # each group's weight on its 2 channels
    per_channel = w.repeat_interleave(32 // 16, dim=1)
    expected = block.naf(x + block.conv_out(y * per_channel))
    assert torch.allclose(block(x), expected, atol=1e-6)
    assert (
        block.group_conv.groups == 16 and block.intra_group_attn.groups == 16
    )


def test_tfa_shapes_and_token_passing():
    tfas = TaskFeatureAdapters((64, 64, 64), (64, 32, 16))
    bank = TaskPromptBank(dim=tfas.prompt_dim)
    token = bank['ir'].unsqueeze(0).expand(2, -1, -1)
    x = torch.randn(2, 64, 4, 4)
    skips = [
        torch.randn(2, 64, 4, 4),
        torch.randn(2, 32, 8, 8),
        torch.randn(2, 16, 16, 16),
    ]
    widths = []
    for i, tfa in enumerate(tfas.adapters):
        x = F.interpolate(x, size=skips[i].shape[-2:])
        x, token = tfa(x, skips[i], token)
        widths.append(None if token is None else token.shape[-1])
    # 64 -> 32 -> 16, the last TFA hands nothing on
    assert widths == [32, 16, None]
    assert x.shape == (2, 64, 16, 16)


def test_tfa_token_update_equation():
    torch.manual_seed(0)
    tfa = TaskFeatureAdapter(c_x=8, c_skip=8, next_dim=4)
    x, skip, tok = (
        torch.randn(1, 8, 4, 4),
        torch.randn(1, 8, 4, 4),
        torch.randn(1, 1, 8),
    )
    f = F.softmax(tfa.filter_gate(skip).view(1, 1, 8), -1)
    i = F.softmax(tfa.info_gate(skip).view(1, 1, 8), -1)
    c = torch.tanh(tfa.content_gate(skip).view(1, 1, 8))
    new = f * tok + i * c
    o = torch.tanh(tfa.out_gate(new.flatten(1)))[:, :, None, None]
    skip2 = skip + tfa.skip_out(o * tfa.skip_in(skip))
    expected = x + tfa.fuse(torch.cat([x, skip2], 1))
    out, nxt = tfa(x, skip, tok)
    assert torch.allclose(out, expected, atol=1e-6)
    assert torch.allclose(nxt, F.gelu(tfa.next_token(new)), atol=1e-6)


def test_skip_adapter_equation():
    torch.manual_seed(0)
    a = SkipAdapter(6, 4)
    x, c = torch.randn(2, 6, 5, 5), torch.randn(2, 4, 5, 5)
    p = a.proj(c)
    assert torch.allclose(a(x, c), a.tuner(x + p) + p + x)


def test_unet_skip_channels_sd():
    assert (
        unet_skip_channels(
            dict(block_out_channels=(320, 640, 1280, 1280), layers_per_block=2)
        )
        == [320] * 4 + [640] * 3 + [1280] * 5
    )


def test_controller_zero_init_and_time_awareness():
    torch.manual_seed(0)
    c = Controller(
        model_channels=32,
        out_channels=32,
        channel_mult=(1, 2),
        num_res_blocks=1,
        down_block_types=('AttnDownBlock2D', 'DownBlock2D'),
        num_heads=2,
        norm_num_groups=8,
    )
    for out in c.level_outs:
        assert (out.conv2.weight == 0).all() and (out.conv2.bias == 0).all()
    with torch.no_grad():
        for out in c.level_outs:
            out.conv2.weight.normal_(0, 0.1)
        z = torch.randn(1, 4, 8, 8)
        a = c(z, torch.tensor([999]))
        b = c(z, torch.tensor([249]))
    assert set(a) == {(8, 8), (4, 4)}
    # the maps depend on the timestep
    assert not torch.allclose(a[(8, 8)], b[(8, 8)])


def test_controller_makes_each_level_contiguous_before_its_projection():
    """As the authors' release: a level that an attention block (or a device
    kernel) leaves non-contiguous is made contiguous before its last ResNet
    projection, so the sums run in the same order as theirs."""
    torch.manual_seed(0)
    c = Controller(model_channels=32, out_channels=32, norm_num_groups=8)
    with torch.no_grad():
        for p in c.parameters():
            if (p == 0).all():
                p.normal_(0, 0.05)
    z, t = torch.randn(2, 4, 16, 16), torch.tensor([999, 500])
    ref = c(z, t)
    # make every level's states non-contiguous (channels-last), as the
    # release's layers may leave them
    handles = [
        b.register_forward_hook(
            lambda mod, args, out: (
                out[0],
                tuple(s.to(memory_format=torch.channels_last) for s in out[1]),
            )
        )
        for b in c.down_blocks
    ]
    handles.append(
        c.mid_block.register_forward_hook(
            lambda mod, args, out: out.to(memory_format=torch.channels_last)
        )
    )
    seen = []
    handles += [
        o.register_forward_pre_hook(
            lambda mod, args: seen.append(args[0].is_contiguous())
        )
        for o in c.level_outs
    ]
    out = c(z, t)
    for h in handles:
        h.remove()
    assert seen == [True] * len(c.level_outs)
    for k in ref:
        assert torch.equal(out[k], ref[k])
