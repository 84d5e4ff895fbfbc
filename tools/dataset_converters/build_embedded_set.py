"""Build the embedded benchmark set once (idempotent; see
unirestore_mm/datasets/embedded.py).

python tools/dataset_converters/build_embedded_set.py                      # seed 0, 32x32, 4000 train / 500 test
python tools/dataset_converters/build_embedded_set.py --size 64 --seed 1 --root /data/unirestore
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

from unirestore_mm.datasets import build_embedded_set  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        '--root',
        default=None,
        help='data root (default $UNIRESTORE_DATA or <repo>/data)',
    )
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--size', type=int, default=32)
    parser.add_argument('--n-train', type=int, default=4000)
    parser.add_argument('--n-test', type=int, default=500)
    parser.add_argument(
        '--force', action='store_true', help='rebuild even if complete'
    )
    args = parser.parse_args(argv)
    t = time.time()
    try:
        path = build_embedded_set(
            args.root,
            args.seed,
            args.size,
            args.n_train,
            args.n_test,
            args.force,
        )
    # a missing source: say which and how to get it
    except (ImportError, FileNotFoundError) as err:
        sys.exit(f'build_embedded_set: cannot build the embedded set: {err}')
    print(f'{path} ({time.time() - t:.1f} s)')


if __name__ == '__main__':
    main()
