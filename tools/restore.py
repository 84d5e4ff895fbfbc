"""Restore images with UniRestore: files or folders in, restored files out (a
thin wrapper on :class:`unirestore_mm.apis.UniRestoreInferencer`).

    python tools/restore.py photo.jpg foggy_dir/ --out restored/ --restorer work_dirs/unirestore_pretrained
    python tools/restore.py in/ --out out/ --restorer work_dirs/unirestore_pretrained --device cuda --batch-size 8
    python tools/restore.py in/ --out out/ --preset sd-turbo --prior /models/sd-turbo \
        --checkpoint work_dirs/stage2/iter_250000.pth --task cls

``--restorer`` takes a ``UniRestore.save_pretrained`` folder; otherwise the
model is built from ``--preset`` (and ``--prior`` for the real SD-Turbo
weights) and ``--checkpoint`` is loaded into it.  A preset without
``--checkpoint`` has random weights, which only degrade images: it is refused
unless ``--random-weights`` (timing).

Outputs keep each input's relative path (below the folder given) and name;
``--suffix`` is added before the extension, ``--ext`` replaces it.  Each output
is written atomically (a temporary file, then a rename), so an interrupted run
leaves only whole files, and ``--skip-existing`` continues it.  An input that
cannot be read or restored is reported and skipped; the failures are listed at
the end and the exit status is 1.  Usage errors (a missing input, a bad option
value, a checkpoint that does not load, an unknown task) print one
``restore.py: error: ...`` line and exit with 2.  Image ``i`` (in the sorted
input list) is sampled with the seed ``--seed + i``, whatever ``--batch-size``.
"""  # noqa: E501

import argparse
import os.path as osp
import sys
import time

# run from a checkout without installing
sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

PROG = 'restore.py'
# What building a restorer raises for a bad folder, checkpoint, prior, task or
# device.
USER_ERRORS = (
    ValueError,
    TypeError,
    KeyError,
    OSError,
    RuntimeError,
    AssertionError,
    ImportError,
)


