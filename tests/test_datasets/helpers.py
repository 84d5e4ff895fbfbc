"""Small images and files for the dataset tests."""

import os
import os.path as osp

import cv2
import numpy as np


def textured(h=32, w=32, seed=0):
    """A smooth, colourful test image with edges (so blurs and pixelation
    change it)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    img = np.stack(
        [
            127 + 100 * np.sin(xx / 3.0),
            127 + 100 * np.cos(yy / 4.0),
            127 + 60 * np.sin((xx + yy) / 5.0),
        ],
        axis=2,
    )
    img += rng.normal(0, 5, img.shape)
    img[h // 4 : h // 2, w // 4 : w // 2] = [20, 200, 60]
    return np.clip(img, 0, 255).astype(np.uint8)


def write_image(path, h=8, w=8, seed=0, channels=3, value=None):
    """Write a small PNG/JPEG (any suffix cv2 knows) and return the array
    written (BGR)."""
    os.makedirs(osp.dirname(path), exist_ok=True)
    img = (
        textured(h, w, seed)
        if value is None
        else np.full((h, w, 3), value, np.uint8)
    )
    if channels == 1:
        img = img[..., 0]
    assert cv2.imwrite(path, img), path
    return img


def write_mask(path, h=8, w=8, n_classes=19, seed=0):
    os.makedirs(osp.dirname(path), exist_ok=True)
    mask = (
        np.random.default_rng(seed)
        .integers(0, n_classes, size=(h, w))
        .astype(np.uint8)
    )
    assert cv2.imwrite(path, mask), path
    return mask


def write_text(path, text):
    os.makedirs(osp.dirname(path), exist_ok=True)
    with open(path, 'w') as f:
        f.write(text)
