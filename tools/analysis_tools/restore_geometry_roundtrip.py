"""How faithful is each restore geometry's round trip?  An identity restorer:
upscale to a short side of ``--min-size`` as ``UniRestore.restore`` does,
resize back, quantise to 8 bits; PSNR against the input, for the bundled
photographs and for uniform noise at several short sides, under
``geometry='release'`` and ``'antialias'``.

    python tools/analysis_tools/restore_geometry_roundtrip.py --sizes 64 128 256 384 512
"""

import argparse
import os.path as osp
import sys

# run from a checkout
sys.path.insert(
    0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        '--sizes',
        type=int,
        nargs='+',
        default=[64, 128, 256, 384, 512],
        help='short sides',
    )
    parser.add_argument(
        '--min-size',
        type=int,
        default=512,
        help="the preset's min_size (sd-turbo: 512)",
    )
    args = parser.parse_args(argv)
    import numpy as np
    import torch
    from torch.nn import functional as F

    from unirestore_mm.datasets import load_sample_photos
    from unirestore_mm.evaluation import psnr
    from unirestore_mm.models.image_ops import resize_short_side, resize_to

    photos = [
        torch.from_numpy(p).permute(2, 0, 1).float()[None] / 255
        for p in load_sample_photos().values()
    ]
    gen = torch.Generator().manual_seed(0)
    print(
        f'# identity round trip through a short side of {args.min_size}: '
        'PSNR (dB) to the input, mean over images'
    )
    print(
        '| short side | photos, release | photos, antialias | noise, release '
        '| noise, antialias |'
    )
    print('|---|---|---|---|---|')
    for short in args.sizes:
        noise = [
            torch.rand(1, 3, short, short * 4 // 3, generator=gen)
            for _ in range(4)
        ]
        scaled = []
        for x in photos:
            h, w = x.shape[-2:]
            s = short / min(h, w)
            scaled.append(
                F.interpolate(
                    x, size=(round(h * s), round(w * s)), mode='area'
                )
            )
        cells = []
        for images in (scaled, noise):
            for antialias in (False, True):
                vals = []
                for x in images:
                    up = resize_short_side(x, args.min_size, clamp=antialias)
                    y = (
                        resize_to(
                            up, tuple(x.shape[-2:]), antialias=antialias
                        ).clamp(0, 1)
                        * 255
                    ).round() / 255
                    vals.append(float(psnr(y, x).mean()))
                cells.append(float(np.mean(vals)))
        print(f'| {short} | ' + ' | '.join(f'{v:.1f}' for v in cells) + ' |')


if __name__ == '__main__':
    main()
