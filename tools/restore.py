"""Restore images with UniRestore: files or folders in, restored files out.

    python tools/restore.py photo.jpg foggy_dir/ --out restored/ --task ir --steps 1
    python tools/restore.py in/ --out out/ --restorer work_dirs/unirestore_pretrained --device cuda
    python tools/restore.py in/ --out out/ --preset sd-turbo --prior /models/sd-turbo \
        --checkpoint work_dirs/stage2/iter_250000.pth --task cls

``--restorer`` takes a ``UniRestore.save_pretrained`` folder; otherwise the model is built from ``--preset``
(and ``--prior`` for the real SD-Turbo weights) and ``--checkpoint`` is loaded into it.  Outputs keep each
input's relative path (below the folder given) and name; ``--suffix`` is added before the extension.
"""
import argparse
import os
import os.path as osp
import sys
import time

import cv2
import numpy as np

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))  # run from a checkout without installing

IMG_EXTENSIONS = ('.png', '.jpg', '.jpeg', '.bmp', '.tif', '.tiff', '.webp', '.ppm', '.pgm')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Restore images with UniRestore')
    parser.add_argument('inputs', nargs='+', help='image files and/or folders (searched recursively)')
    parser.add_argument('--out', required=True, help='output folder')
    parser.add_argument('--task', default='ir', help='task prompt: ir (people), cls, seg, or a trained one')
    parser.add_argument('--steps', type=int, default=1, help='DDIM steps, 1-4')
    parser.add_argument('--device', default='cpu', help='cpu, cuda, cuda:1, ...')
    parser.add_argument('--restorer', help='a UniRestore.save_pretrained folder')
    parser.add_argument('--preset', default='tiny', help='preset to build when --restorer is not given')
    parser.add_argument('--prior', help='local diffusers folder of the SD-Turbo prior (sd-turbo preset)')
    parser.add_argument('--checkpoint', help='restorer weights: .safetensors, save_pretrained folder or .pth')
    parser.add_argument('--min-size', default='default',
                        help="upscale so the short side is at least this before restoring ('default': the preset's, "
                        "'none': never)")
    parser.add_argument('--seed', type=int, default=0, help='seed of the sampling noise')
    parser.add_argument('--suffix', default='', help='added to each output name before the extension')
    parser.add_argument('--ext', help='output extension (default: the input\'s)')
    return parser.parse_args(argv)


def collect_inputs(inputs):
    """[(path, relative output path)] for the files and folders given; raises on paths that do not exist."""
    items = []
    for item in inputs:
        if osp.isdir(item):
            found = []
            for dirpath, _, files in os.walk(item, followlinks=True):
                for f in sorted(files):
                    if f.lower().endswith(IMG_EXTENSIONS):
                        p = osp.join(dirpath, f)
                        found.append((p, osp.relpath(p, item)))
            if not found:
                raise FileNotFoundError(f'no images ({", ".join(IMG_EXTENSIONS)}) under {item}')
            items.extend(sorted(found))
        elif osp.isfile(item):
            items.append((item, osp.basename(item)))
        else:
            raise FileNotFoundError(f'no such file or folder: {item}')
    return items


def main(argv=None):
    args = parse_args(argv)
    from unirestore_mm.datasets.transforms.restore_image import RestoreImage
    from unirestore_mm.datasets.transforms.transforms import read_image

    if args.restorer:
        restorer = args.restorer
    else:
        restorer = dict(type='unirestore_mm.UniRestore', preset=args.preset)
        if args.prior:
            restorer['prior'] = dict(pretrained=args.prior)
    min_size = args.min_size
    if str(min_size).lower() == 'none':
        min_size = None
    elif min_size != 'default':
        min_size = int(min_size)
    items = collect_inputs(args.inputs)
    seen = {}
    for path, rel in items:
        stem, ext = osp.splitext(rel)
        dst = stem + args.suffix + (args.ext if args.ext else ext)
        if dst in seen:
            raise ValueError(f'{seen[dst]} and {path} would both be written to {osp.join(args.out, dst)}; '
                             'restore them in separate runs or with different --out folders')
        seen[dst] = path
    # Building up front: a bad checkpoint, task or device fails before any file is written.
    transform = RestoreImage(restorer=restorer, checkpoint=args.checkpoint, task=args.task, num_steps=args.steps,
                             device=args.device, min_size=min_size, seed=args.seed, channel_order='bgr', lazy=False)
    os.makedirs(args.out, exist_ok=True)
    start = time.time()
    for path, rel in items:
        img = read_image(path, color_type='unchanged')
        if img.dtype not in (np.uint8, np.uint16):
            raise ValueError(f'{path}: unsupported image dtype {img.dtype}')
        out = transform.restore_array(img)
        stem, ext = osp.splitext(rel)
        dst = osp.join(args.out, stem + args.suffix + (args.ext if args.ext else ext))
        os.makedirs(osp.dirname(dst) or '.', exist_ok=True)
        if not cv2.imwrite(dst, out):
            raise OSError(f'cannot write {dst}')
        print(f'{path} -> {dst}')
    print(f'restored {len(items)} image(s) in {time.time() - start:.1f} s (task {args.task!r}, {args.steps} step(s), '
          f'{args.device})')


if __name__ == '__main__':
    main()
