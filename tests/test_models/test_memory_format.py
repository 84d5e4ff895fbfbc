"""Channels-last restoration: the ``memory_format`` policy ('auto' is
channels-last on the CPU, measured faster: docs/speed.md), what it changes
(the convolution weights' layout, so the activations') and what it must not
(the result beyond rounding, the output's layout, checkpoints, the fp32
islands)."""

import copy
import importlib.util
import os.path as osp

import numpy as np
import pytest
import torch

from unirestore_mm.models import UniRestore
from unirestore_mm.models.precision import (
    auto_memory_format,
    resolve_memory_format,
    weights_memory_format,
)

CL, NCHW = torch.channels_last, torch.contiguous_format


def _is_channels_last(t: torch.Tensor) -> bool:
    # a 1x1 kernel or a 1-channel tensor is both; these tests look at 3x3 ones
    return t.is_contiguous(memory_format=CL) and not t.is_contiguous()


@pytest.fixture(scope='module')
def images():
    return torch.rand(2, 3, 40, 56, generator=torch.Generator().manual_seed(0))


@pytest.fixture(scope='module')
def models():
    torch.manual_seed(0)
    plain = UniRestore(preset='tiny').eval()
    return plain, copy.deepcopy(plain).set_memory_format('channels_last')


def test_names_auto_and_bad_values():
    assert resolve_memory_format('auto', 'cpu') == CL
    assert auto_memory_format('cpu') == CL
    # CUDA is not measured here: the contiguous layout stays
    assert auto_memory_format('cuda') == NCHW
    assert resolve_memory_format('contiguous') == NCHW
    assert resolve_memory_format('torch.channels_last') == CL
    assert resolve_memory_format(torch.contiguous_format) == NCHW
    for bad in ('nhwc', 'channels_first', torch.preserve_format, 3):
        with pytest.raises(ValueError, match='memory_format'):
            resolve_memory_format(bad)
    with pytest.raises(ValueError, match=r"memory_format='nhwc'"):
        UniRestore(preset='tiny', memory_format='nhwc')


def test_set_memory_format_lays_out_the_convolutions(models):
    plain, cl = models
    assert plain.memory_format == NCHW and cl.memory_format == CL
    conv3 = [
        (name, p)
        for name, p in cl.named_parameters()
        if p.dim() == 4 and p.shape[-1] == 3 and p.shape[1] > 1
    ]
    # the prior's and the restorer's own convolutions alike
    assert any(n.startswith('prior.unet.') for n, _ in conv3)
    assert any(n.startswith('cfrm.') for n, _ in conv3)
    assert any(n.startswith('tfa.') for n, _ in conv3)
    assert all(_is_channels_last(p) for _, p in conv3)
    assert not any(
        _is_channels_last(p) for p in plain.parameters() if p.dim() == 4
    )
    built = UniRestore(preset='tiny', memory_format='auto')
    assert built.memory_format == CL
    assert built.set_memory_format('contiguous').memory_format == NCHW


def test_channels_last_restores_the_same_up_to_rounding(models, images):
    plain, cl = models
    ref = plain.restore(images, seed=0, min_size=None)
    out = cl.restore(images, seed=0, min_size=None)
    # the layout changes which kernel sums in which order, nothing else;
    # measured max 8e-7 on the tiny preset at 64 px
    assert not torch.equal(out, ref)
    assert (out - ref).abs().max() < 1e-5
    # NCHW out whatever the weights' layout
    assert out.is_contiguous() and out.shape == images.shape
    # and the input's layout does not matter
    assert torch.equal(
        cl.restore(images.contiguous(memory_format=CL), seed=0, min_size=None),
        out,
    )
    # tiles too
    tiles = dict(tiling=True, tile_size=32, tile_overlap=8)
    tiled = cl.restore(images, seed=0, min_size=None, **tiles)
    tiled_ref = plain.restore(images, seed=0, min_size=None, **tiles)
    assert tiled.is_contiguous()
    assert (tiled - tiled_ref).abs().max() < 1e-5


def test_layout_survives_casts_and_keeps_the_fp32_islands():
    model = UniRestore(preset='tiny', memory_format='channels_last')
    model.to(torch.bfloat16)
    head = model.prior.vae.decoder.conv_out.weight
    assert model.memory_format == CL and model.dtype is torch.bfloat16
    assert head.dtype is torch.float32 and _is_channels_last(head)
    model.set_memory_format('contiguous')
    head = model.prior.vae.decoder.conv_out.weight
    assert model.memory_format == NCHW and model.dtype is torch.bfloat16
    assert head.dtype is torch.float32 and head.is_contiguous()


