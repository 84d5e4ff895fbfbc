#!/usr/bin/env python
"""Time and profile one restore pass in float32, bfloat16 and float16 on this
machine.

    OMP_NUM_THREADS=1 python tools/analysis_tools/profile_precision.py --preset tiny --size 64 --profile

Prints the CPU's reduced-precision features as PyTorch sees them (AVX512-BF16,
AMX, oneDNN), the best-of-N time per dtype, and with ``--profile`` the ops that
take the most self CPU time and the time spent in casts
(``aten::to``/``_to_copy``/``copy_``).  Random weights: a timing, never a
quality figure.
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
    resolve_dtype,
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
        f'dtype here: {auto_dtype("cpu")}'
    )
    print('# ' + cpu_features())
    times = {name: [] for name in args.dtype}
    with torch.no_grad():
        # one model, cast from dtype to dtype (a copy of an SD-size model may
        # not fit)
        if args.sequential:
            for name in args.dtype:
                model = base.to(resolve_dtype(name))
                model.restore(x, seed=0, min_size=None)  # warm-up
                for _ in range(args.repeat):
                    times[name].append(_timed(model, x))
            base.to(torch.float32)
        # interleaved: a pass of each dtype in turn, so that load from other
        # processes hits all alike
        else:
            import copy

            models = {
                name: copy.deepcopy(base).to(resolve_dtype(name))
                for name in args.dtype
            }
            for name, model in models.items():
                model.restore(x, seed=0, min_size=None)  # warm-up
            for _ in range(args.repeat):
                for name, model in models.items():
                    times[name].append(_timed(model, x))
            del models
    for name, ts in times.items():
        ts.sort()
        how = 'sequential' if args.sequential else 'interleaved'
        print(
            f'{name} ({how}): best {ts[0] * 1e3:.1f} ms, median '
            f'{ts[len(ts) // 2] * 1e3:.1f} ms (of {args.repeat})',
            flush=True,
        )
    for name in args.dtype if args.profile else []:
        model = base.to(resolve_dtype(name))
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
                f'  {name} profile (3 passes): self CPU total '
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
    base.to(torch.float32)


def _timed(model, x) -> float:
    t0 = time.perf_counter()
    model.restore(x, seed=0, min_size=None)
    return time.perf_counter() - t0


if __name__ == '__main__':
    main()
