"""A recognizer sees a restored (RGB) image exactly as its own data
preprocessor shows it the image mmcv loads (BGR): channel order and
normalisation taken from what the preprocessor does, not from a private
attribute."""

import copy

import numpy as np
import pytest
import torch
from mmengine.structures import BaseDataElement

from unirestore_mm.models import build_recognizer
from unirestore_mm.models.recognizers import preprocessor_flips_channels

from .helpers import TINY_CLS, TINY_SEG

MEAN, STD = [123.675, 116.28, 103.53], [58.395, 57.12, 57.375]


def variant(base, pre):
    cfg = copy.deepcopy(base)
    cfg['data_preprocessor'] = pre
    return cfg


CASES = {
    'mmseg bgr_to_rgb': variant(
        TINY_SEG,
        dict(
            type='mmseg.SegDataPreProcessor',
            mean=MEAN,
            std=STD,
            bgr_to_rgb=True,
        ),
    ),
    'mmseg keeps BGR': variant(
        TINY_SEG, dict(type='mmseg.SegDataPreProcessor', mean=MEAN, std=STD)
    ),
    'mmseg rgb_to_bgr': variant(
        TINY_SEG,
        dict(
            type='mmseg.SegDataPreProcessor',
            mean=MEAN,
            std=STD,
            rgb_to_bgr=True,
        ),
    ),
    'mmseg padded test_cfg': variant(
        TINY_SEG,
        dict(
            type='mmseg.SegDataPreProcessor',
            mean=MEAN,
            std=STD,
            bgr_to_rgb=True,
            test_cfg=dict(size_divisor=16),
        ),
    ),
    'mmseg no normalisation': variant(
        TINY_SEG, dict(type='mmseg.SegDataPreProcessor', bgr_to_rgb=True)
    ),
    'mmpretrain to_rgb': variant(
        TINY_CLS,
        dict(
            type='mmpretrain.ClsDataPreprocessor',
            mean=MEAN,
            std=STD,
            to_rgb=True,
        ),
    ),
    'mmpretrain keeps BGR': variant(
        TINY_CLS,
        dict(type='mmpretrain.ClsDataPreprocessor', mean=MEAN, std=STD),
    ),
    # mmengine's generic preprocessor keeps its setting in a private attribute
    # (_channel_conversion)
    'mmengine bgr_to_rgb': variant(
        TINY_SEG,
        dict(
            type='mmengine.ImgDataPreprocessor',
            mean=MEAN,
            std=STD,
            bgr_to_rgb=True,
        ),
    ),
    'mmengine keeps BGR': variant(
        TINY_SEG, dict(type='mmengine.ImgDataPreprocessor', mean=MEAN, std=STD)
    ),
}
FLIPS = {
    'mmseg bgr_to_rgb': True,
    'mmseg keeps BGR': False,
    'mmseg rgb_to_bgr': True,
    'mmseg padded test_cfg': True,
    'mmseg no normalisation': True,
    'mmpretrain to_rgb': True,
    'mmpretrain keeps BGR': False,
    'mmengine bgr_to_rgb': True,
    'mmengine keeps BGR': False,
}


@pytest.mark.parametrize('name', sorted(CASES))
def test_normalize_equals_the_preprocessor_on_the_loaded_bgr_image(name):
    rec = build_recognizer(CASES[name], frozen=False, require_checkpoint=False)
    assert rec.expects_bgr is not FLIPS[name]
    # odd size: padding
    rgb = np.random.default_rng(0).integers(
        0, 256, (2, 13, 10, 3), dtype=np.uint8
    )
    # as mmcv loads
    bgr = [
        torch.from_numpy(np.ascontiguousarray(im[..., ::-1])).permute(2, 0, 1)
        for im in rgb
    ]
    with torch.no_grad():
        ref = rec.model.data_preprocessor(
            dict(inputs=bgr, data_samples=[BaseDataElement() for _ in bgr]),
            training=False,
        )['inputs']
    mine = rec.normalize(
        torch.from_numpy(rgb).permute(0, 3, 1, 2).float() / 255
    )
    torch.testing.assert_close(mine, ref[..., :13, :10], rtol=0, atol=1e-4)


def test_a_preprocessor_doing_more_is_refused_with_its_name():
    from mmengine.model import ImgDataPreprocessor

    class Brighter(ImgDataPreprocessor):
        def forward(self, data, training=False):
            out = super().forward(data, training)
            out['inputs'] = out['inputs'] + 1
            return out

    pre = Brighter(mean=MEAN, std=STD, bgr_to_rgb=True)
    with pytest.raises(ValueError, match='Brighter'):
        preprocessor_flips_channels(
            pre, pre.mean.view(1, -1, 1, 1), pre.std.view(1, -1, 1, 1)
        )
    assert preprocessor_flips_channels(None) is False
