"""Speed of every degradation: images per second per worker (one process, one
thread of OpenCV).

    python tools/analysis_tools/bench_degradations.py                 # 512×512, severities 1..5, 3 repeats
    python tools/analysis_tools/bench_degradations.py --size 1024 2048 --severities 5

Prints the machine, library versions, and per corruption the worst (slowest)
severity's images/s and seconds per image.  Exits 1 when any corruption takes
longer than ``--max-seconds`` (0.5 s) an image.
"""  # noqa: E501

import argparse
import os
import platform
import sys
import time

import cv2
import numpy as np

sys.path.insert(
    0,
    os.path.dirname(
        os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    ),
)

from unirestore_mm.datasets.transforms.degradations import (  # noqa: E402
    ALL_CORRUPTIONS,
    corrupt,
)


def test_image(h, w):
    """A real photograph (scikit-image's astronaut) when available, else a
    smooth random image."""
    try:
        import skimage.data

        img = skimage.data.astronaut()
    # any failure falls back to a synthetic image
    except Exception:  # noqa: BLE001
        rng = np.random.default_rng(0)
        img = cv2.GaussianBlur(
            (rng.random((256, 256, 3)) * 255).astype(np.uint8), (0, 0), 4
        )
    return cv2.resize(img, (w, h), interpolation=cv2.INTER_CUBIC)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        '--size',
        type=int,
        nargs='+',
        default=[512],
        help='H [W] (default 512 512)',
    )
    parser.add_argument(
        '--severities', type=int, nargs='+', default=[1, 2, 3, 4, 5]
    )
    parser.add_argument('--repeats', type=int, default=3)
    parser.add_argument(
        '--corruptions', nargs='+', default=list(ALL_CORRUPTIONS)
    )
    parser.add_argument(
        '--threads',
        type=int,
        default=1,
        help='OpenCV threads (1 = one worker)',
    )
    parser.add_argument('--max-seconds', type=float, default=0.5)
    args = parser.parse_args()
    h = args.size[0]
    w = args.size[1] if len(args.size) > 1 else h
    cv2.setNumThreads(args.threads)
    img = test_image(h, w)
    try:
        import torch

        torch_version = torch.__version__
    except ImportError:  # pragma: no cover
        torch_version = 'not installed'
    print(
        f'machine: {platform.platform()} | '
        f'{platform.processor() or platform.machine()} | {os.cpu_count()} CPUs '
        f'| python {platform.python_version()} | numpy {np.__version__} | '
        f'opencv {cv2.__version__} (threads {cv2.getNumThreads()}) | torch '
        f'{torch_version} (unused)'
    )
    print(
        f'image: {h}x{w} uint8 RGB, severities {args.severities}, best of '
        f'{args.repeats} per severity; '
        'worst severity reported'
    )
    print(f'{"corruption":<20}{"images/s":>10}{"s/image":>10}  worst severity')
    slow = []
    for name in args.corruptions:
        corrupt(img[:16, :16], name, 1, 0)  # warm-up (imports, kernels)
        worst, worst_sev = 0.0, None
        for sev in args.severities:
            best = float('inf')
            for r in range(args.repeats):
                t = time.perf_counter()
                corrupt(img, name, sev, np.random.default_rng(r))
                best = min(best, time.perf_counter() - t)
            if best > worst:
                worst, worst_sev = best, sev
        print(f'{name:<20}{1.0 / worst:>10.1f}{worst:>10.4f}  {worst_sev}')
        if worst > args.max_seconds:
            slow.append(name)
    # The whole transform as a training pipeline runs it: paper sampling,
    # down-scale and back, BGR.
    from unirestore_mm.datasets.transforms import RandomDegradation

    t = RandomDegradation(corruptions=args.corruptions, seed=0)
    bgr = np.ascontiguousarray(img[..., ::-1])
    n = max(2 * len(args.corruptions), 10)
    start = time.perf_counter()
    for i in range(n):
        t(dict(img=bgr, sample_idx=i))
    per = (time.perf_counter() - start) / n
    print(
        f'{"RandomDegradation":<20}{1.0 / per:>10.1f}{per:>10.4f}  paper '
        f'sampling, mean of {n} samples'
    )
    if slow:
        print(f'FAIL: slower than {args.max_seconds} s an image: {slow}')
        return 1
    print(f'ok: every corruption under {args.max_seconds} s an image')
    return 0


if __name__ == '__main__':
    sys.exit(main())
