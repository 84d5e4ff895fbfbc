"""Write a fixed degraded benchmark set with a manifest (source file,
corruption, severity, seed).

    # the embedded set's test split, all 15 ImageNet-C corruptions at severity
    3, seed 0:
    python tools/dataset_converters/make_benchmark_set.py --out data/bench/embedded_c3
    # any folder of clean images, adverse weather at severities 1..5:
    python tools/dataset_converters/make_benchmark_set.py --source path/to/clean --out data/bench/weather \
        --corruptions weather composite --severities 1 2 3 4 5 --seed 0

Read it back with ``dict(type='unirestore_mm.PairedImageDataset',
data_root=OUT, ann_file='manifest.json', data_prefix=dict(img_path='',
gt_path=''))`` (see ``configs/_base_/datasets/benchmark_set.py``).  The layout
is documented in ``unirestore_mm/datasets/benchmark.py``.
"""  # noqa: E501

import argparse
import os
import sys
import time

sys.path.insert(
    0,
    os.path.dirname(
        os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    ),
)

from unirestore_mm.datasets import (  # noqa: E402
    build_embedded_set,
    make_benchmark_set,
)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        '--source',
        default='embedded',
        help="folder of clean images, an embedded set folder, or 'embedded' "
        "(default: "
        'build/reuse the default embedded set)',
    )
    parser.add_argument('--out', required=True)
    parser.add_argument(
        '--corruptions',
        nargs='+',
        default=['imagenet_c'],
        help="names or groups: imagenet_c, weather, composite, all",
    )
    parser.add_argument('--severities', type=int, nargs='+', default=[3])
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument(
        '--split', default='test', help='split of an embedded set'
    )
    parser.add_argument(
        '--limit', type=int, default=None, help='only the first N images'
    )
    parser.add_argument(
        '--on-corrupt', choices=['skip', 'raise'], default='skip'
    )
    parser.add_argument('--overwrite', action='store_true')
    parser.add_argument(
        '--embedded-root', default=None, help="data root for --source embedded"
    )
    args = parser.parse_args(argv)
    source = (
        build_embedded_set(root=args.embedded_root)
        if args.source == 'embedded'
        else args.source
    )
    t = time.time()
    out = make_benchmark_set(
        source,
        args.out,
        args.corruptions,
        args.severities,
        args.seed,
        args.split,
        args.limit,
        args.on_corrupt,
        args.overwrite,
    )
    print(
        f'wrote {out} in {time.time() - t:.1f} s (manifest: '
        f'{os.path.join(out, "manifest.json")})'
    )


if __name__ == '__main__':
    main()