class UsageError(Exception):
    """A mistake in the command line: reported in one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, no usage block
        raise UsageError(message)


def _positive_int(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f'expected a positive integer, got {text!r}'
        ) from None
    if value < 1:
        raise argparse.ArgumentTypeError(
            f'expected a positive integer, got {text!r}'
        )
    return value


def _non_negative_int(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f'expected an integer >= 0, got {text!r}'
        ) from None
    if value < 0:
        raise argparse.ArgumentTypeError(
            f'expected an integer >= 0, got {text!r}'
        )
    return value


def _steps(text):
    value = _positive_int(text)
    if value > 4:
        raise argparse.ArgumentTypeError(
            f'expected 1 to 4 DDIM steps, got {text!r}'
        )
    return value


def _min_size(text):
    if text in ('default', 'none', 'None'):
        return None if text.lower() == 'none' else 'default'
    try:
        return _positive_int(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(
            f"expected 'default', 'none' or a positive integer, got {text!r}"
        ) from None


def parse_args(argv=None):
    parser = _Parser(prog=PROG, description='Restore images with UniRestore')
    parser.add_argument(
        'inputs',
        nargs='+',
        help='image files and/or folders (searched recursively)',
    )
    parser.add_argument('--out', required=True, help='output folder')
    parser.add_argument(
        '--task',
        default='ir',
        help='task prompt: ir (people), cls, seg, or a trained one',
    )
    parser.add_argument(
        '--steps', type=_steps, default=1, help='DDIM steps, 1-4'
    )
    parser.add_argument(
        '--device', default='cpu', help='cpu, cuda, cuda:1, ...'
    )
    parser.add_argument(
        '--restorer', help='a UniRestore.save_pretrained folder'
    )
    parser.add_argument(
        '--preset',
        default='tiny',
        help='preset to build when --restorer is not given',
    )
    parser.add_argument(
        '--prior',
        help='local diffusers folder of the SD-Turbo prior (sd-turbo preset)',
    )
    parser.add_argument(
        '--checkpoint',
        help='restorer weights: .safetensors, save_pretrained folder or .pth',
    )
    parser.add_argument(
        '--random-weights',
        action='store_true',
        help='allow a preset without --checkpoint (random weights: the '
        'output is degraded; for timing only)',
    )
    parser.add_argument(
        '--min-size',
        type=_min_size,
        default='default',
        help="upscale so the short side is at least this before restoring "
        "('default': the preset's, 'none': never)",
    )
    parser.add_argument(
        '--seed',
        type=int,
        default=0,
        help='image i is sampled with seed SEED + i',
    )
    parser.add_argument(
        '--batch-size',
        type=_positive_int,
        default=1,
        help='images of the same size restored together, at most this many',
    )
    parser.add_argument(
        '--tiling',
        choices=['auto', 'on', 'off'],
        default='auto',
        help="restore large images in overlapping, smoothly blended tiles "
        "(bounded memory): 'auto' (default) when the scaled, padded "
        "image's side exceeds --tile-threshold",
    )
    parser.add_argument(
        '--tile-size',
        type=_positive_int,
        default=None,
        help="largest tile side in px, a multiple of the restorer's size "
        "divisor (default: the preset's, 512 for sd-turbo, 128 for tiny)",
    )
    parser.add_argument(
        '--tile-overlap',
        type=_non_negative_int,
        default=None,
        help="least overlap of neighbouring tiles in px, at most half a tile "
        "(default: the preset's, 32)",
    )
    parser.add_argument(
        '--tile-threshold',
        type=_non_negative_int,
        default=None,
        help="with --tiling auto, tile images whose side exceeds this "
        "(default: the preset's, 768 for sd-turbo, 192 for tiny)",
    )
    parser.add_argument(
        '--dtype',
        default='auto',
        choices=['auto', 'fp32', 'bf16', 'fp16'],
        help="precision: 'auto' (default) is the faster one measured per "
        "device and model: on the CPU bf16 for sd-turbo-sized restorers "
        "where oneDNN has native bf16, else fp32 (see "
        "docs/precision.md); on CUDA bf16 where supported, else fp16 "
        "(not measured here)",
    )
    parser.add_argument(
        '--memory-format',
        default='auto',
        choices=['auto', 'channels_last', 'contiguous'],
        help="layout of the restorer's convolutions: 'auto' (default) is "
        'channels_last on the CPU (measured 1.09-1.14x faster, see '
        'docs/speed.md) and contiguous on CUDA (not measured here)',
    )
    parser.add_argument(
        '--skip-existing',
        action='store_true',
        help='leave out inputs whose output exists (continue an interrupted '
        'run)',
    )
    parser.add_argument(
        '--suffix',
        default='',
        help='added to each output name before the extension',
    )
    parser.add_argument(
        '--ext', help='output extension (default: the input\'s)'
    )
    return parser.parse_args(argv)


def _one_line(err):
    return ' '.join(str(err).split()) or type(err).__name__


def run(args):
    import torch

    from unirestore_mm.apis.inferencer import (
        UniRestoreInferencer,
        collect_inputs,
        output_name,
    )
    from unirestore_mm.models.presets import PRESETS
    from unirestore_mm.models.weights_guard import require_trained_weights

    # Cheap checks first: a missing input or a name clash fails before a large
    # prior is loaded.
    if args.restorer:
        restorer = args.restorer
        if not osp.isdir(restorer):
            raise UsageError(
                f'--restorer {restorer}: no such folder (expected a '
                'UniRestore.save_pretrained folder)'
            )
    else:
        if args.preset not in PRESETS:
            raise UsageError(
                f'--preset {args.preset!r}: unknown preset; choose from '
                f'{", ".join(PRESETS)}'
            )
        restorer = dict(type='unirestore_mm.UniRestore', preset=args.preset)
    if args.checkpoint and not osp.exists(args.checkpoint):
        raise UsageError(
            f'--checkpoint {args.checkpoint}: no such file or folder'
        )
    if args.prior and not osp.isdir(args.prior):
        raise UsageError(
            f'--prior {args.prior}: no such folder (expected a local '
            'diffusers folder)'
        )
    try:
        torch.device(args.device)
    except RuntimeError as e:
        raise UsageError(f'--device {args.device!r}: {_one_line(e)}') from None
    try:
        require_trained_weights(
            restorer, args.checkpoint, args.random_weights, where='', cli=True
        )
        items = collect_inputs(args.inputs)
        names = [
            output_name(it['name'], args.suffix, args.ext) for it in items
        ]
        seen = {}
        for item, name in zip(items, names):
            if name in seen:
                raise ValueError(
                    f'{seen[name]} and {item["img_path"]} would both be '
                    f'written to {osp.join(args.out, name)}; restore them in '
                    'separate runs or with different '
                    '--out folders'
                )
            seen[name] = item['img_path']
    except (ValueError, FileNotFoundError) as e:
        raise UsageError(_one_line(e)) from None

    try:
        inferencer = UniRestoreInferencer(
            restorer,
            checkpoint=args.checkpoint,
            prior=args.prior,
            device=args.device,
            task=args.task,
            num_steps=args.steps,
            seed=args.seed,
            min_size=args.min_size,
            allow_random_weights=args.random_weights,
            tiling={'on': True, 'off': False}.get(args.tiling, 'auto'),
            tile_size=args.tile_size,
            tile_overlap=args.tile_overlap,
            tile_threshold=args.tile_threshold,
            show_progress=sys.stderr.isatty(),
            dtype=args.dtype,
            memory_format=args.memory_format,
        )
    except USER_ERRORS as e:
        raise UsageError(_one_line(e)) from None

    start = time.time()
    restored, skipped, failed = 0, 0, []
    try:
        for s in inferencer.iter_restore(
            args.inputs,
            batch_size=args.batch_size,
            out_dir=args.out,
            pred_out_dir='',
            no_save_vis=True,
            skip_existing=args.skip_existing,
            on_error='skip',
            suffix=args.suffix,
            ext=args.ext,
        ):
            if s.status == 'restored':
                restored += 1
                print(f'{s.img_path} -> {s.out_file}', flush=True)
            elif s.status == 'skipped':
                skipped += 1
            else:
                failed.append((s.index, s.img_path, s.error))
                print(
                    f'{PROG}: skipped {s.img_path}: {s.error}',
                    file=sys.stderr,
                    flush=True,
                )
    except KeyboardInterrupt:
        print(
            f'\n{PROG}: interrupted after {restored} image(s); the files '
            'written are whole, rerun with '
            '--skip-existing to continue',
            file=sys.stderr,
        )
        return 130
    print(
        f'restored {restored} image(s) in {time.time() - start:.1f} s (task '
        f'{args.task!r}, {args.steps} step(s), batch size {args.batch_size}, '
        f'{args.device}, {inferencer.cfg.dtype}, '
        f'{inferencer.cfg.memory_format})'
        + (f'; {skipped} already done' if skipped else '')
    )
    if failed:
        print(f'{PROG}: {len(failed)} input(s) failed:', file=sys.stderr)
        for _, path, reason in sorted(failed):
            print(f'  {path}: {reason}', file=sys.stderr)
        return 1
    return 0


def main(argv=None):
    try:
        args = parse_args(argv)
        return run(args)
    except UsageError as e:
        print(f'{PROG}: error: {e}', file=sys.stderr)
        return 2


if __name__ == '__main__':
    sys.exit(main())
