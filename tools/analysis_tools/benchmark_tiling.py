"""Time and peak memory of UniRestore's tiled restoration against image size
(issue 11).

    python tools/analysis_tools/benchmark_tiling.py                       # sd-turbo (random weights), 512/1024/2048
    python tools/analysis_tools/benchmark_tiling.py --sizes 512 1024 --device cuda
    python tools/analysis_tools/benchmark_tiling.py --quick               # tiny preset, small sizes (tests)

Each row (one square size) runs in a fresh subprocess, so that its peak memory
is its own: on the CPU the process's peak resident set (``VmHWM``, falling back
to ``ru_maxrss``), on CUDA ``max_memory_allocated``.  Two peaks are reported
per row: ``peak`` (the whole process: the model's weights plus the restore) and
``restore`` (the peak during the restore call above what was resident just
before it: the activations; on the CPU the kernel's peak counter is reset
through ``/proc/self/clear_refs`` before the call, where allowed).  The model
has random weights (time and memory do not depend on them).  Rows at or below
the preset's tile threshold are restored whole, larger ones in tiles
(``--tiling on|off`` forces either).  The table gives seconds, seconds per
megapixel relative to the first row (1.00 is linear time), the number of tiles
and the pixels they cover relative to the image (the overlaps' cost), and the
ratios of the last row's peaks to the first row's.
"""  # noqa: E501

import argparse
import json
import os
import os.path as osp
import platform
import resource
import subprocess
import sys
import time

# run from a checkout
sys.path.insert(
    0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
)

QUICK = dict(preset='tiny', sizes=[64, 128, 256])


def _status_kb(field: str):
    try:
        with open('/proc/self/status') as f:
            for line in f:
                if line.startswith(field + ':'):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def _reset_peak_rss() -> bool:
    try:
        with open('/proc/self/clear_refs', 'w') as f:
            f.write('5')  # resets VmHWM to the current RSS (Linux >= 4.0)
        return True
    except OSError:
        return False


def worker(args) -> dict:
    import torch

    from unirestore_mm.models import UniRestore
    from unirestore_mm.models.tiling import plan_tiles, wants_tiles

    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    device = torch.device(args.device)
    model = UniRestore(preset=args.preset, min_size=None).to(device).eval()
    size = args.size
    yy, xx = torch.meshgrid(
        torch.linspace(0, 1, size), torch.linspace(0, 1, size), indexing='ij'
    )
    x = torch.stack([yy, xx, (yy + xx) / 2]).unsqueeze(0)
    x = (
        (
            x
            + 0.05
            * torch.rand(x.shape, generator=torch.Generator().manual_seed(0))
        )
        .clamp(0, 1)
        .to(device)
    )
    tiling = {'on': True, 'off': False}.get(args.tiling, 'auto')
    kw = dict(
        tiling=tiling,
        tile_size=args.tile_size,
        tile_overlap=args.tile_overlap,
        tile_threshold=args.tile_threshold,
    )
    mode, settings = model.tile_settings(**kw)
    tiled = wants_tiles(mode, settings, size, size)
    grid = 2 ** (len(model.prior.vae.config.block_out_channels) - 1)
    tiles = (
        plan_tiles(size, size, settings, model.size_divisor, grid)
        if tiled
        else [(0, 0, size, size)]
    )
    covered = sum(h * w for _, _, h, w in tiles) / (size * size)
    row = dict(
        size=size,
        tiled=tiled,
        tiles=len(tiles),
        covered=covered,
        tile_size=settings.tile_size,
        tile_overlap=settings.tile_overlap,
        tile_threshold=settings.tile_threshold,
    )
    if device.type == 'cuda':
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        before = torch.cuda.memory_allocated(device)
    else:
        build_peak = max(
            _status_kb('VmHWM') or 0,
            resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        )
        before_rss = _status_kb('VmRSS')
        row['peak_reset'] = _reset_peak_rss()
    cpu_start = time.process_time()
    start = time.perf_counter()
    # one stderr line per tile: elapsed time and peak so far (a long run can be
    # followed)
    if args.progress:
        encode, count = model.encode, [0]

        def encode_with_progress(images, *a, **k):
            count[0] += 1
            hwm = _status_kb('VmHWM')
            print(
                f'  {size}px tile {count[0]}/{len(tiles)} '
                f'{tuple(images.shape[-2:])} starts at '
                f'{time.perf_counter() - start:.1f} s wall, '
                f'{time.process_time() - cpu_start:.1f} s CPU'
                + (f', VmHWM {hwm / 1024:.0f} MiB' if hwm else ''),
                file=sys.stderr,
                flush=True,
            )
            return encode(images, *a, **k)

        model.encode = encode_with_progress
    with torch.no_grad():
        out = model.restore(x, seed=0, **kw)
    if device.type == 'cuda':
        torch.cuda.synchronize(device)
    row['seconds'] = time.perf_counter() - start
    # all threads' CPU time: less sensitive to other load
    row['cpu_seconds'] = time.process_time() - cpu_start
    if device.type == 'cuda':
        peak = torch.cuda.max_memory_allocated(device)
        row.update(
            peak_mib=peak / 2**20,
            restore_mib=(peak - before) / 2**20,
            memory='cuda max_memory_allocated',
        )
    else:
        hwm = _status_kb('VmHWM')
        # KiB on Linux
        maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        peak_kb = hwm if hwm is not None else maxrss
        # the process's peak over its life: the build's peak (before the reset)
        # or the restore's
        row.update(
            peak_mib=max(peak_kb, maxrss, build_peak) / 1024,
            build_peak_mib=build_peak / 1024,
            memory='VmHWM' if hwm is not None else 'ru_maxrss',
        )
        # the restore's own peak: only meaningful when the peak counter was
        # reset just before the call
        row['restore_mib'] = (
            (hwm - before_rss) / 1024
            if (row['peak_reset'] and hwm and before_rss)
            else None
        )
    row['finite'] = bool(torch.isfinite(out).all())
    return row


