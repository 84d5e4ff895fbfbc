"""RestoreImage transform: dtype, range, channel order kept; one model per
process; bad input at build time; no trained weights refused unless
allow_random_weights (the tiny restorers here are random: the tests check
plumbing, not restoration)."""

import pickle

import numpy as np
import pytest
import torch
from mmengine.dataset import Compose

from unirestore_mm.datasets.transforms.restore_image import (
    RestoreImage,
    clear_restorer_cache,
)
from unirestore_mm.models import UniRestore
from unirestore_mm.models.weights_guard import RandomWeightsError
from unirestore_mm.registry import TRANSFORMS


def test_registered_and_in_a_pipeline():
    pipeline = Compose(
        [
            dict(
                type='unirestore_mm.RestoreImage',
                task='cls',
                allow_random_weights=True,
            )
        ]
    )
    img = np.random.default_rng(0).integers(
        0, 256, (20, 30, 3), dtype=np.uint8
    )
    out = pipeline(dict(img=img.copy()))
    assert out['img'].shape == (20, 30, 3) and out['img'].dtype == np.uint8
    assert out['restoration'] == dict(task='cls', num_steps=1)
    assert 'RestoreImage' in repr(pipeline)


def _reference(model, img, peak, seed=0):
    """What RestoreImage should return, written out: the image (BGR[A] or gray,
    0..peak) as RGB floats in [0, 1], restored, then back to the input's
    layout, range and dtype (integers rounded, alpha copied)."""
    x = img.astype(np.float32) / np.float32(peak)
    gray = x.ndim == 2 or x.shape[2] == 1
    # BGR(A) -> RGB
    rgb = (
        np.repeat(x.reshape(*x.shape[:2], 1), 3, axis=2)
        if gray
        else x[..., 2::-1]
    )
    y = model.restore(
        torch.from_numpy(rgb.transpose(2, 0, 1).copy()), task='ir', seed=seed
    )
    # the restorer's float32, scaled in float32
    y = y.numpy().transpose(1, 2, 0) * np.float32(peak)
    if gray:
        ref = (
            y.mean(axis=2) if img.ndim == 2 else y.mean(axis=2, keepdims=True)
        )
    else:
        ref = y[..., ::-1]
        if img.shape[2] == 4:
            ref = np.concatenate(
                [ref, img[..., 3:].astype(np.float32)], axis=2
            )
    if np.issubdtype(img.dtype, np.integer):
        ref = np.clip(np.rint(ref), 0, peak)
    return ref


@pytest.mark.parametrize(
    'shape,dtype',
    [
        ((17, 23, 3), np.uint8),
        ((16, 16, 3), np.float32),
        ((16, 16), np.uint8),
        ((16, 16, 1), np.uint8),
        ((16, 16, 4), np.uint16),
    ],
)
def test_output_is_the_restorers_in_the_inputs_layout(shape, dtype):
    """Shape, dtype, range, channel order, gray and alpha handling: the
    transform's output equals the restorer's result on the converted image,
    converted back (written out in :func:`_reference`)."""
    rng = np.random.default_rng(0)
    peak = 65535 if dtype == np.uint16 else 255
    img = (rng.random(shape) * peak).astype(dtype)
    t = RestoreImage(task='ir', seed=0, allow_random_weights=True)
    out = t(dict(img=img.copy()))['img']
    assert out.shape == img.shape and out.dtype == img.dtype
    ref = _reference(t.model, img, peak)
    diff = np.abs(out.astype(np.float64) - ref)
    # integers: exact (rounded to the nearest level); floats (0-255): float32
    # rounding of the * 255 only
    assert diff.max() <= (0 if np.issubdtype(dtype, np.integer) else 1e-4), (
        diff.max()
    )
    # the restorer changed the image
    assert np.abs(out.astype(np.float64) - img).mean() > peak / 100
    if shape[-1] == 4 and len(shape) == 3:
        np.testing.assert_array_equal(out[..., 3], img[..., 3])  # alpha kept


def test_bgr_order_matches_the_restorer_on_rgb():
    t = RestoreImage(task='seg', seed=3, allow_random_weights=True)
    rgb = np.random.default_rng(1).integers(
        0, 256, (16, 16, 3), dtype=np.uint8
    )
    out_bgr = t(dict(img=rgb[..., ::-1].copy()))['img']
    x = torch.from_numpy(rgb.transpose(2, 0, 1).copy()).float() / 255
    ref = t.model.restore(x, task='seg', seed=3).numpy().transpose(1, 2, 0)
    ref = np.clip(np.rint(ref * 255), 0, 255).astype(np.uint8)
    np.testing.assert_array_equal(out_bgr[..., ::-1], ref)


def test_model_built_once_and_not_pickled(tmp_path):
    clear_restorer_cache()
    a = RestoreImage(task='ir', allow_random_weights=True)
    b = RestoreImage(task='cls', allow_random_weights=True)
    assert a.model is b.model  # same restorer, device: one model per process
    c = pickle.loads(pickle.dumps(a))
    assert c._model is None and c.model is a.model


def test_checkpoint_and_errors(tmp_path):
    UniRestore(preset='tiny', tasks=['ir']).save_pretrained(
        str(tmp_path / 'r')
    )
    t = RestoreImage(restorer=str(tmp_path / 'r'), task='ir', lazy=False)
    assert t.model.tasks == ['ir']
    with pytest.raises(ValueError, match='det'):
        RestoreImage(task='det', lazy=False, allow_random_weights=True)
    with pytest.raises(ValueError, match='do not match'):
        RestoreImage(
            restorer=dict(preset='tiny'),
            checkpoint=str(tmp_path / 'r'),
            lazy=False,
        )
    with pytest.raises(ValueError, match='channel_order'):
        TRANSFORMS.build(
            dict(
                type='unirestore_mm.RestoreImage',
                channel_order='rgba',
                allow_random_weights=True,
            )
        )
    with pytest.raises(KeyError, match='img'):
        RestoreImage(allow_random_weights=True)(
            dict(image=np.zeros((8, 8, 3), np.uint8))
        )
    with pytest.raises(TypeError, match='dtype'):
        RestoreImage(allow_random_weights=True)(
            dict(img=np.zeros((8, 8, 3), np.int64))
        )


def test_refuses_a_restorer_without_trained_weights(tmp_path):
    clear_restorer_cache()
    with pytest.raises(
        RandomWeightsError, match='only degrades images'
    ) as err:
        RestoreImage(task='cls')  # refused at construction, lazy or not
    assert 'allow_random_weights=True' in str(
        err.value
    ) and 'checkpoint=' in str(err.value)
    with pytest.raises(RandomWeightsError):
        Compose(
            [
                dict(
                    type='unirestore_mm.RestoreImage',
                    restorer=dict(preset='tiny'),
                )
            ]
        )
    UniRestore(preset='tiny').save_pretrained(str(tmp_path / 'r'))
    # a save_pretrained folder: trained weights
    RestoreImage(restorer=str(tmp_path / 'r'))
    # a checkpoint: trained weights
    RestoreImage(restorer=dict(preset='tiny'), checkpoint=str(tmp_path / 'r'))
    assert 'allow_random_weights=True' in repr(
        RestoreImage(allow_random_weights=True)
    )
