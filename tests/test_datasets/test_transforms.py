"""The registered transforms: RandomDegradation, Degradation, Add*, loading,
cropping, packing."""

import inspect
import pickle

import numpy as np
import pytest
from mmcv.transforms import BaseTransform

from unirestore_mm.datasets.transforms import (
    NAMED_DEGRADATIONS,
    PAPER_SEVERITY_PROBS,
    AddFog,
    AddGaussianNoise,
    Degradation,
    LoadCleanImage,
    LoadPairedImages,
    PackRestorationInputs,
    PairedRandomCrop,
    RandomDegradation,
    RestoreImage,
)
from unirestore_mm.datasets.transforms import degradations as D
from unirestore_mm.registry import TRANSFORMS

from .helpers import textured


def results_for(img, idx=0, **extra):
    return dict(
        img=img.copy(), sample_idx=idx, img_path=f'/x/{idx:04d}.png', **extra
    )


def test_prob_zero_changes_nothing():
    img = textured(8, 8)
    for t in (
        RandomDegradation(prob=0.0, seed=0),
        AddFog(prob=0, seed=1),
        RandomDegradation(prob=0.0),
    ):
        out = t(results_for(img))
        np.testing.assert_array_equal(out['img'], img)
        np.testing.assert_array_equal(out['gt_img'], img)
        assert out['degradation']['name'] == 'none'


def test_same_seed_and_index_same_output_in_any_order():
    img = textured(24, 24)
    t1 = RandomDegradation(corruptions='all', seed=7)
    t2 = RandomDegradation(corruptions='all', seed=7)
    a = [t1(results_for(img, i)) for i in range(6)]
    # another worker, another order
    b = [t2(results_for(img, i)) for i in reversed(range(6))][::-1]
    for ra, rb in zip(a, b):
        np.testing.assert_array_equal(ra['img'], rb['img'])
        assert ra['degradation'] == rb['degradation']
    assert (
        len(
            {
                (r['degradation']['name'], r['degradation']['severity'])
                for r in a
            }
        )
        > 1
    )
    c = RandomDegradation(corruptions='all', seed=8)(results_for(img, 0))
    assert c['degradation']['seed'] != a[0]['degradation']['seed']


def test_unseeded_records_a_replayable_seed():
    img = textured(16, 16)
    out = RandomDegradation(
        corruptions=['gaussian_noise'], resize_short_side=None
    )(results_for(img))
    rec = out['degradation']
    assert (
        rec['name'] == 'gaussian_noise'
        and 1 <= rec['severity'] <= 5
        and isinstance(rec['seed'], int)
    )
    np.testing.assert_array_equal(out['gt_img'], img)
    assert out['img'].shape == img.shape and out['img'].dtype == np.uint8


def test_unseeded_follows_numpys_global_seed():
    """seed=None draws from numpy's global generator, which MMEngine's
    ``randomness`` seeds per worker."""
    img = textured(16, 16)
    t = RandomDegradation(corruptions='all', resize_short_side=None)
    runs = []
    for _ in range(2):
        np.random.seed(123)
        runs.append([t(results_for(img))['degradation'] for _ in range(3)])
    assert runs[0] == runs[1]
    assert len({r['seed'] for r in runs[0]}) == 3


def test_seed_without_sample_idx_uses_path_then_content():
    img = textured(8, 8)
    t = AddGaussianNoise(seed=0)
    a = t(dict(img=img.copy(), img_path='/a/1.png'))['img']
    # same file name, other machine
    b = t(dict(img=img.copy(), img_path='/other/root/1.png'))['img']
    np.testing.assert_array_equal(a, b)
    c = t(dict(img=img.copy()))['img']
    np.testing.assert_array_equal(c, t(dict(img=img.copy()))['img'])


def test_paper_severity_sampling():
    t = RandomDegradation(
        corruptions=['brightness'], resize_short_side=None, seed=0
    )
    img = np.zeros((2, 2, 3), np.uint8)
    counts = np.bincount(
        [
            t(results_for(img, i))['degradation']['severity']
            for i in range(2000)
        ],
        minlength=6,
    )[1:]
    np.testing.assert_allclose(counts / 2000, PAPER_SEVERITY_PROBS, atol=0.035)


def test_random_downscale_and_back():
    img = textured(200, 300)
    t = RandomDegradation(
        corruptions=['gaussian_noise'], resize_short_side=(128, 129), seed=0
    )
    out = t(results_for(img))
    assert (
        out['img'].shape == img.shape
        and out['degradation']['short_side'] == 128
    )
    small = textured(64, 64)  # never up-scaled
    assert t(results_for(small))['degradation']['short_side'] is None


