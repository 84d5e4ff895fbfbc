"""Test a checkpoint with an MMEngine Runner (the config's test_dataloader and
test_evaluator).

    python tools/test.py CONFIG work_dirs/x/iter_2.pth
    python tools/test.py CONFIG CHECKPOINT --cfg-options test_dataloader.batch_size=4 --out results.pkl
    python tools/test.py CONFIG CHECKPOINT --show-dir pictures
    python tools/test.py CONFIG CHECKPOINT --show-dir /data/pictures --skip-existing   # continue a stopped run

``--show-dir DIR`` writes one picture per test sample, degraded | restored |
clean side by side (RGB PNG, named after the sample's image file, or its
index), each file written atomically, by the config's
``unirestore_mm.RestorationVisualizationHook`` (added when the config has
none).  A relative DIR goes under ``<work_dir>/<timestamp>/`` (as mmseg's
``--show-dir``; the log names the folder), an absolute one is used as is.  It
draws restorer models (whose predictions carry ``pred_img``); asked of another
model (an mmpretrain or mmseg recognizer) the tool stops at the first batch
with a one-line error.

Bad files: a test sample whose files cannot be read (missing, empty,
undecodable, a cut PNG or JPEG, a folder, no permission, a degraded image
without its clean file, a pair of different sizes) is left out and the others
go on; the metrics are computed over the samples that ran, the bad ones are
listed at the end with the reason, and the exit status is 1.  ``--out`` (the
predictions, a pickle) is written atomically (a temporary file, then a rename).

``--skip-existing`` (with ``--show-dir``) continues an interrupted run: samples
whose picture is already in the folder are not run again (a relative DIR: the
folder of the latest run under the work dir).  The metrics, and ``--out``, then
cover only the samples run this time; the tool says how many.

Usage errors (a missing file, a bad option value, a config or checkpoint that
does not load, a checkpoint of another model) print one ``test.py: error: ...``
line and exit with 2.  ``UNIRESTORE_DEBUG=1`` shows the traceback of a config
that fails to build.
"""  # noqa: E501

import argparse
import glob
import os
import os.path as osp
import sys

# run from a checkout without installing
sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

PROG = 'test.py'


