"""Convert the authors' released UniRestore checkpoints (PyTorch Lightning
``.ckpt`` files, one per training stage) to this package's restorer weights
(one ``.safetensors`` file).

    python tools/model_converters/unirestore_author_to_unirestore_mm.py stage1.ckpt stage2.ckpt \\
        -o checkpoints/unirestore-authors.safetensors --check-preset sd-turbo
    python tools/restore.py photos/ --out restored/ --preset sd-turbo --prior /models/sd-turbo \\
        --checkpoint checkpoints/unirestore-authors.safetensors

The files are merged in the order given (later stages win).  The key mapping,
the skipped frozen SD weights and the checks are those of
:mod:`unirestore_mm.models.author_checkpoint` (this tool is a command-line
front end to it, like ``python -m unirestore_mm.models.author_checkpoint``).
``--check-preset sd-turbo`` builds the restorer on the ``meta`` device (no
memory, no prior weights) and checks every key and shape before writing.

Mistakes in the command line or in the input files (a missing or unreadable
file, a file that is not one of the authors' checkpoints, a shape that does not
fit the preset) are reported in one ``error:`` line with exit status 2; nothing
is written then.
"""

import argparse
import os.path as osp
import sys

# run from a checkout
sys.path.insert(
    0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
)

PROG = osp.basename(__file__)
# What reading, mapping and checking the authors' files raise for a bad file or
# a preset that does not fit.
USER_ERRORS = (ValueError, KeyError, OSError)


class UsageError(Exception):
    """A mistake in the command line or the input files: reported in one line,
    exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, no usage block
        raise UsageError(message)


def parse_args(argv=None):
    parser = _Parser(
        prog=PROG,
        description="Convert the authors' UniRestore Lightning checkpoints "
        "to this package's restorer weights (.safetensors).",
    )
    parser.add_argument(
        'checkpoints',
        nargs='+',
        help="the authors' stage-1, stage-2 (and stage-3) .ckpt files, "
        'in the order the stages were trained',
    )
    parser.add_argument(
        '-o',
        '--out',
        required=True,
        help='output .safetensors file (restorer weights only)',
    )
    parser.add_argument(
        '--check-preset',
        default=None,
        help="check every key and shape against UniRestore(preset=...), e.g. "
        "sd-turbo",
    )
    parser.add_argument(
        '--allow-pickle',
        action='store_true',
        help='unpickle files that weights_only loading refuses (only files '
        'you trust)',
    )
    args = parser.parse_args(argv)
    for path in args.checkpoints:
        if not osp.isfile(path):
            raise UsageError(f'checkpoint {path!r}: no such file')
    if not args.out.endswith('.safetensors'):
        raise UsageError(
            f'--out {args.out!r}: expected a path ending in .safetensors'
        )
    if osp.isdir(args.out):
        raise UsageError(
            f'--out {args.out!r}: is a folder, expected a .safetensors file '
            'path'
        )
    if any(osp.abspath(args.out) == osp.abspath(p) for p in args.checkpoints):
        raise UsageError(
            f'--out {args.out!r}: is one of the input checkpoints'
        )
    return args


def convert(args):
    """Run the package's converter (mapping, checks, atomic write) on already
    validated arguments."""
    from unirestore_mm.models import author_checkpoint

    argv = [*args.checkpoints, '--out', args.out]
    if args.check_preset:
        argv += ['--check-preset', args.check_preset]
    if args.allow_pickle:
        argv.append('--allow-pickle')
    author_checkpoint.main(argv)


def main(argv=None):
    try:
        args = parse_args(argv)
        convert(args)
    except UsageError as e:
        print(f'{PROG}: error: {e}', file=sys.stderr)
        return 2
    except USER_ERRORS as e:
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        print(f'{PROG}: error: {reason}', file=sys.stderr)
        return 2
    return 0


if __name__ == '__main__':
    sys.exit(main())
