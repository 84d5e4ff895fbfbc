"""Tiled restoration (unirestore_mm/models/tiling.py) on the tiny preset (CPU,
seconds).

Seams: ``d = tiled - untiled`` is smooth where the tiles are blended, so its
step from one column to the next is not much larger at the tile borders than
elsewhere; a hard cut between tiles puts a step in ``d`` at the cut.  The seam
check is shown to fail on hard cuts (``hard_ramp``), on a smooth gradient and
on a photograph.  The mean error near the borders is bounded by that away from
them too, though that alone would not show a seam.
"""

import importlib.util
import os.path as osp
import subprocess
import sys

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from unirestore_mm.models import UniRestore
from unirestore_mm.models import tiling as tiling_mod
from unirestore_mm.models.tiling import (
    TileSettings,
    axis_tiles,
    axis_weights,
    hard_ramp,
    plan_tiles,
    smooth_ramp,
    tiled_restore,
)

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
D = 16  # the tiny preset's size divisor
TILE = TileSettings(tile_size=64, tile_overlap=16, tile_threshold=64)


@pytest.fixture(scope='module')
def model():
    torch.manual_seed(0)
    m = UniRestore(preset='tiny')
    # non-trivial weights for the zero-initialised branches
    with torch.no_grad():
        for name, p in m.named_parameters():
            if not name.startswith('prior.') and (p == 0).all():
                p.normal_(0, 0.05)
    return m.eval()


def gradient(h, w):
    yy, xx = torch.meshgrid(
        torch.linspace(0, 1, h), torch.linspace(0, 1, w), indexing='ij'
    )
    return torch.stack([yy, xx, 1 - (yy + xx) / 2]).unsqueeze(0)


def photo(h, w):
    skdata = pytest.importorskip(
        'skimage.data',
        reason='scikit-image (tools/install.sh) has the photograph',
    )
    img = (
        torch.from_numpy(np.ascontiguousarray(skdata.astronaut()[..., :3]))
        .permute(2, 0, 1)
        .float()
        / 255
    )
    return F.interpolate(img[None], size=(h, w), mode='area').clamp(0, 1)


class EncodeSpy:
    """Counts ``model.encode`` calls and the sizes they see (one per tile when
    tiling)."""

    def __init__(self, model):
        self.model, self.sizes = model, []
        self.orig = model.encode

        def encode(images, *args, **kwargs):
            self.sizes.append(tuple(images.shape[-2:]))
            return self.orig(images, *args, **kwargs)

        model.encode = encode

    def close(self):
        del self.model.encode  # back to the class's method


@pytest.fixture
def spy(model):
    s = EncodeSpy(model)
    yield s
    s.close()


# -- layout and window --------------------------------------------------------
@pytest.mark.parametrize(
    'length', [16, 64, 80, 128, 144, 512, 1024, 2048, 2064]
)
@pytest.mark.parametrize(
    'tile, overlap, divisor',
    [
        (64, 16, 16),
        (128, 32, 16),
        (512, 32, 64),
        (512, 64, 64),
        (64, 0, 16),
        (48, 24, 16),
    ],
)
def test_layout_covers_the_axis(length, tile, overlap, divisor):
    if length % divisor:
        length += divisor - length % divisor
    tiles = axis_tiles(length, tile, overlap, divisor, grid=8)
    assert tiles[0][0] == 0 and tiles[-1][0] + tiles[-1][1] == length
    for (s0, n0), (s1, n1) in zip(tiles, tiles[1:]):
        # at least the overlap asked for, and progress
        assert s0 + n0 - s1 >= overlap and s1 > s0
    for s, n in tiles:
        assert (
            s % 8 == 0
            and n % divisor == 0
            and 0 < n <= max(tile, length if length <= tile else 0)
        )


def test_layout_cost_at_sd_turbo_sizes():
    """512-px tiles, 32-px overlap: 1024 and 2048 cover 1.0625x the pixels per
    axis (1.129x in 2-D)."""
    assert axis_tiles(1024, 512, 32, 64, 8) == [
        (0, 384),
        (352, 384),
        (704, 320),
    ]
    for length in (1024, 2048):
        tiles = axis_tiles(length, 512, 32, 64, 8)
        assert sum(n for _, n in tiles) / length == pytest.approx(1.0625)
    assert axis_tiles(512, 512, 32, 64, 8) == [(0, 512)]