def test_bgr_and_rgb_pipelines_agree():
    img = textured(16, 16)
    for name in ('snow', 'frost', 'haze', 'brightness'):
        bgr = Degradation(name, severity=4, seed=3, channel_order='bgr')(
            results_for(img[..., ::-1])
        )['img']
        rgb = Degradation(name, severity=4, seed=3, channel_order='rgb')(
            results_for(img)
        )['img']
        np.testing.assert_array_equal(bgr[..., ::-1], rgb)


def test_several_keys_get_the_same_corruption():
    img = textured(16, 16)
    out = AddGaussianNoise(keys=['img', 'img2'], seed=0)(
        results_for(img, img2=img.copy())
    )
    np.testing.assert_array_equal(out['img'], out['img2'])


def test_other_images_kept_in_shape_and_dtype():
    t = RandomDegradation(corruptions='all', seed=0, resize_short_side=(4, 6))
    for img in (
        np.zeros((7, 5), np.uint8),
        np.zeros((1, 1, 3), np.uint8),
        np.zeros((9, 7, 4), np.uint8),
        np.full((9, 7, 3), 1000, np.uint16),
        np.full((9, 7, 1), 3, np.uint8),
        np.full((9, 7, 3), 100.0, np.float32),
    ):
        for i in range(4):
            out = t(results_for(img, i))['img']
            assert out.shape == img.shape and out.dtype == img.dtype


def test_bad_arguments():
    with pytest.raises(ValueError, match='unknown corruption'):
        RandomDegradation(corruptions=['fog', 'tornado'])
    with pytest.raises(ValueError, match='severity'):
        Degradation('fog', severity=7)
    with pytest.raises(ValueError, match='severity_probs'):
        RandomDegradation(severity_probs=(0.5, 0.5))
    with pytest.raises(ValueError, match='prob'):
        RandomDegradation(prob=1.5)
    with pytest.raises(ValueError, match='weights'):
        RandomDegradation(corruptions=['fog', 'snow'], weights=[1.0])
    with pytest.raises(ValueError, match='resize_short_side'):
        RandomDegradation(resize_short_side=(512, 128))
    with pytest.raises(ValueError, match='channel_order'):
        RandomDegradation(channel_order='hsv')
    with pytest.raises(KeyError, match='img'):
        RandomDegradation()(dict(gt=1))


def test_repr_is_informative():
    r = repr(RandomDegradation(corruptions=['fog', 'snow'], seed=3))
    for part in (
        "'fog'",
        "'snow'",
        'seed=3',
        'resize_short_side=(128, 512)',
        '0.4',
        "keys=['img']",
    ):
        assert part in r, r
    assert "corruption='fog'" in repr(
        AddFog(severity=2)
    ) and 'severity=2' in repr(AddFog(severity=2))
    assert 'crop_size=(4, 4)' in repr(PairedRandomCrop(4))
    assert "sample_type='cls'" in repr(
        PackRestorationInputs(sample_type='cls')
    )
    assert 'color_type' in repr(LoadPairedImages())


def test_registry_builds_every_transform():
    assert len(NAMED_DEGRADATIONS) == 21
    for cls in NAMED_DEGRADATIONS.values():
        t = TRANSFORMS.build(
            dict(type=f'unirestore_mm.{cls.__name__}', severity=1, seed=0)
        )
        assert isinstance(t, cls)
    t = TRANSFORMS.build(
        dict(
            type='unirestore_mm.RandomDegradation',
            corruptions='weather',
            seed=0,
        )
    )
    assert t.corruptions == ['rain_streaks', 'haze', 'low_light', 'raindrops']
    assert RandomDegradation(corruptions=['demo5', 'fog']).corruptions == [
        'fog',
        'snow',
        'gaussian_noise',
        'motion_blur',
        'low_light',
    ]


def _camel(name):
    return ''.join(part.capitalize() for part in name.split('_'))