def header(args) -> str:
    import torch

    try:
        import diffusers

        dver = diffusers.__version__
    except ImportError:
        dver = 'not installed'
    cpu = platform.processor() or platform.machine()
    try:
        with open('/proc/cpuinfo') as f:
            names = [
                ln.split(':', 1)[1].strip()
                for ln in f
                if ln.startswith('model name')
            ]
        if names:
            cpu = names[0]
    except OSError:
        pass
    mem = ''
    try:
        with open('/proc/meminfo') as f:
            total = int(f.readline().split()[1])
        mem = f', {total / 2**20:.1f} GiB RAM'
    except (OSError, ValueError, IndexError):
        pass
    try:
        load = ' '.join(f'{v:.2f}' for v in os.getloadavg())
    except OSError:
        load = 'n/a'
    lines = [
        f'# machine: {platform.node()}, {cpu}, {os.cpu_count()} logical '
        f'CPUs{mem}; {platform.platform()}',
        f'# python {platform.python_version()}, torch {torch.__version__} '
        f'({torch.get_num_threads()} threads default), diffusers {dver}',
        f'# preset {args.preset}, device {args.device}, threads '
        f'{args.threads or "default"}, tiling {args.tiling}; load average at '
        f'start {load}',
    ]
    if args.device.startswith('cuda') and torch.cuda.is_available():
        lines.append(
            f'# gpu: {torch.cuda.get_device_name(torch.device(args.device))}'
        )
    return '\n'.join(lines)


def run_row(args, size: int) -> dict:
    cmd = [
        sys.executable,
        osp.abspath(__file__),
        '--worker',
        '--size',
        str(size),
        '--preset',
        args.preset,
        '--device',
        args.device,
        '--tiling',
        args.tiling,
    ]
    for flag in ('tile_size', 'tile_overlap', 'tile_threshold', 'threads'):
        value = getattr(args, flag)
        if value is not None:
            cmd += ['--' + flag.replace('_', '-'), str(value)]
    if args.progress:
        cmd.append('--progress')
    # the worker's stderr (warnings, --progress lines) goes straight to ours
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, text=True)
    if proc.returncode != 0:
        raise RuntimeError(
            f'size {size}: the worker failed (exit {proc.returncode}); its '
            'error is above'
        )
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith('{')]
    return json.loads(lines[-1])


