"""The adverse-weather benchmark: how much each restorer recovers for your classifiers and segmenters.

Rows: the degraded input, every restorer under each of its task prompts, the clean input.  Columns: PSNR/SSIM
(where the data set has clean images) and each downstream model's own metrics from its own config's
``test_evaluator``.  Cells: every corruption × severity (or the data as given, for real degradations).

    # the demo's restorer and recognizers on the embedded set, 15 ImageNet-C corruptions at severities 1..5
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

``--data``: ``embedded-cls``, ``embedded-seg``, ``photos``, a dataset config with a ``test_dataloader`` (the
layouts in ``configs/_base_/datasets/``: Foggy Cityscapes, ACDC, RESIDE SOTS, Rain100L, Snow100K, an ImageNet val
subset, CUB-200, ...), or a folder written by ``tools/dataset_converters/make_benchmark_set.py``.
``--restorer NAME PATH``: a
``UniRestore.save_pretrained`` folder, or a checkpoint built on ``--preset`` (and ``--prior``, the local diffusers
folder of the prior).  ``--model NAME CONFIG CHECKPOINT``: an mmpretrain or mmseg model (its config needs a test
pipeline and a ``test_evaluator``).

Writes to ``--work-dir`` (default ``work_dirs/benchmark/<data>``): ``cells.jsonl`` (one line per finished cell: a
rerun continues where a killed one stopped), ``table.md``/``.csv``/``.json``, ``bars.png``,
``heatmap_<metric>.png`` (corruption × severity) and ``grid.png``.
"""
import argparse
import json
import os
import os.path as osp
import sys
import time

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))  # run from a checkout without installing

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
DATA_SHORTCUTS = {
    'embedded-cls': 'configs/_base_/datasets/embedded_cls.py',
    'embedded-seg': 'configs/_base_/datasets/embedded_seg.py',
    'photos': 'configs/_base_/datasets/sample_photos.py',
}


