"""Helpers shared by the integration tests."""

import os
import os.path as osp

import numpy as np

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
MEAN = [123.675, 116.28, 103.53]
STD = [58.395, 57.12, 57.375]


def subprocess_env():
    env = dict(os.environ)
    env.update(
        OMP_NUM_THREADS='1',
        MKL_NUM_THREADS='1',
        HF_HUB_OFFLINE='1',
        PYTHONPATH=REPO + os.pathsep + env.get('PYTHONPATH', ''),
    )
    return env


def write_images(folder, n=4, size=(32, 32), seed=0):
    """``n`` random-ish BGR PNGs (smooth gradients + noise) in ``folder``."""
    import cv2

    rng = np.random.default_rng(seed)
    os.makedirs(folder, exist_ok=True)
    h, w = size
    yy, xx = np.mgrid[0:h, 0:w]
    for i in range(n):
        base = np.stack(
            [
                (xx * (i + 1) * 7) % 256,
                (yy * 5 + i * 40) % 256,
                (xx + yy) * 3 % 256,
            ],
            -1,
        )
        img = np.clip(base + rng.integers(-20, 20, base.shape), 0, 255).astype(
            np.uint8
        )
        cv2.imwrite(osp.join(folder, f'{i:03d}.png'), img)
    return folder