def table(rows) -> str:
    base = rows[0]

    def per_px(r, key):  # seconds per pixel relative to the first row
        return (r[key] / r['size'] ** 2) / (base[key] / base['size'] ** 2)

    out = [
        '| size | tiled | tiles | pixels covered | wall s | per-pixel wall '
        'vs first | CPU s | per-pixel CPU vs first | peak MiB (process) | '
        'restore MiB (above model) |',
        '|---|---|---|---|---|---|---|---|---|---|',
    ]
    for r in rows:
        restore = (
            f"{r['restore_mib']:.0f}"
            if r.get('restore_mib') is not None
            else 'n/a'
        )
        out.append(
            f"| {r['size']}x{r['size']} | {'yes' if r['tiled'] else 'no'} | "
            f"{r['tiles']} | {r['covered']:.3f}x | {r['seconds']:.2f} | "
            f"{per_px(r, 'seconds'):.3f} | {r['cpu_seconds']:.2f} | "
            f"{per_px(r, 'cpu_seconds'):.3f} | {r['peak_mib']:.0f} | "
            f"{restore} |"
        )
    last = rows[-1]
    out.append('')
    for key, name in (('seconds', 'wall'), ('cpu_seconds', 'CPU')):
        out.append(
            f"per-pixel {name} time ratios vs {base['size']}: "
            + ', '.join(f"{r['size']}: {per_px(r, key):.3f}" for r in rows[1:])
        )
    ratio = last['peak_mib'] / base['peak_mib']
    out.append(
        f"memory ratio {last['size']}/{base['size']}: process peak "
        f"{ratio:.3f}x"
        + (
            f", restore peak {last['restore_mib'] / base['restore_mib']:.3f}x"
            if last.get('restore_mib') and base.get('restore_mib')
            else ''
        )
        + f" ({last['memory']})"
    )
    return '\n'.join(out)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument(
        '--preset', default=None, help="'sd-turbo' (default) or 'tiny'"
    )
    p.add_argument('--device', default='cpu')
    p.add_argument(
        '--sizes',
        type=int,
        nargs='+',
        default=None,
        help='square sizes in px (default 512 1024 2048)',
    )
    p.add_argument('--tiling', choices=['auto', 'on', 'off'], default='auto')
    p.add_argument('--tile-size', type=int, default=None)
    p.add_argument('--tile-overlap', type=int, default=None)
    p.add_argument('--tile-threshold', type=int, default=None)
    p.add_argument(
        '--threads',
        type=int,
        default=None,
        help='torch threads (default: torch\'s)',
    )
    p.add_argument(
        '--quick',
        action='store_true',
        help=f'tiny preset, sizes {QUICK["sizes"]} (for tests)',
    )
    p.add_argument(
        '--json',
        default=None,
        help='also write the rows and the header to this JSON file',
    )
    p.add_argument(
        '--progress',
        action='store_true',
        help='print a line per tile to stderr as it starts',
    )
    p.add_argument('--worker', action='store_true', help=argparse.SUPPRESS)
    p.add_argument('--size', type=int, default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.preset is None:
        args.preset = QUICK['preset'] if args.quick else 'sd-turbo'
    if args.sizes is None:
        args.sizes = QUICK['sizes'] if args.quick else [512, 1024, 2048]
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.worker:
        print(json.dumps(worker(args)), flush=True)
        return 0
    head = header(args)
    print(head, flush=True)
    rows = []
    for size in args.sizes:
        rows.append(run_row(args, size))
        r = rows[-1]
        print(
            f"# {size}x{size}: {r['seconds']:.2f} s wall, "
            f"{r['cpu_seconds']:.2f} s CPU, {r['tiles']} tile(s), peak "
            f"{r['peak_mib']:.0f} MiB, restore "
            f"{r.get('restore_mib') or 0:.0f} MiB",
            flush=True,
        )
    try:
        load = ' '.join(f'{v:.2f}' for v in os.getloadavg())
    except OSError:
        load = 'n/a'
    print(table(rows))
    print(f'# load average at the end {load}')
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(dict(header=head, rows=rows, load_end=load), f, indent=2)
    return 0


if __name__ == '__main__':
    sys.exit(main())