def test_named_classes_and_functions_agree_with_the_lookup_dicts():
    """Every corruption has its ``Add*`` class and ``add_*`` function, written
    out in the source (so grep, IDEs and the API docs see them), registered,
    and the lookup dicts are exactly those definitions."""
    import unirestore_mm.datasets.transforms as package
    from unirestore_mm.datasets.transforms import (
        transforms as transforms_module,
    )

    assert list(NAMED_DEGRADATIONS) == list(D.ALL_CORRUPTIONS)
    assert list(D.CORRUPTION_FUNCS) == list(D.ALL_CORRUPTIONS)
    transforms_src = inspect.getsource(transforms_module)
    degradations_src = inspect.getsource(D)
    img = textured(12, 12)
    for name in D.ALL_CORRUPTIONS:
        cls = NAMED_DEGRADATIONS[name]
        assert cls.__name__ == f'Add{_camel(name)}' and cls.corruption == name
        assert (
            getattr(package, cls.__name__) is cls
            and cls.__name__ in package.__all__
        )
        assert issubclass(cls, Degradation) and issubclass(cls, BaseTransform)
        assert f'\nclass {cls.__name__}(' in transforms_src, (
            f'{cls.__name__} is not written out in the source'
        )
        assert TRANSFORMS.get(f'unirestore_mm.{cls.__name__}') is cls
        fn = D.CORRUPTION_FUNCS[name]
        assert (
            fn.__name__ == f'add_{name}'
            and getattr(D, f'add_{name}') is fn
            and getattr(package, fn.__name__) is fn
        )
        assert f'\ndef add_{name}(' in degradations_src, (
            f'add_{name} is not written out in the source'
        )
        assert D.get_corruption(name) is fn
        # the class is Degradation(name); the function is corrupt(name)
        by_class = cls(severity=2, seed=0)(dict(img=img.copy(), sample_idx=4))
        assert by_class['degradation']['name'] == name and not np.array_equal(
            by_class['img'], img
        )
        np.testing.assert_array_equal(
            by_class['img'],
            Degradation(name, 2, seed=0)(dict(img=img.copy(), sample_idx=4))[
                'img'
            ],
        )
        np.testing.assert_array_equal(
            fn(img, 2, 7), D.corrupt(img, name, 2, 7)
        )
    # and the other way: every Add* class this package registers is in the dict
    registered = {
        n: c
        for n, c in TRANSFORMS.module_dict.items()
        if n.startswith('Add') and c.__module__ == transforms_module.__name__
    }
    assert set(registered.values()) == set(NAMED_DEGRADATIONS.values())
    for cls in (
        RandomDegradation,
        Degradation,
        LoadPairedImages,
        LoadCleanImage,
        PairedRandomCrop,
        PackRestorationInputs,
        RestoreImage,
    ):
        assert (
            issubclass(cls, BaseTransform)
            and TRANSFORMS.get(f'unirestore_mm.{cls.__name__}') is cls
        )
    # spawned dataloader workers get the transforms by pickle: by their
    # module-level class
    t = pickle.loads(
        pickle.dumps(NAMED_DEGRADATIONS['haze'](severity=2, seed=5))
    )
    assert (
        type(t) is NAMED_DEGRADATIONS['haze']
        and t.corruptions == ['haze']
        and t.severity == 2
    )
    # nothing is made at import time behind grep's back
    for module in (package, transforms_module, D):
        assert 'globals()' not in inspect.getsource(module), module.__name__


def test_very_large_image_is_degraded_at_the_drawn_scale():
    big = np.full((3000, 4000, 3), 90, np.uint8)
    out = RandomDegradation(corruptions='all', seed=0)(results_for(big))
    assert (
        out['img'].shape == big.shape
        and 128 <= out['degradation']['short_side'] < 512
    )


def test_paired_crop_and_pack():
    img, gt = textured(10, 12, 1), textured(10, 12, 2)
    seg = np.arange(120, dtype=np.uint8).reshape(10, 12)
    res = PairedRandomCrop(6, seed=0)(
        dict(img=img, gt_img=gt, gt_seg_map=seg, sample_idx=3)
    )
    assert res['img'].shape == (6, 6, 3) and res['gt_seg_map'].shape == (6, 6)
    r, c = np.argwhere(seg == res['gt_seg_map'][0, 0])[0]
    np.testing.assert_array_equal(res['img'], img[r : r + 6, c : c + 6])
    np.testing.assert_array_equal(res['gt_img'], gt[r : r + 6, c : c + 6])
    padded = PairedRandomCrop(16)(dict(img=img, gt_img=gt))
    assert padded['img'].shape == (16, 16, 3)
    res['degradation'] = dict(name='fog', severity=3, seed=1, short_side=None)
    packed = PackRestorationInputs(sample_type='base')(res)
    assert tuple(packed['inputs'].shape) == (3, 6, 6)
    assert tuple(packed['data_samples'].gt_img.shape) == (3, 6, 6)
    assert packed['data_samples'].metainfo['degradation']['name'] == 'fog'