class UsageError(Exception):
    """A mistake in the command line or in what it names: one line, exit status
    2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, no usage block
        raise UsageError(message)


def _one_line(err: BaseException) -> str:
    return ' '.join(str(err).split()) or type(err).__name__


def parse_args(argv=None):
    from mmengine.config import DictAction

    parser = _Parser(
        prog=PROG,
        description='Test (and evaluate) a model; see the module docstring',
        epilog=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--work-dir', help='the dir to save logs and results')
    parser.add_argument(
        '--out',
        help='dump the predictions to this pickle file (.pkl or .pickle; '
        'written atomically)',
    )
    parser.add_argument(
        '--show-dir',
        help='write a degraded | restored | clean picture of every test '
        'sample to this folder (relative: under <work_dir>/<timestamp>/)',
    )
    parser.add_argument(
        '--skip-existing',
        action='store_true',
        help='continue an interrupted run: leave out samples whose '
        '--show-dir picture exists (a relative --show-dir: the latest '
        'run\'s folder); metrics and --out cover the samples run now',
    )
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override settings of the config (key=value pairs)',
    )
    parser.add_argument(
        '--launcher',
        choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none',
        help='job launcher',
    )
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    try:
        args = parser.parse_args(argv)
    # DictAction's parsing of a KEY=VALUE without '='
    except (ValueError, TypeError) as e:
        raise UsageError(
            f'--cfg-options: expected KEY=VALUE pairs ({_one_line(e)})'
        ) from None
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def check_paths(args) -> None:
    """The cheap checks, before anything is imported or built."""
    if not osp.isfile(args.config):
        raise UsageError(f'config {args.config}: no such file')
    if '://' not in args.checkpoint and not osp.isfile(args.checkpoint):
        raise UsageError(f'checkpoint {args.checkpoint}: no such file')
    if args.out is not None:
        if not args.out.endswith(('.pkl', '.pickle')):
            raise UsageError(
                f'--out {args.out}: must be a .pkl or .pickle file'
            )
        if osp.isdir(args.out):
            raise UsageError(
                f'--out {args.out}: is a folder (expected a .pkl file)'
            )
        parent = osp.dirname(osp.abspath(args.out))
        while not osp.exists(parent):
            parent = osp.dirname(parent)
        if not osp.isdir(parent) or not os.access(parent, os.W_OK):
            raise UsageError(f'--out {args.out}: cannot write under {parent}')
    for flag, path in (
        ('--work-dir', args.work_dir),
        ('--show-dir', args.show_dir),
    ):
        if path is not None and osp.exists(path) and not osp.isdir(path):
            raise UsageError(f'{flag} {path}: is a file (expected a folder)')
    if args.skip_existing and not args.show_dir:
        raise UsageError(
            '--skip-existing needs --show-dir (the pictures tell which '
            'samples are done)'
        )


def latest_pictures(work_dir: str, show_dir: str) -> str:
    """The folder a ``--skip-existing`` run continues: ``show_dir`` if
    absolute, else the latest ``<work_dir>/<timestamp>/<show_dir>`` that exists
    (none: a fresh one, as without the option)."""
    if osp.isabs(show_dir):
        return show_dir
    found = sorted(
        p
        for p in glob.glob(osp.join(glob.escape(work_dir), '*', show_dir))
        if osp.isdir(p)
    )
    return osp.abspath(found[-1]) if found else ''


def check_checkpoint(runner, path: str) -> None:
    """Refuse a checkpoint that does not load, or whose weights belong to
    another model (none of its keys, or keys of other shapes), before the test
    starts: MMEngine's non-strict loading would only warn."""
    from mmengine.model import is_model_wrapper
    from mmengine.runner.checkpoint import _load_checkpoint

    try:
        ckpt = _load_checkpoint(path, map_location='cpu')
    # torch.load's many ways to fail on a bad file
    except Exception as e:  # noqa: BLE001
        raise UsageError(
            f'checkpoint {path}: cannot be loaded ({type(e).__name__}: '
            f'{_one_line(e)[:300]})'
        ) from None
    state = ckpt.get('state_dict', ckpt) if isinstance(ckpt, dict) else None
    if not isinstance(state, dict) or not state:
        raise UsageError(
            f'checkpoint {path}: holds no state_dict (got '
            f'{type(ckpt).__name__})'
        )
    model = (
        runner.model.module if is_model_wrapper(runner.model) else runner.model
    )
    own = model.state_dict()
    keys = {
        k[len('module.') :] if k.startswith('module.') else k: v
        for k, v in state.items()
    }
    common = [k for k in keys if k in own]
    if not common:
        raise UsageError(
            f'checkpoint {path}: none of its {len(keys)} weights belong to '
            f'the model of the config (e.g. {next(iter(keys))!r}); is it the '
            'checkpoint of another config?'
        )
    wrong = [
        k
        for k in common
        if hasattr(keys[k], 'shape')
        and tuple(keys[k].shape) != tuple(own[k].shape)
    ]
    if wrong:
        k = wrong[0]
        raise UsageError(
            f'checkpoint {path}: {len(wrong)} weights have other shapes than '
            f'the model\'s (e.g. {k!r}: {tuple(keys[k].shape)} vs '
            f'{tuple(own[k].shape)}); is it the checkpoint of another config?'
        )


