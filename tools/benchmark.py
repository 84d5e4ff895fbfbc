"""The adverse-weather benchmark: how much each restorer recovers for your
classifiers and segmenters.

Rows: the degraded input, every restorer under each of its task prompts, the
clean input.  Columns: PSNR/SSIM (where the data set has clean images) and each
downstream model's own metrics from its own config's ``test_evaluator``.
Cells: every corruption × severity (or the data as given, for real
degradations).

    # the demo's restorer and recognizers on the embedded set, 15 ImageNet-C
    corruptions at severities 1..5
    python tools/benchmark.py --data embedded-cls \\
        --restorer unirestore work_dirs/demo/stage2_seed0/unirestore.safetensors \\
        --prior work_dirs/demo/prior_unet/prior \\
        --model resnet18 configs/demo/cls-seen_resnet18-w16-cifar_1xb64-500it_clean-embedded.py \\
            work_dirs/demo/cls_seen/iter_500.pth \\
        --severities 1 2 3 4 5
    # ImageNet classifiers on the bundled photographs: agreement with their prediction on the clean photograph
    python tools/benchmark.py --data photos --labels clean-prediction --restorer ur RESTORER \\
        --model lite0 configs/mmpretrain/cls_efficientnet-lite0-timm_1xb32_in1k.py \\
        checkpoints/efficientnet-lite0_in1k.pth
    # several processes (GPUs, or CPU processes with gloo): images sharded, metrics collected by MMEngine
    bash tools/dist_benchmark.sh 8 --data configs/_base_/datasets/foggy_cityscapes.py ...

``--data``: ``embedded-cls``, ``embedded-seg``, ``photos``, a dataset config
with a ``test_dataloader`` (the layouts in ``configs/_base_/datasets/``: Foggy
Cityscapes, ACDC, RESIDE SOTS, Rain100L, Snow100K, an ImageNet val subset,
CUB-200, ...), or a folder written by
``tools/dataset_converters/make_benchmark_set.py``. ``--restorer NAME PATH``: a
``UniRestore.save_pretrained`` folder, or a checkpoint built on ``--preset``
(and ``--prior``, the local diffusers folder of the prior).
``--model NAME CONFIG CHECKPOINT``: an mmpretrain or mmseg model (its config
needs a test pipeline and a ``test_evaluator``).

Writes to ``--work-dir`` (default ``work_dirs/benchmark/<data>``):
``cells.jsonl`` (one line per finished cell), ``settings.json``,
``table.md``/``.csv``/``.json``, ``bars.png``, ``heatmap_<metric>.png``
(corruption × severity) and ``grid.png``; every file but the ``cells.jsonl``
journal is written atomically (a temporary file, then a rename), and a line of
the journal cut by a kill is dropped on the next run.

Resuming (``--skip-existing``, the default): a rerun with the same settings
keeps the cells already in ``cells.jsonl`` and computes only the missing ones,
so an interrupted run continues where it stopped; results of other settings in
the work dir are refused.  ``--overwrite`` discards them and starts again.

Bad files (an image that cannot be read or decoded, a cut PNG/JPEG, a missing
clean file, a pair of different sizes): each cell is computed over the other
images, the files are listed at the end with the reason, and the exit status is
1 (also on a rerun that keeps such cells: mend the files, then
``--overwrite``).

Usage errors (a missing file, a bad option value, a config or checkpoint that
does not load) print one ``benchmark.py: error: ...`` line and exit with 2
before anything is computed.
"""  # noqa: E501

import argparse
import json
import os
import os.path as osp
import sys
import time

# run from a checkout without installing
sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
PROG = 'benchmark.py'
DATA_SHORTCUTS = {
    'embedded-cls': 'configs/_base_/datasets/embedded_cls.py',
    'embedded-seg': 'configs/_base_/datasets/embedded_seg.py',
    'photos': 'configs/_base_/datasets/sample_photos.py',
}