def test_checkpoints_do_not_depend_on_the_layout(models, images, tmp_path):
    plain, cl = models
    cl.save_pretrained(str(tmp_path / 'cl'))
    back = UniRestore.from_pretrained(str(tmp_path / 'cl'))
    assert back.memory_format == NCHW
    # the saved weights are the values, whatever their layout
    saved = back.state_dict()
    assert saved.keys() == plain.state_dict().keys()
    for name, value in plain.state_dict().items():
        assert torch.equal(saved[name], value), name
    assert weights_memory_format(back.set_memory_format('auto')) == CL


def test_transform_inferencer_and_cli_take_a_memory_format(tmp_path):
    from unirestore_mm.apis.inferencer import UniRestoreInferencer
    from unirestore_mm.datasets.transforms.restore_image import (
        RestoreImage,
        clear_restorer_cache,
    )

    img = np.random.default_rng(0).integers(
        0, 256, (24, 24, 3), dtype=np.uint8
    )
    auto = RestoreImage(
        restorer=dict(preset='tiny'), allow_random_weights=True
    )
    plain = RestoreImage(
        restorer=dict(preset='tiny'),
        allow_random_weights=True,
        memory_format='contiguous',
    )
    # the same random restorer under both layouts
    clear_restorer_cache()
    for t in (auto, plain):
        torch.manual_seed(0)
        t.model
    assert auto.model.memory_format == CL
    assert plain.model.memory_format == NCHW
    a, b = auto.restore_array(img), plain.restore_array(img)
    assert a.shape == img.shape and a.dtype == np.uint8
    # one grey level at most where rounding lands on a .5
    assert np.abs(a.astype(int) - b.astype(int)).max() <= 1
    with pytest.raises(ValueError, match='RestoreImage: memory_format'):
        RestoreImage(
            restorer=dict(preset='tiny'),
            allow_random_weights=True,
            memory_format='nhwc',
        )

    inf = UniRestoreInferencer(
        'tiny', allow_random_weights=True, device='cpu', show_progress=False
    )
    assert inf.model.memory_format == CL
    assert inf.cfg.memory_format == 'channels_last'
    # a given restorer keeps its own layout unless one is asked for
    given = UniRestore(preset='tiny')
    kept = UniRestoreInferencer(
        given, allow_random_weights=True, device='cpu', show_progress=False
    )
    assert kept.model.memory_format == NCHW
    asked = UniRestoreInferencer(
        given,
        allow_random_weights=True,
        device='cpu',
        show_progress=False,
        memory_format='channels_last',
    )
    assert asked.model.memory_format == CL
    with pytest.raises(
        ValueError, match='UniRestoreInferencer: memory_format'
    ):
        UniRestoreInferencer(
            'tiny',
            allow_random_weights=True,
            device='cpu',
            memory_format='nhwc',
        )

    spec = importlib.util.spec_from_file_location(
        'restore_cli',
        osp.join(osp.dirname(__file__), '..', '..', 'tools', 'restore.py'),
    )
    cli = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(cli)
    assert cli.parse_args(['x.png', '--out', 'o']).memory_format == 'auto'
    assert (
        cli.parse_args(
            ['x.png', '--out', 'o', '--memory-format', 'contiguous']
        ).memory_format
        == 'contiguous'
    )


def test_profile_tool_times_each_dtype_and_layout():
    """tools/analysis_tools/profile_precision.py, the tool behind the measured
    'auto' rule, at a tiny size: a line per variant, a ratio per dtype."""
    import subprocess
    import sys

    tool = osp.join(
        osp.dirname(__file__),
        '..',
        '..',
        'tools',
        'analysis_tools',
        'profile_precision.py',
    )
    for extra in ([], ['--sequential']):
        out = subprocess.run(
            [sys.executable, tool, '--preset', 'tiny', '--size', '16']
            + ['--repeat', '2', '--dtype', 'fp32', 'bf16']
            + ['--memory-format', 'contiguous', 'channels_last']
            + extra,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert out.returncode == 0, out.stderr
        lines = out.stdout.splitlines()
        for dtype in ('fp32', 'bf16'):
            for layout in ('contiguous', 'channels_last'):
                (line,) = [
                    s for s in lines if s.startswith(f'{dtype} {layout} (')
                ]
                diff = float(line.rsplit(': ', 1)[1])
                if dtype == 'fp32' and layout == 'contiguous':
                    assert diff == 0
                else:
                    assert 0 < diff < 0.05, line
            (ratio,) = [
                s
                for s in lines
                if s.startswith(f'{dtype}: median contiguous / channels_last')
            ]
            assert float(ratio.rsplit('= ', 1)[1]) > 0