@pytest.mark.parametrize('ramp', [smooth_ramp, hard_ramp])
def test_windows_are_a_partition_of_unity(ramp):
    tiles = axis_tiles(2048, 512, 32, 64, 8)
    total = torch.zeros(2048, dtype=torch.float64)
    for (s, n), w in zip(tiles, axis_weights(tiles, ramp)):
        total[s : s + n] += w
    torch.testing.assert_close(total, torch.ones_like(total))
    if ramp is smooth_ramp:
        w = axis_weights(tiles, ramp)[1]
        # ~0 at the tile's edge, 1 inside
        assert 0 < float(w[0]) < 0.01 and float(w[len(w) // 2]) == 1.0


# -- exactness and noise ------------------------------------------------------
def test_below_threshold_is_bit_identical_to_the_untiled_path(model, spy):
    x = torch.rand(2, 3, 50, 70, generator=torch.Generator().manual_seed(1))
    # padded 64x80: not tiled
    auto = model.restore(
        x, seed=3, tile_size=64, tile_overlap=16, tile_threshold=80
    )
    assert spy.sizes == [(64, 80)]
    off = model.restore(x, seed=3, tiling=False)
    # the pre-tiling path by hand: pad, one forward pass, crop
    padded = F.pad(x, (0, 10, 0, 14), mode='reflect')
    ref = (
        model(padded, generator=torch.Generator().manual_seed(3))
        .image[..., :50, :70]
        .clamp(0, 1)
    )
    assert torch.equal(auto, off) and torch.equal(auto, ref)
    # the preset's defaults (threshold 192) leave a 160 px image whole too
    assert torch.equal(
        model.restore(gradient(160, 96), seed=0),
        model.restore(gradient(160, 96), seed=0, tiling=False),
    )


def test_one_tile_covering_the_image_is_the_untiled_result(model):
    """Forced tiling with one tile: the whole image's noise cropped to itself,
    a window of ones."""
    x = torch.rand(1, 3, 48, 64, generator=torch.Generator().manual_seed(2))
    assert torch.equal(
        model.restore(x, seed=5, tiling=True, tile_size=64),
        model.restore(x, seed=5, tiling=False),
    )


def test_seed_repeats_and_per_image_generators(model):
    x = torch.cat(
        [
            gradient(64, 112),
            photo(64, 112)
            if importlib.util.find_spec('skimage')
            else torch.rand(
                1, 3, 64, 112, generator=torch.Generator().manual_seed(4)
            ),
        ]
    )
    kw = dict(tiling=True, tile_size=64, tile_overlap=16)
    a = model.restore(x, seed=11, **kw)
    assert torch.equal(a, model.restore(x, seed=11, **kw))
    assert not torch.equal(a, model.restore(x, seed=12, **kw))
    gens = [torch.Generator().manual_seed(s) for s in (21, 22)]
    both = model.restore(x, generator=gens, **kw)
    # each image as if restored alone with its generator
    for i, s in enumerate((21, 22)):
        alone = model.restore(
            x[i : i + 1], generator=[torch.Generator().manual_seed(s)], **kw
        )
        torch.testing.assert_close(both[i : i + 1], alone, atol=1e-5, rtol=0)
    assert not torch.allclose(
        both[0],
        model.restore(
            x, generator=[torch.Generator().manual_seed(22)] * 2, **kw
        )[0],
    )


def test_overlapping_tiles_share_the_noise(model, monkeypatch):
    """The noise each tile gets is its crop of one draw for the whole latent:
    equal where tiles overlap."""
    seen = []
    orig = UniRestore.sample

    def sample(self, z0, num_steps=1, generator=None, noise=None):
        seen.append(noise.clone())
        return orig(self, z0, num_steps, generator, noise)

    monkeypatch.setattr(UniRestore, 'sample', sample)
    x = gradient(64, 112)
    model.restore(x, seed=0, tiling=True, tile_size=64, tile_overlap=16)
    tiles = plan_tiles(64, 112, TileSettings(64, 16, 0), D, 8)
    assert len(seen) == len(tiles) == 2
    (_, x0, _, w0), (_, x1, _, _) = tiles
    o = (x0 + w0 - x1) // 8
    assert o >= 2 and torch.equal(seen[0][..., -o:], seen[1][..., :o])
    whole = torch.Generator().manual_seed(0)
    from diffusers.utils.torch_utils import randn_tensor

    # the VAE's sampling noise comes first
    randn_tensor((1, 4, 8, 14), generator=whole)
    torch.testing.assert_close(
        seen[1],
        randn_tensor((1, 4, 8, 14), generator=whole)[..., x1 // 8 :],
        atol=0,
        rtol=0,
    )


@pytest.mark.parametrize('size', [(2049, 17), (17, 2049), (1, 1), (130, 3)])
def test_odd_sizes(model, size, spy):
    x = torch.rand(1, 3, *size, generator=torch.Generator().manual_seed(7))
    y = model.restore(x, seed=0, tiling=True, tile_size=128, tile_overlap=32)
    assert (
        y.shape == x.shape
        and torch.isfinite(y).all()
        and 0 <= float(y.min()) <= float(y.max()) <= 1
    )
    assert (
        max(h for h, _ in spy.sizes) <= 128
        and max(w for _, w in spy.sizes) <= 128
    )
    assert len(spy.sizes) == len(
        plan_tiles(
            -(-size[0] // D) * D,
            -(-size[1] // D) * D,
            TileSettings(128, 32, 0),
            D,
            8,
        )
    )


def test_auto_tiles_large_images_with_the_preset_defaults(model, spy):
    """tiny: 128-px tiles above 192 px; tiles are never larger than 128 px
    whatever the image (bounded memory)."""
    model.restore(gradient(208, 64), seed=0)
    assert len(spy.sizes) == 2 and all(
        h <= 128 and w <= 128 for h, w in spy.sizes
    )
    spy.sizes.clear()
    model.restore(gradient(400, 208), seed=0)
    assert (
        all(h <= 128 and w <= 128 for h, w in spy.sizes)
        and len(spy.sizes) == 4 * 2
    )
    assert len(spy.sizes) == len(
        plan_tiles(400, 208, model.tile_settings()[1], D, 8)
    )


# -- seams --------------------------------------------------------------------
def seam_score(model, x, ramp, settings=TileSettings(64, 32, 0)):
    """max over the tile borders of the mean step of ``d = tiled - untiled``
    across them, over the median step elsewhere; also the mean |d| near the
    borders over the mean |d| away from them."""
    untiled = model.restore_tasks(x, ['ir'], seed=0, tiling=False)['ir']
    with torch.no_grad():
        tiled = tiled_restore(
            model,
            x,
            ['ir'],
            generator=torch.Generator().manual_seed(0),
            settings=settings,
            ramp=ramp,
        )['ir'].clamp(0, 1)
    d = (tiled - untiled)[0].mean(0)  # signed, mean over the channels
    h, w = d.shape
    cols = axis_tiles(w, settings.tile_size, settings.tile_overlap, D, 8)
    borders = set()
    for (s0, n0), (s1, _) in zip(cols, cols[1:]):
        # the tiles' edges and the middle of the overlap
        borders |= {s1, s0 + n0, (s1 + s0 + n0) // 2}
    # step[j]: between columns j and j+1
    step = (d[:, 1:] - d[:, :-1]).abs().mean(0)
    at = torch.stack([step[j - 1] for j in borders if 0 < j < w])
    near = torch.zeros(w, dtype=torch.bool)
    for j in borders:
        near[max(0, j - 4) : j + 4] = True
    away = step[~near[1:] & ~near[:-1]]
    err = (tiled - untiled)[0].abs().mean(0).mean(0)
    return float(at.max() / away.median()), float(
        err[near].mean() / err[~near].mean()
    )


@pytest.mark.parametrize('image', ['gradient', 'photo'])
def test_no_seam_where_tiles_are_blended_and_a_seam_with_hard_cuts(
    model, image
):
    x = gradient(64, 176) if image == 'gradient' else photo(64, 176)
    smooth_step, smooth_err = seam_score(model, x, smooth_ramp)
    hard_step, hard_err = seam_score(model, x, hard_ramp)
    print(
        f'{image}: step at borders / elsewhere: smooth {smooth_step:.2f}, '
        f'hard {hard_step:.2f}; |error| near / away: smooth '
        f'{smooth_err:.2f}, hard {hard_err:.2f}'
    )
    # measured (tiny preset, random weights): step 1.71 (gradient) / 1.72
    # (photo) blended, 4.65 / 4.39 hard cuts; |error| near / away 1.10 / 1.10
    # blended, 1.18 / 1.19 hard (the error itself is mostly the tiles' own, it
    # does not tell a seam: the step does)
    # no step at the borders much beyond the ordinary pixel-to-pixel change
    assert smooth_step < 3.0, smooth_step
    # the error along the borders is bounded by that away from them
    assert smooth_err < 1.5, smooth_err
    assert hard_step > 3.0  # the same bound catches a hard cut


# -- every way in tiles -------------------------------------------------------
KW = dict(tiling=True, tile_size=64, tile_overlap=16)


def test_api_restore_tasks_tiles_each_task_from_one_pass_per_tile(model, spy):
    x = gradient(64, 112)
    out = model.restore_tasks(x, ['ir', 'cls'], seed=0, **KW)
    assert len(spy.sizes) == 2
    assert torch.equal(out['cls'], model.restore(x, task='cls', seed=0, **KW))
    assert not torch.equal(
        out['ir'], model.restore(x, task='ir', seed=0, tiling=False)
    )


def test_transform_tiles(model, monkeypatch):
    from unirestore_mm.datasets.transforms.restore_image import (
        RestoreImage,
        clear_restorer_cache,
    )

    clear_restorer_cache()
    img = (
        (gradient(64, 112)[0].permute(1, 2, 0).numpy() * 255)
        .round()
        .astype(np.uint8)
    )
    calls = []
    orig = UniRestore.encode
    monkeypatch.setattr(
        UniRestore,
        'encode',
        lambda self, x, *a, **k: calls.append(x.shape)
        or orig(self, x, *a, **k),
    )
    t = RestoreImage(
        restorer=dict(preset='tiny'),
        allow_random_weights=True,
        channel_order='rgb',
        **KW,
    )
    tiled = t(dict(img=img.copy()))['img']
    assert len(calls) == 2 and calls[0][-1] < 112
    untiled = RestoreImage(
        restorer=dict(preset='tiny'),
        allow_random_weights=True,
        channel_order='rgb',
        tiling=False,
    )(dict(img=img.copy()))['img']
    assert tiled.shape == untiled.shape == img.shape and not np.array_equal(
        tiled, untiled
    )
    with pytest.raises(ValueError, match='tile_overlap'):
        RestoreImage(
            restorer=dict(preset='tiny'),
            allow_random_weights=True,
            tile_size=64,
            tile_overlap=64,
        )
    with pytest.raises(ValueError, match='tile_size.*multiple'):
        RestoreImage(
            restorer=dict(preset='tiny'),
            allow_random_weights=True,
            tile_size=40,
            lazy=False,
        )
    clear_restorer_cache()


def test_inferencer_tiles(model, spy):
    from unirestore_mm.apis import UniRestoreInferencer

    x = gradient(64, 112)[0]
    inf = UniRestoreInferencer(model, device='cpu', show_progress=False, **KW)
    tiled = inf(x)['predictions'][0]
    assert len(spy.sizes) == 2 and spy.sizes[0][1] < 112
    plain = UniRestoreInferencer(
        model, device='cpu', show_progress=False, tiling=False
    )(x)['predictions'][0]
    assert not torch.equal(tiled, plain)
    torch.testing.assert_close(tiled, model.restore(x, seed=0, **KW))
    with pytest.raises(ValueError, match='tile_size'):
        UniRestoreInferencer(model, device='cpu', tile_size=8)


def load_tool():
    spec = importlib.util.spec_from_file_location(
        'restore_tool', osp.join(REPO, 'tools', 'restore.py')
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_cli_flags_tile(tmp_path, monkeypatch, capsys):
    import cv2

    tool = load_tool()
    img = (
        (gradient(64, 112)[0].permute(1, 2, 0).numpy()[..., ::-1] * 255)
        .round()
        .astype(np.uint8)
    )
    (tmp_path / 'in').mkdir()
    cv2.imwrite(str(tmp_path / 'in' / 'a.png'), img)
    calls = []
    orig = UniRestore.encode
    monkeypatch.setattr(
        UniRestore,
        'encode',
        lambda self, x, *a, **k: calls.append(x.shape)
        or orig(self, x, *a, **k),
    )
    base = [str(tmp_path / 'in'), '--random-weights', '--preset', 'tiny']
    assert (
        tool.main(
            base
            + [
                '--out',
                str(tmp_path / 'on'),
                '--tiling',
                'on',
                '--tile-size',
                '64',
                '--tile-overlap',
                '16',
            ]
        )
        == 0
    )
    assert len(calls) == 2
    assert (
        tool.main(base + ['--out', str(tmp_path / 'off'), '--tiling', 'off'])
        == 0
    )
    assert len(calls) == 3
    on, off = (
        cv2.imread(str(tmp_path / 'on' / 'a.png')),
        cv2.imread(str(tmp_path / 'off' / 'a.png')),
    )
    assert on.shape == off.shape == img.shape and not np.array_equal(on, off)
    capsys.readouterr()
    for bad, word in (
        (['--tile-size', '40'], 'tile_size'),
        (['--tile-size', '64', '--tile-overlap', '40'], 'tile_overlap'),
        (['--tile-overlap', '-1'], '--tile-overlap'),
        (['--tiling', 'maybe'], '--tiling'),
    ):
        assert tool.main(base + ['--out', str(tmp_path / 'bad')] + bad) == 2
        err = capsys.readouterr().err
        assert (
            err.count('\n') == 1
            and err.startswith('restore.py: error: ')
            and word in err
        ), err


def test_restored_backbone_tiles(model):
    from unirestore_mm.models import RestoredBackbone

    mean, std = [123.675, 116.28, 103.53], [58.395, 57.12, 57.375]
    kw = dict(
        backbone=torch.nn.Identity(),
        restorer=model,
        task='ir',
        mean=mean,
        std=std,
        bgr_to_rgb=True,
        min_size=None,
    )
    x = (
        gradient(64, 112) * 255 - torch.tensor(mean).view(1, 3, 1, 1)
    ) / torch.tensor(std).view(1, 3, 1, 1)
    spy = EncodeSpy(model)
    try:
        tiled = RestoredBackbone(**kw, **KW).eval()(x)
        assert len(spy.sizes) == 2
        plain = RestoredBackbone(**kw, tiling=False).eval()(x)
        assert len(spy.sizes) == 3 and not torch.equal(tiled, plain)
        expected = model.restore(
            gradient(64, 112), seed=0, min_size=None, **KW
        )
        torch.testing.assert_close(
            RestoredBackbone(**kw, **KW).eval().unnormalize(tiled),
            expected,
            atol=1e-5,
            rtol=0,
        )
    finally:
        spy.close()
    # the config keys go through the registry too, and fail at build time
    from unirestore_mm.registry import MODELS

    with pytest.raises(ValueError, match='tile_overlap'):
        MODELS.build(
            dict(
                type='unirestore_mm.RestoredBackbone',
                backbone=torch.nn.Identity(),
                restorer=dict(preset='tiny'),
                task='cls',
                mean=mean,
                std=std,
                bgr_to_rgb=True,
                tile_size=64,
                tile_overlap=48,
            )
        )
    with pytest.raises(ValueError, match='tiling'):
        RestoredBackbone(
            **dict(kw, restorer=dict(preset='tiny')), tiling='sometimes'
        )


def test_restored_backbone_auto_tiling_is_off_while_training_through_the_restorer(
    model,
):
    """With gradients through the restorer, tiles bound no memory (autograd
    keeps them all): 'auto' restores whole; a frozen restorer, or tiling=True,
    still tiles."""
    from unirestore_mm.models import RestoredBackbone

    mean, std = [123.675, 116.28, 103.53], [58.395, 57.12, 57.375]
    kw = dict(
        backbone=torch.nn.Identity(),
        restorer=model,
        task='ir',
        mean=mean,
        std=std,
        bgr_to_rgb=True,
        min_size=None,
        tile_size=64,
        tile_overlap=16,
        tile_threshold=64,
    )
    x = (
        gradient(64, 112) * 255 - torch.tensor(mean).view(1, 3, 1, 1)
    ) / torch.tensor(std).view(1, 3, 1, 1)
    spy = EncodeSpy(model)
    try:
        with torch.enable_grad():
            RestoredBackbone(
                **kw, freeze_restorer=False, tiling='auto'
            ).eval()(x)
            assert len(spy.sizes) == 1  # whole
            RestoredBackbone(**kw, freeze_restorer=False, tiling=True).eval()(
                x
            )
            assert len(spy.sizes) == 3  # forced: two tiles
            RestoredBackbone(**kw, freeze_restorer=True, tiling='auto').eval()(
                x
            )
            # frozen: no grad through it, tiles as at inference
            assert len(spy.sizes) == 5
    finally:
        spy.close()


def test_tiled_restore_is_differentiable(model):
    x = gradient(64, 112).requires_grad_(True)
    with torch.enable_grad():
        out = tiled_restore(
            model,
            x,
            ['ir'],
            settings=TileSettings(64, 16, 0),
            generator=torch.Generator().manual_seed(0),
        )['ir']
        out.mean().backward()
    assert (
        x.grad is not None
        and torch.isfinite(x.grad).all()
        and x.grad.abs().sum() > 0
    )


# -- bad values ---------------------------------------------------------------
@pytest.mark.parametrize(
    'kw, word',
    [
        (dict(tile_size=8), 'tile_size'),
        (dict(tile_size=40), 'tile_size'),
        (dict(tile_size=0), 'tile_size'),
        (dict(tile_size=-64), 'tile_size'),
        (dict(tile_size=64.0), 'tile_size'),
        (dict(tile_size=True), 'tile_size'),
        (dict(tile_size=64, tile_overlap=64), 'tile_overlap'),
        (dict(tile_size=64, tile_overlap=100), 'tile_overlap'),
        (dict(tile_overlap=-1), 'tile_overlap'),
        (dict(tile_threshold=-5), 'tile_threshold'),
        (dict(tiling='maybe'), 'tiling'),
        (dict(tiling=2), 'tiling'),
    ],
)
def test_bad_values_name_the_argument(model, kw, word, spy):
    with pytest.raises(ValueError, match=word):
        model.restore(gradient(16, 16), **kw)
    assert spy.sizes == []  # before any compute
    with pytest.raises(ValueError, match=word):
        model.tile_settings(**kw)
    # those need the restorer's size divisor
    if kw.get('tile_size') not in (8, 40):
        with pytest.raises(ValueError, match=word):
            tiling_mod.check_tiling_args(**kw)


# -- the benchmark tool -------------------------------------------------------
def test_benchmark_tool_quick(tmp_path):
    out = tmp_path / 'rows.json'
    proc = subprocess.run(
        [
            sys.executable,
            'tools/analysis_tools/benchmark_tiling.py',
            '--quick',
            '--sizes',
            '64',
            '256',
            '--threads',
            '1',
            '--json',
            str(out),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    import json

    data = json.loads(out.read_text())
    small, big = data['rows']
    assert (small['size'], small['tiled'], small['tiles']) == (64, False, 1)
    assert (
        big['tiled']
        and big['tiles'] == 9
        and big['covered'] > 1
        and big['seconds'] > 0
    )
    assert (
        big['peak_mib'] > 0
        and big['cpu_seconds'] > 0
        and small['finite']
        and big['finite']
    )
    assert (
        'torch' in proc.stdout
        and 'diffusers' in proc.stdout
        and 'memory ratio 256/64' in proc.stdout
    )
    assert (
        'per-pixel wall time ratios vs 64: 256: ' in proc.stdout
        and 'per-pixel CPU time ratios' in proc.stdout
    )
    assert '| 256x256 | yes | 9 |' in proc.stdout