class UsageError(ValueError):
    """A mistake in the command line: reported in one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, no usage block
        raise UsageError(message)


def _one_line(err: BaseException) -> str:
    return ' '.join(str(err).split()) or type(err).__name__


def parse_args(argv=None):
    from mmengine.config import DictAction

    p = _Parser(
        prog=PROG,
        description=__doc__.splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__,
    )
    p.add_argument(
        '--data',
        required=True,
        help=f'{", ".join(DATA_SHORTCUTS)}, a dataset config or a '
        'make_benchmark_set folder',
    )
    p.add_argument(
        '--data-options',
        nargs='+',
        action=DictAction,
        default=None,
        help='overrides of the data config, e.g. '
        'test_dataloader.dataset.data_root=data/acdc',
    )
    p.add_argument(
        '--restorer',
        nargs=2,
        action='append',
        default=[],
        metavar=('NAME', 'PATH'),
        help='a restorer to benchmark (repeatable)',
    )
    p.add_argument(
        '--preset',
        default='tiny',
        help='preset of restorer checkpoints given as files (tiny, sd-turbo)',
    )
    p.add_argument(
        '--prior',
        default=None,
        help='local diffusers folder of the prior, for every restorer',
    )
    p.add_argument(
        '--tasks',
        nargs='+',
        default=None,
        help='prompts to benchmark (default: every task each restorer has)',
    )
    p.add_argument(
        '--model',
        nargs=3,
        action='append',
        default=[],
        metavar=('NAME', 'CONFIG', 'CHECKPOINT'),
        help='a downstream mmpretrain/mmseg model (repeatable)',
    )
    p.add_argument(
        '--corruptions',
        nargs='+',
        default=None,
        help="names or groups (imagenet_c, weather, composite, all); "
        "default: the data config's",
    )
    p.add_argument(
        '--severities',
        nargs='+',
        type=int,
        default=None,
        help="1..5; default: the data config's",
    )
    p.add_argument(
        '--labels',
        default='auto',
        choices=['auto', 'dataset', 'clean-prediction'],
        help="reference of each model: the data set's labels/masks, or its "
        "own prediction on the clean image (agreement; 'auto': the data "
        "set's when it has them)",
    )
    p.add_argument(
        '--limit', type=int, default=None, help='only the first N images'
    )
    p.add_argument(
        '--steps',
        type=int,
        default=1,
        help='DDIM steps of the restorers (1-4)',
    )
    p.add_argument(
        '--seed',
        type=int,
        default=0,
        help='seed of the degradations and of the sampling noise',
    )
    p.add_argument('--batch-size', type=int, default=8)
    p.add_argument('--num-workers', type=int, default=0)
    p.add_argument(
        '--device',
        default='cpu',
        help='cpu or cuda (each process takes cuda:LOCAL_RANK)',
    )
    p.add_argument(
        '--dtype',
        default='fp32',
        choices=['fp32', 'bf16', 'fp16'],
        help='restorer precision (fp16: cuda only)',
    )
    p.add_argument('--work-dir', default=None)
    p.add_argument(
        '--skip-existing',
        action='store_true',
        help='keep the cells already in the work dir\'s cells.jsonl and '
        'compute only the missing ones (continue an interrupted run); '
        'this is the default, the flag only says it',
    )
    p.add_argument(
        '--overwrite',
        action='store_true',
        help='discard earlier results in the work dir',
    )
    p.add_argument(
        '--grid-index', type=int, default=0, help='the image shown in grid.png'
    )
    p.add_argument('--no-figures', action='store_true')
    p.add_argument(
        '--launcher',
        choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none',
    )
    p.add_argument('--local_rank', '--local-rank', type=int, default=0)
    try:
        args = p.parse_args(argv)
    except (ValueError, TypeError) as err:
        if isinstance(err, UsageError):
            raise
        raise UsageError(
            f'--data-options: expected KEY=VALUE pairs ({_one_line(err)})'
        ) from None
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def resolve_data(data: str):
    """(config path, data cfg-options, display name) for ``--data``."""
    if data in DATA_SHORTCUTS:
        return osp.join(REPO, DATA_SHORTCUTS[data]), {}, data
    if osp.isdir(data):
        if not osp.isfile(osp.join(data, 'manifest.json')):
            raise ValueError(
                f'--data {data}: a folder must be a benchmark set written by '
                'tools/dataset_converters/make_benchmark_set.py (with '
                'manifest.json)'
            )
        return (
            osp.join(REPO, 'configs/_base_/datasets/benchmark_set.py'),
            {'test_dataloader.dataset.data_root': osp.abspath(data)},
            osp.basename(osp.normpath(data)),
        )
    if osp.isfile(data):
        return data, {}, osp.splitext(osp.basename(data))[0]
    raise ValueError(
        f'--data {data}: not {", ".join(DATA_SHORTCUTS)}, a config file or a '
        'benchmark-set folder'
    )


def main(argv=None):
    try:
        args = parse_args(argv)
    except UsageError as err:
        print(f'{PROG}: error: {err}', file=sys.stderr)
        raise SystemExit(2)
    import torch
    from mmengine.dist import get_dist_info, init_dist

    if args.launcher != 'none':
        if args.device.startswith('cuda') or args.launcher != 'pytorch':
            init_dist(
                args.launcher,
                backend='nccl' if args.device.startswith('cuda') else 'gloo',
            )
        elif not torch.distributed.is_initialized():
            # CPU processes under torchrun: MMEngine's init_dist would select a
            # CUDA device; env:// from torchrun
            torch.distributed.init_process_group(backend='gloo')
    rank, world = get_dist_info()
    try:
        return run(args, rank, world)
    except (
        ValueError,
        FileNotFoundError,
        KeyError,
        TypeError,
        ImportError,
    ) as err:
        from unirestore_mm.apis.benchmark import BenchmarkError

        if not isinstance(
            err, (BenchmarkError, UsageError, FileNotFoundError)
        ) and os.environ.get('UNIRESTORE_DEBUG'):
            raise
        if rank == 0:
            msg = (
                str(err).strip().splitlines()[0]
                if str(err).strip()
                else type(err).__name__
            )
            print(f'{PROG}: error: {msg}', file=sys.stderr)
        raise SystemExit(2)
    finally:
        if world > 1:
            torch.distributed.destroy_process_group()


def _building(what: str):
    """Turn whatever building ``what`` raises (a config that does not parse, a
    checkpoint torch cannot load, ...) into a one-line ``BenchmarkError``
    naming it; ``UNIRESTORE_DEBUG=1`` keeps the traceback."""
    import contextlib

    from unirestore_mm.apis.benchmark import BenchmarkError

    @contextlib.contextmanager
    def guard():
        try:
            yield
        except BenchmarkError:
            raise
        # reported in one line, the input named
        except Exception as err:  # noqa: BLE001
            if os.environ.get('UNIRESTORE_DEBUG'):
                raise
            raise BenchmarkError(
                f'{what}: {type(err).__name__}: {_one_line(err)[:400]}'
            ) from None

    return guard()


def check_args(args) -> None:
    """The option values that can be judged alone, before anything is built."""
    import torch

    from unirestore_mm.apis.benchmark import BenchmarkError
    from unirestore_mm.models.presets import PRESETS

    if not args.restorer and not args.model:
        raise BenchmarkError(
            'nothing to benchmark: give --model NAME CONFIG CHECKPOINT (and '
            '--restorer NAME PATH)'
        )
    if not args.model:
        raise BenchmarkError(
            'give at least one downstream model: --model NAME CONFIG '
            'CHECKPOINT'
        )
    if not 1 <= args.steps <= 4:
        raise BenchmarkError(f'--steps must be 1..4, got {args.steps}')
    if args.batch_size < 1:
        raise BenchmarkError(
            f'--batch-size must be >= 1, got {args.batch_size}'
        )
    if args.limit is not None and args.limit < 1:
        raise BenchmarkError(f'--limit must be >= 1, got {args.limit}')
    if args.num_workers < 0:
        raise BenchmarkError(
            f'--num-workers must be >= 0, got {args.num_workers}'
        )
    if args.grid_index < 0:
        raise BenchmarkError(
            f'--grid-index must be >= 0, got {args.grid_index}'
        )
    if args.corruptions:
        from unirestore_mm.datasets.transforms.transforms import (
            _expand_corruptions,
        )

        try:
            _expand_corruptions(args.corruptions)
        except (ValueError, KeyError) as err:
            raise BenchmarkError(
                f'--corruptions {" ".join(args.corruptions)}: {_one_line(err)}'
            ) from None
    for severity in args.severities or []:
        if not 1 <= severity <= 5:
            raise BenchmarkError(
                f'--severities: expected 1..5, got {severity}'
            )
    if args.skip_existing and args.overwrite:
        raise BenchmarkError(
            '--skip-existing keeps the finished cells and --overwrite '
            'discards them: give one'
        )
    try:
        device = torch.device(args.device)
    except RuntimeError as err:
        raise BenchmarkError(
            f'--device {args.device!r}: {_one_line(err)}'
        ) from None
    if device.type not in ('cpu', 'cuda'):
        raise BenchmarkError(f'--device {args.device!r}: expected cpu or cuda')
    if device.type == 'cuda' and not torch.cuda.is_available():
        raise BenchmarkError(f'--device {args.device}: CUDA is not available')
    if args.dtype == 'fp16' and device.type != 'cuda':
        raise BenchmarkError(
            '--dtype fp16 needs --device cuda (use bf16 or fp32 on the CPU)'
        )
    if args.restorer and args.preset not in PRESETS:
        raise BenchmarkError(
            f'--preset {args.preset!r}: unknown preset; choose from '
            f'{", ".join(PRESETS)}'
        )
    if args.prior is not None and not osp.isdir(args.prior):
        raise BenchmarkError(
            f'--prior {args.prior}: no such folder (expected a local '
            'diffusers folder)'
        )
    for name, config, checkpoint in args.model:
        if not osp.isfile(config):
            raise BenchmarkError(
                f'downstream model {name!r}: no config file at {config}'
            )
        if not osp.isfile(checkpoint):
            raise BenchmarkError(
                f'downstream model {name!r}: no checkpoint file at '
                f'{checkpoint}'
            )
    for name, path in args.restorer:
        if not osp.exists(path):
            raise BenchmarkError(
                f'restorer {name!r}: no file or folder at {path}'
            )
    names = [n for n, _ in args.restorer] + [n for n, _, _ in args.model]
    for reserved in ('degraded', 'clean'):
        if reserved in [n for n, _ in args.restorer]:
            raise BenchmarkError(
                f'restorer name {reserved!r} is taken by a row of the table; '
                'choose another'
            )
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise BenchmarkError(f'names given twice: {dup}')
    if args.work_dir is not None:
        if osp.exists(args.work_dir) and not osp.isdir(args.work_dir):
            raise BenchmarkError(
                f'--work-dir {args.work_dir}: is a file (expected a folder)'
            )


def run(args, rank, world):
    import shutil

    import torch

    import unirestore_mm  # noqa: F401  (registers everything)
    from unirestore_mm.apis.benchmark import (
        BenchmarkData,
        BenchmarkError,
        BenchRow,
        Downstream,
        RestorerSpec,
        _file_fingerprint,
        failed_files,
        grid_tiles,
        resolve_label_source,
        run_benchmark,
        versions,
        write_benchmark_tables,
    )

    check_args(args)
    device = args.device
    if device.startswith('cuda'):
        if world > 1:
            device = f'cuda:{int(os.environ.get("LOCAL_RANK", 0))}'
        torch.cuda.set_device(device)
    config, data_options, data_name = resolve_data(args.data)
    data_options.update(args.data_options or {})
    work_dir = args.work_dir or osp.join('work_dirs', 'benchmark', data_name)
    parent = osp.abspath(work_dir)
    while not osp.exists(parent):
        parent = osp.dirname(parent)
    if not osp.isdir(parent) or not os.access(parent, os.W_OK):
        raise BenchmarkError(
            f'--work-dir {work_dir}: cannot write under {parent}'
        )

    # Everything is built and checked before the first image is restored.
    with _building(f'--data {args.data}'):
        data = BenchmarkData(
            config,
            args.corruptions,
            args.severities,
            seed=args.seed,
            cfg_options=data_options,
            limit=args.limit,
        )
    if not args.no_figures and args.grid_index >= data.size:
        raise BenchmarkError(
            f'--grid-index {args.grid_index}: the data set has {data.size} '
            f'images (0..{data.size - 1})'
        )
    models = []
    for n, c, k in args.model:
        with _building(f'downstream model {n!r} ({c}, {k})'):
            models.append(Downstream(n, c, k, device=device))
    dtype = dict(fp32=torch.float32, bf16=torch.bfloat16, fp16=torch.float16)[
        args.dtype
    ]
    restorers, rows = (
        {},
        [BenchRow('degraded', fingerprint=f'seed{args.seed}')],
    )
    for name, path in args.restorer:
        spec = RestorerSpec(name, path, preset=args.preset, prior=args.prior)
        with _building(f'restorer {name!r} ({path})'):
            model = spec.build()
        tasks = args.tasks or model.tasks
        missing = [t for t in tasks if t not in model.tasks]
        if missing:
            raise BenchmarkError(
                f'restorer {name!r} ({path}) has no task {missing}; it has '
                f'{model.tasks}'
            )
        restorers[name] = model.to(device=device, dtype=dtype).eval()
        fp = f'{spec.fingerprint()}|steps{args.steps}|seed{args.seed}|{args.dtype}'
        rows += [
            BenchRow(f'{name}/{t}', restorer=name, task=t, fingerprint=fp)
            for t in tasks
        ]
    if data.has_clean:
        rows.append(BenchRow('clean', source='clean', fingerprint='clean'))
    # labels a model needs
    references = {
        m.name: resolve_label_source(args.labels, m, data) for m in models
    }
    settings = dict(
        data=osp.abspath(config),
        data_options={k: str(v) for k, v in data_options.items()},
        data_config=_file_fingerprint(config),
        labels=args.labels,
        seed=args.seed,
        limit=args.limit,
        models={
            m.name: [
                osp.abspath(m.config),
                _file_fingerprint(m.config),
                _file_fingerprint(m.checkpoint),
            ]
            for m in models
        },
    )
    if args.overwrite and rank == 0 and osp.isdir(work_dir):
        shutil.rmtree(work_dir)
    if rank == 0:
        print(
            f'benchmark: {data_name} ({data.size} images, {data.mode}: '
            f'{len(data.conditions)} condition(s)), {len(rows)} rows, '
            f'{len(models)} model(s), {world} process(es) -> {work_dir}',
            flush=True,
        )
    start = time.time()
    try:
        cells = run_benchmark(
            data,
            restorers,
            rows,
            models,
            work_dir,
            settings,
            labels=args.labels,
            batch_size=args.batch_size,
            num_workers=args.num_workers,
            num_steps=args.steps,
            seed=args.seed,
        )
    except KeyboardInterrupt:
        if rank == 0:
            print(
                f'\n{PROG}: interrupted; the finished cells are in '
                f'{osp.join(work_dir, "cells.jsonl")}: rerun the '
                'same command to continue',
                file=sys.stderr,
            )
        return 130
    if rank != 0:
        return 0
    refs = ', '.join(
        f'{name}: {source}' for name, source in references.items()
    )
    v = versions()
    header = (
        f'Benchmark on {data_name} ({data.size} images; {data.mode} '
        f'conditions: {len(data.conditions)}), restorers at {args.steps} '
        f'step(s), seed {args.seed}; references: {refs}.  Values are means '
        f'over the conditions (the clean row: clean images).  {world} '
        'process(es); ' + ', '.join(f'{k} {val}' for k, val in v.items()) + '.'
    )
    failed = failed_files(cells)
    if failed:
        header += (
            f'  {len(failed)} file(s) could not be read and were left out of '
            'the cells that hold them (each '
            'cell\'s images count says how many it has).'
        )
    names_in_order = [r.name for r in rows]
    paths = write_benchmark_tables(
        work_dir, cells, names_in_order, header=header
    )
    if not args.no_figures:
        from unirestore_mm.apis.benchmark import metric_names
        from unirestore_mm.visualization.benchmark_figures import (
            benchmark_bars,
            benchmark_grid,
            benchmark_heatmaps,
        )

        metrics = metric_names(cells)
        paths['bars'] = benchmark_bars(
            cells, names_in_order, metrics, osp.join(work_dir, 'bars.png')
        )
        paths.update(
            {
                f'heatmap {m}': p
                for m, p in benchmark_heatmaps(
                    cells, names_in_order, metrics, work_dir
                ).items()
            }
        )
        tiles, line_titles, col_titles = grid_tiles(
            data,
            restorers,
            rows,
            index=args.grid_index,
            num_steps=args.steps,
            seed=args.seed,
        )
        if tiles:
            paths['grid'] = benchmark_grid(
                tiles, line_titles, col_titles, osp.join(work_dir, 'grid.png')
            )
        else:
            print(
                f'{PROG}: grid.png not drawn: image {args.grid_index} is a '
                'bad file (choose another --grid-index)',
                file=sys.stderr,
            )
    with open(paths['md'], encoding='utf-8') as f:
        print(f.read().split('\n\n**')[0])
    print(
        f'benchmark: done in {time.time() - start:.1f} s; wrote '
        + ', '.join(osp.basename(p) for p in paths.values())
    )
    print(json.dumps({'work_dir': work_dir}))
    if failed:
        print(
            f'{PROG}: {len(failed)} file(s) left out (bad files):',
            file=sys.stderr,
        )
        for path, reason, n in failed:
            print(f'  {path}: {reason} ({n} cell(s))', file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
