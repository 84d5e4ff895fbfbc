#!/usr/bin/env python
"""Images per second of the ``RestoreImage`` paths: per image (what a data
pipeline runs) and batched (:meth:`RestoreImage.restore_arrays`) at several
batch sizes.

    OMP_NUM_THREADS=1 python tools/analysis_tools/batch_throughput.py --preset tiny --size 64 --images 16

Random weights (a speed figure only).  Prints the machine, versions and thread
count.
"""  # noqa: E501

import argparse
import os.path as osp
import platform
import sys
import time

import diffusers
import numpy as np
import torch

# run from a checkout
sys.path.insert(
    0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
)
from unirestore_mm.datasets.transforms.restore_image import (  # noqa: E402
    RestoreImage,
)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        '--preset', default='tiny', choices=['tiny', 'sd-turbo']
    )
    parser.add_argument('--size', type=int, default=64)
    parser.add_argument('--images', type=int, default=16)
    parser.add_argument('--batch', type=int, nargs='+', default=[1, 4, 8])
    parser.add_argument('--repeat', type=int, default=3)
    parser.add_argument('--dtype', default='auto')
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    imgs = [
        rng.integers(0, 256, (args.size, args.size, 3), dtype=np.uint8)
        for _ in range(args.images)
    ]
    restore = RestoreImage(
        restorer=dict(preset=args.preset),
        allow_random_weights=True,
        dtype=args.dtype,
        min_size=None,
    )
    restore.restore_array(imgs[0])  # build and warm up
    print(
        f'# {platform.processor() or platform.machine()} | torch '
        f'{torch.__version__} ({torch.get_num_threads()} threads) | '
        f'diffusers {diffusers.__version__} | preset {args.preset} | '
        f'{args.images} images {args.size}x{args.size} | dtype '
        f'{restore.model.dtype} | best of {args.repeat}'
    )
    rows = [
        (
            'per image (pipeline transform)',
            lambda: [restore.restore_array(i) for i in imgs],
        )
    ]
    for b in args.batch:

        def batched(b=b):
            restore.batch_size = b
            return restore.restore_arrays(imgs)

        rows.append((f'restore_arrays, batch {b}', batched))
    for name, fn in rows:
        best = min(_time(fn) for _ in range(args.repeat))
        print(
            f'{name}: {args.images / best:.1f} images/s '
            f'({best / args.images * 1e3:.1f} ms/image)',
            flush=True,
        )


def _time(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


if __name__ == '__main__':
    main()