def parse_args(argv=None):
    from mmengine.config import DictAction
    p = argparse.ArgumentParser(prog='benchmark.py', description=__doc__.splitlines()[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    p.add_argument('--data', required=True, help=f'{", ".join(DATA_SHORTCUTS)}, a dataset config or a '
                   'make_benchmark_set folder')
    p.add_argument('--data-options', nargs='+', action=DictAction, default=None,
                   help='overrides of the data config, e.g. test_dataloader.dataset.data_root=data/acdc')
    p.add_argument('--restorer', nargs=2, action='append', default=[], metavar=('NAME', 'PATH'),
                   help='a restorer to benchmark (repeatable)')
    p.add_argument('--preset', default='tiny', help='preset of restorer checkpoints given as files (tiny, sd-turbo)')
    p.add_argument('--prior', default=None, help='local diffusers folder of the prior, for every restorer')
    p.add_argument('--tasks', nargs='+', default=None, help='prompts to benchmark (default: every task each '
                   'restorer has)')
    p.add_argument('--model', nargs=3, action='append', default=[], metavar=('NAME', 'CONFIG', 'CHECKPOINT'),
                   help='a downstream mmpretrain/mmseg model (repeatable)')
    p.add_argument('--corruptions', nargs='+', default=None,
                   help="names or groups (imagenet_c, weather, composite, all); default: the data config's")
    p.add_argument('--severities', nargs='+', type=int, default=None, help="1..5; default: the data config's")
    p.add_argument('--labels', default='auto', choices=['auto', 'dataset', 'clean-prediction'],
                   help="reference of each model: the data set's labels/masks, or its own prediction on the clean "
                   "image (agreement; 'auto': the data set's when it has them)")
    p.add_argument('--limit', type=int, default=None, help='only the first N images')
    p.add_argument('--steps', type=int, default=1, help='DDIM steps of the restorers (1-4)')
    p.add_argument('--seed', type=int, default=0, help='seed of the degradations and of the sampling noise')
    p.add_argument('--batch-size', type=int, default=8)
    p.add_argument('--num-workers', type=int, default=0)
    p.add_argument('--device', default='cpu', help='cpu or cuda (each process takes cuda:LOCAL_RANK)')
    p.add_argument('--dtype', default='fp32', choices=['fp32', 'bf16', 'fp16'], help='restorer precision')
    p.add_argument('--work-dir', default=None)
    p.add_argument('--overwrite', action='store_true', help='discard earlier results in the work dir')
    p.add_argument('--grid-index', type=int, default=0, help='the image shown in grid.png')
    p.add_argument('--no-figures', action='store_true')
    p.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'], default='none')
    p.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = p.parse_args(argv)
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def resolve_data(data: str):
    """(config path, data cfg-options, display name) for ``--data``."""
    if data in DATA_SHORTCUTS:
        return osp.join(REPO, DATA_SHORTCUTS[data]), {}, data
    if osp.isdir(data):
        if not osp.isfile(osp.join(data, 'manifest.json')):
            raise ValueError(f'--data {data}: a folder must be a benchmark set written by '
                             'tools/dataset_converters/make_benchmark_set.py (with manifest.json)')
        return (osp.join(REPO, 'configs/_base_/datasets/benchmark_set.py'),
                {'test_dataloader.dataset.data_root': osp.abspath(data)}, osp.basename(osp.normpath(data)))
    if osp.isfile(data):
        return data, {}, osp.splitext(osp.basename(data))[0]
    raise ValueError(f'--data {data}: not {", ".join(DATA_SHORTCUTS)}, a config file or a benchmark-set folder')


def main(argv=None):
    args = parse_args(argv)
    import torch
    from mmengine.dist import get_dist_info, init_dist

    if args.launcher != 'none':
        if args.device.startswith('cuda') or args.launcher != 'pytorch':
            init_dist(args.launcher, backend='nccl' if args.device.startswith('cuda') else 'gloo')
        elif not torch.distributed.is_initialized():
            # CPU processes under torchrun: MMEngine's init_dist would select a CUDA device; env:// from torchrun
            torch.distributed.init_process_group(backend='gloo')
    rank, world = get_dist_info()
    try:
        return run(args, rank, world)
    except (ValueError, FileNotFoundError, KeyError, TypeError, ImportError) as err:
        from unirestore_mm.apis.benchmark import BenchmarkError
        if not isinstance(err, (BenchmarkError, FileNotFoundError)) and os.environ.get('UNIRESTORE_DEBUG'):
            raise
        if rank == 0:
            msg = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            print(f'benchmark.py: error: {msg}', file=sys.stderr)
        raise SystemExit(2)
    finally:
        if world > 1:
            torch.distributed.destroy_process_group()


def run(args, rank, world):
    import shutil

    import torch

    import unirestore_mm  # noqa: F401  (registers everything)
    from unirestore_mm.apis.benchmark import (BenchmarkData, BenchmarkError, BenchRow, Downstream, RestorerSpec,
                                              _file_fingerprint, grid_tiles, resolve_label_source, run_benchmark,
                                              versions, write_benchmark_tables)

    if not args.restorer and not args.model:
        raise BenchmarkError('nothing to benchmark: give --model NAME CONFIG CHECKPOINT (and --restorer NAME PATH)')
    if not args.model:
        raise BenchmarkError('give at least one downstream model: --model NAME CONFIG CHECKPOINT')
    if not 1 <= args.steps <= 4:
        raise BenchmarkError(f'--steps must be 1..4, got {args.steps}')
    if args.batch_size < 1:
        raise BenchmarkError(f'--batch-size must be >= 1, got {args.batch_size}')
    if args.limit is not None and args.limit < 1:
        raise BenchmarkError(f'--limit must be >= 1, got {args.limit}')
    names = [n for n, _ in args.restorer] + [n for n, _, _ in args.model]
    for reserved in ('degraded', 'clean'):
        if reserved in [n for n, _ in args.restorer]:
            raise BenchmarkError(f'restorer name {reserved!r} is taken by a row of the table; choose another')
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise BenchmarkError(f'names given twice: {dup}')
    device = args.device
    if device.startswith('cuda'):
        if not torch.cuda.is_available():
            raise BenchmarkError(f'--device {device}: CUDA is not available')
        if world > 1:
            device = f'cuda:{int(os.environ.get("LOCAL_RANK", 0))}'
        torch.cuda.set_device(device)
    config, data_options, data_name = resolve_data(args.data)
    data_options.update(args.data_options or {})
    work_dir = args.work_dir or osp.join('work_dirs', 'benchmark', data_name)
    if args.overwrite and rank == 0 and osp.isdir(work_dir):
        shutil.rmtree(work_dir)

    # Everything is built and checked before the first image is restored.
    data = BenchmarkData(config, args.corruptions, args.severities, seed=args.seed, cfg_options=data_options,
                         limit=args.limit)
    models = [Downstream(n, c, k, device=device) for n, c, k in args.model]
    dtype = dict(fp32=torch.float32, bf16=torch.bfloat16, fp16=torch.float16)[args.dtype]
    restorers, rows = {}, [BenchRow('degraded', fingerprint=f'seed{args.seed}')]
    for name, path in args.restorer:
        spec = RestorerSpec(name, path, preset=args.preset, prior=args.prior)
        model = spec.build()
        tasks = args.tasks or model.tasks
        missing = [t for t in tasks if t not in model.tasks]
        if missing:
            raise BenchmarkError(f'restorer {name!r} ({path}) has no task {missing}; it has {model.tasks}')
        restorers[name] = model.to(device=device, dtype=dtype).eval()
        fp = f'{spec.fingerprint()}|steps{args.steps}|seed{args.seed}|{args.dtype}'
        rows += [BenchRow(f'{name}/{t}', restorer=name, task=t, fingerprint=fp) for t in tasks]
    if data.has_clean:
        rows.append(BenchRow('clean', source='clean', fingerprint='clean'))
    references = {m.name: resolve_label_source(args.labels, m, data) for m in models}  # labels a model needs
    settings = dict(data=osp.abspath(config), data_options={k: str(v) for k, v in data_options.items()},
                    data_config=_file_fingerprint(config), labels=args.labels, seed=args.seed, limit=args.limit,
                    models={m.name: [osp.abspath(m.config), _file_fingerprint(m.config),
                                     _file_fingerprint(m.checkpoint)] for m in models})
    if rank == 0:
        print(f'benchmark: {data_name} ({data.size} images, {data.mode}: {len(data.conditions)} condition(s)), '
              f'{len(rows)} rows, {len(models)} model(s), {world} process(es) -> {work_dir}', flush=True)
    start = time.time()
    cells = run_benchmark(data, restorers, rows, models, work_dir, settings, labels=args.labels,
                          batch_size=args.batch_size, num_workers=args.num_workers, num_steps=args.steps,
                          seed=args.seed)
    if rank != 0:
        return 0
    refs = ', '.join(f'{name}: {source}' for name, source in references.items())
    v = versions()
    header = (f'Benchmark on {data_name} ({data.size} images; {data.mode} conditions: '
              f'{len(data.conditions)}), restorers at {args.steps} step(s), seed {args.seed}; references: {refs}.  '
              f'Values are means over the conditions (the clean row: clean images).  {world} process(es); '
              + ', '.join(f'{k} {val}' for k, val in v.items()) + '.')
    names_in_order = [r.name for r in rows]
    paths = write_benchmark_tables(work_dir, cells, names_in_order, header=header)
    if not args.no_figures:
        from unirestore_mm.apis.benchmark import metric_names
        from unirestore_mm.visualization.benchmark_figures import benchmark_bars, benchmark_grid, benchmark_heatmaps
        metrics = metric_names(cells)
        paths['bars'] = benchmark_bars(cells, names_in_order, metrics, osp.join(work_dir, 'bars.png'))
        paths.update({f'heatmap {m}': p for m, p in benchmark_heatmaps(cells, names_in_order, metrics,
                                                                       work_dir).items()})
        tiles, line_titles, col_titles = grid_tiles(data, restorers, rows, index=args.grid_index,
                                                    num_steps=args.steps, seed=args.seed)
        paths['grid'] = benchmark_grid(tiles, line_titles, col_titles, osp.join(work_dir, 'grid.png'))
    with open(paths['md'], encoding='utf-8') as f:
        print(f.read().split('\n\n**')[0])
    print(f'benchmark: done in {time.time() - start:.1f} s; wrote ' + ', '.join(osp.basename(p) for p in
                                                                              paths.values()))
    print(json.dumps({'work_dir': work_dir}))
    return 0


if __name__ == '__main__':
    sys.exit(main())
