#!/usr/bin/env python
"""Time and profile one restore pass in float32, bfloat16 and float16, with
contiguous or channels-last weights, on this machine.

    OMP_NUM_THREADS=1 python tools/analysis_tools/profile_precision.py --preset tiny --size 64 --profile
    python tools/analysis_tools/profile_precision.py --preset tiny --size 256 --dtype fp32 --memory-format contiguous channels_last

Prints the CPU's reduced-precision features as PyTorch sees them (AVX512-BF16,
AMX, oneDNN), the best-of-N and median time per dtype and layout (interleaved:
one pass of each in turn, so that load from other processes hits all alike),
the largest difference of each variant's restoration from the first one's, and
with ``--profile`` the ops that take the most self CPU time and the time spent
in casts (``aten::to``/``_to_copy``/``copy_``).  Random weights: a timing,
never a quality figure.
"""  # noqa: E501

import argparse
import os
import os.path as osp
import platform
import sys
import time

import diffusers
import torch

# run from a checkout
sys.path.insert(
    0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
)
from unirestore_mm.models import UniRestore  # noqa: E402
from unirestore_mm.models.precision import (  # noqa: E402
    auto_dtype,
    auto_memory_format,
    memory_format_name,
    resolve_dtype,
    resolve_memory_format,
)

CAST_OPS = ('aten::to', 'aten::_to_copy', 'aten::copy_')


def cpu_features() -> str:
    flags = ''
    if osp.isfile('/proc/cpuinfo'):
        with open('/proc/cpuinfo') as f:
            flags = next((line for line in f if line.startswith('flags')), '')
    have = [
        f
        for f in (
            'avx2',
            'avx512f',
            'avx512_bf16',
            'avx512_fp16',
            'amx_bf16',
            'amx_fp16',
            'amx_tile',
        )
        if f' {f}' in flags
    ]
    cap = torch.backends.cpu.get_cpu_capability()
    onednn = getattr(torch.backends.mkldnn, 'is_available', lambda: False)()
    return (
        f'cpu flags {have}; torch cpu capability {cap}; oneDNN (mkldnn) '
        f'{onednn}'
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        '--preset', default='tiny', choices=['tiny', 'sd-turbo']
    )
    parser.add_argument('--size', type=int, default=64)
    parser.add_argument('--batch', type=int, default=1)
    parser.add_argument('--dtype', nargs='+', default=['fp32', 'bf16', 'fp16'])
    parser.add_argument(
        '--memory-format',
        nargs='+',
        default=['contiguous'],
        choices=['contiguous', 'channels_last'],
        help='layouts of the weights to time (each with each --dtype)',
    )
    parser.add_argument('--repeat', type=int, default=10)
    parser.add_argument('--profile', action='store_true')
    parser.add_argument(
        '--sequential',
        action='store_true',
        help='time the dtypes one after the other on one model (no copies: '
        'for SD-size models)',
    )
    parser.add_argument('--top', type=int, default=12)
    args = parser.parse_args()
    base = UniRestore(preset=args.preset).eval()
    x = torch.rand(
        args.batch,
        3,
        args.size,
        args.size,
        generator=torch.Generator().manual_seed(0),
    )
    print(
        f'# {platform.processor() or platform.machine()} | {os.cpu_count()} '
        f'cpus, torch threads {torch.get_num_threads()} | torch '
        f'{torch.__version__} | diffusers {diffusers.__version__} | preset '
        f'{args.preset} | {args.batch}x3x{args.size}x{args.size} | auto '
        f'dtype here: {auto_dtype("cpu", base)} | auto memory format here: '
        f'{memory_format_name(auto_memory_format("cpu"))}'
    )
    print('# ' + cpu_features())
    variants = [
        (name, layout) for layout in args.memory_format for name in args.dtype
    ]

    def setup(model, name, layout):
        return model.to(
            resolve_dtype(name), memory_format=resolve_memory_format(layout)
        )

    times = {v: [] for v in variants}
    outputs = {}
    with torch.no_grad():
        # one model, cast from variant to variant (a copy of an SD-size model
        # may not fit)
        if args.sequential:
            for v in variants:
                model = setup(base, *v)
                outputs[v] = model.restore(x, seed=0, min_size=None)  # warm-up
                for _ in range(args.repeat):
                    times[v].append(_timed(model, x))
            setup(base, 'fp32', 'contiguous')
        # interleaved: a pass of each variant in turn, so that load from
        # other processes hits all alike; the order turns round every pass
        else:
            import copy

            models = {v: setup(copy.deepcopy(base), *v) for v in variants}
            for v, model in models.items():
                outputs[v] = model.restore(x, seed=0, min_size=None)  # warm-up
            for i in range(args.repeat):
                order = list(models.items())
                for v, model in order if i % 2 == 0 else order[::-1]:
                    times[v].append(_timed(model, x))
            del models
    first = variants[0]
    medians = {}
    for v, ts in times.items():
        ts.sort()
        medians[v] = ts[len(ts) // 2]
        how = 'sequential' if args.sequential else 'interleaved'
        diff = (outputs[v].float() - outputs[first].float()).abs().max()
        print(
            f'{v[0]} {v[1]} ({how}): best {ts[0] * 1e3:.1f} ms, median '
            f'{medians[v] * 1e3:.1f} ms (of {args.repeat}); max |difference| '
            f'from {first[0]} {first[1]}: {diff.item():.3g}',
            flush=True,
        )
    for name in args.dtype if len(args.memory_format) > 1 else []:
        a, b = (name, args.memory_format[0]), (name, args.memory_format[1])
        print(
            f'{name}: median {a[1]} / {b[1]} = {medians[a] / medians[b]:.3f}',
            flush=True,
        )
    for name, layout in variants if args.profile else []:
        model = setup(base, name, layout)
        if args.profile:
            from torch.profiler import ProfilerActivity, profile

            with (
                torch.no_grad(),
                profile(activities=[ProfilerActivity.CPU]) as prof,
            ):
                for _ in range(3):
                    model.restore(x, seed=0, min_size=None)
            events = prof.key_averages()
            total = sum(e.self_cpu_time_total for e in events)
            casts = sum(
                e.self_cpu_time_total for e in events if e.key in CAST_OPS
            )
            print(
                f'  {name} {layout} profile (3 passes): self CPU total '
                f'{total / 3e3:.1f} ms/pass, casts {casts / 3e3:.1f} ms/pass '
                f'({100 * casts / max(total, 1):.0f} %)'
            )
            for e in sorted(events, key=lambda e: -e.self_cpu_time_total)[
                : args.top
            ]:
                print(
                    f'    {e.key:<40} {e.self_cpu_time_total / 3e3:8.2f} '
                    f'ms/pass  {e.count // 3:5d} calls/pass'
                )
    setup(base, 'fp32', 'contiguous')


def _timed(model, x) -> float:
    t0 = time.perf_counter()
    model.restore(x, seed=0, min_size=None)
    return time.perf_counter() - t0


if __name__ == '__main__':
    main()