def run(args) -> int:
    check_paths(args)
    import torch
    from mmengine.config import Config
    from mmengine.dist import get_dist_info
    from mmengine.registry import RUNNERS, DefaultScope
    from mmengine.runner import Runner

    import unirestore_mm  # noqa: F401
    from unirestore_mm.engine import tolerant_test
    from unirestore_mm.engine.launch import apply_command_line
    from unirestore_mm.engine.visualization_hook import (
        NoRestoredImageError,
        enable_test_pictures,
    )
    from unirestore_mm.models.checkpoint_io import mmengine_safe_globals

    # MMEngine's checkpoints hold message-hub buffers and numpy values besides
    # tensors; allow exactly those, so that load_from works under torch.load's
    # weights_only=True default without unpickling arbitrary objects.
    torch.serialization.add_safe_globals(mmengine_safe_globals())
    debug = bool(os.environ.get('UNIRESTORE_DEBUG'))

    try:
        cfg = Config.fromfile(args.config)
    # a syntax error, a missing _base_, ...
    except Exception as e:  # noqa: BLE001
        if debug:
            raise
        raise UsageError(
            f'config {args.config}: cannot be read ({type(e).__name__}: '
            f'{_one_line(e)[:300]})'
        ) from None
    try:
        apply_command_line(
            cfg, args.config, args.launcher, args.work_dir, args.cfg_options
        )
    except Exception as e:  # noqa: BLE001
        if debug:
            raise
        raise UsageError(
            f'--cfg-options: {type(e).__name__}: {_one_line(e)[:300]}'
        ) from None
    for key in ('test_dataloader', 'test_evaluator'):
        if not cfg.get(key):
            raise UsageError(f'config {args.config}: has no {key}')
    cfg.load_from = args.checkpoint
    if args.out is not None:
        evaluator = cfg.test_evaluator
        evaluator = (
            list(evaluator)
            if isinstance(evaluator, (list, tuple))
            else [evaluator]
        )
        cfg.test_evaluator = evaluator + [
            dict(
                type='unirestore_mm.AtomicDumpResults', out_file_path=args.out
            )
        ]

    # --skip-existing: the samples whose picture is missing; the others are not
    # run again
    indices, total, pictures = None, None, None
    if args.skip_existing:
        pictures = latest_pictures(cfg.work_dir, args.show_dir)
        try:
            with DefaultScope.overwrite_default_scope(
                cfg.get('default_scope') or 'unirestore_mm'
            ):
                dataset = tolerant_test.SkipBadSamples(
                    cfg.test_dataloader.dataset
                )
        # a missing data folder, a bad data set config
        except Exception as e:  # noqa: BLE001
            if debug:
                raise
            raise UsageError(
                f'test_dataloader.dataset of {args.config}: '
                f'{type(e).__name__}: {_one_line(e)[:300]}'
            ) from None
        total = len(dataset.dataset) + len(dataset.missing)
        if pictures:
            stale = tolerant_test.remove_stale_tmp(pictures)
            if stale:
                print(
                    f'{PROG}: --skip-existing: removed {len(stale)} '
                    f'temporary file(s) of a killed run from {pictures}',
                    flush=True,
                )
            indices = tolerant_test.pending_indices(dataset, pictures)
            print(
                f'{PROG}: --skip-existing: {total - len(indices)} of {total} '
                f'samples have their picture in {pictures}; testing the '
                f'other {len(indices)}',
                flush=True,
            )
    if args.show_dir:
        enable_test_pictures(cfg, pictures or args.show_dir)
    try:
        tolerant_test.make_tolerant(cfg, indices)
    except ValueError as e:
        raise UsageError(f'config {args.config}: {e}') from None

    rank = 0
    try:
        runner = (
            Runner.from_cfg(cfg)
            if 'runner_type' not in cfg
            else RUNNERS.build(cfg)
        )
        rank, _ = get_dist_info()
        # builds the data set: a bad folder fails here
        runner._test_loop = runner.build_test_loop(runner._test_loop)
    # a model, data set or evaluator that the config cannot build
    except Exception as e:  # noqa: BLE001
        if debug:
            raise
        raise UsageError(
            f'config {args.config}: cannot build the test run '
            f'({type(e).__name__}: {_one_line(e)[:300]})'
        ) from None
    if indices is not None and not indices:
        print(
            f'{PROG}: nothing to test: every sample has its picture in '
            f'{pictures}'
        )
        return 0
    check_checkpoint(runner, args.checkpoint)

    try:
        runner.test()
    except NoRestoredImageError as e:
        raise UsageError(f'--show-dir: {e}') from None
    except KeyboardInterrupt:
        print(
            f'\n{PROG}: interrupted; the pictures written are whole'
            + (
                ', rerun with --skip-existing to continue'
                if args.show_dir
                else ''
            ),
            file=sys.stderr,
        )
        return 130
    loop = runner.test_loop
    if total is None:
        total = len(loop.dataloader.dataset) + len(
            getattr(loop.dataloader.dataset, 'missing', [])
        )
    bad = loop.bad_samples
    if rank != 0:
        return 1 if bad else 0
    line = f'{PROG}: tested {loop.num_ran} of {total} sample(s)'
    if indices is not None:
        line += (
            f'; {total - len(indices)} skipped (their pictures exist): the '
            'metrics'
            + (' and --out' if args.out else '')
            + ' cover only the samples tested now'
        )
    if bad:
        line += f'; {len(bad)} bad'
    print(line, flush=True)
    if bad:
        print(
            f'{PROG}: {len(bad)} sample(s) left out (bad files):',
            file=sys.stderr,
        )
        for b in bad:
            print(f'  {b["path"]}: {b["reason"]}', file=sys.stderr)
        return 1
    return 0


def main(argv=None) -> int:
    try:
        return run(parse_args(argv))
    except UsageError as e:
        print(f'{PROG}: error: {e}', file=sys.stderr)
        return 2


if __name__ == '__main__':
    status = main()
    from unirestore_mm.engine.launch import end_distributed

    end_distributed()
    if status:  # a normal end returns (runpy callers go on)
        sys.exit(status)
