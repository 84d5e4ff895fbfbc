#!/usr/bin/env python
"""Time one restore pass of a UniRestore preset and check the output is finite.

    python tools/analysis_tools/benchmark_restore.py --preset tiny --size 64 --dtype fp32 bf16
    python tools/analysis_tools/benchmark_restore.py --preset sd-turbo --size 512 --device cuda --dtype fp32 bf16

Random prior weights unless --prior names a local diffusers folder: the figures
are speed and memory, never quality.  Prints the machine, torch and diffusers
versions with every figure.
"""  # noqa: E501

import argparse
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

DTYPES = dict(fp32=torch.float32, bf16=torch.bfloat16, fp16=torch.float16)


def machine(device: torch.device) -> str:
    if device.type == 'cuda':
        return torch.cuda.get_device_name(device)
    return (
        f'{platform.processor() or platform.machine()} CPU, '
        f'{torch.get_num_threads()} threads'
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        '--preset', default='tiny', choices=['tiny', 'sd-turbo']
    )
    parser.add_argument(
        '--prior',
        default=None,
        help='local diffusers folder of the prior (default: random)',
    )
    parser.add_argument(
        '--size', type=int, default=64, help='square image size'
    )
    parser.add_argument('--batch', type=int, default=1)
    parser.add_argument('--steps', type=int, default=1)
    parser.add_argument('--task', default='ir')
    parser.add_argument(
        '--device', default='cuda' if torch.cuda.is_available() else 'cpu'
    )
    parser.add_argument(
        '--dtype', nargs='+', default=['fp32'], choices=sorted(DTYPES)
    )
    parser.add_argument('--repeat', type=int, default=3)
    args = parser.parse_args()

    device = torch.device(args.device)
    prior = dict(pretrained=args.prior) if args.prior else None
    base = UniRestore(preset=args.preset, prior=prior).eval()
    print(
        f'# {machine(device)} | torch {torch.__version__} | diffusers '
        f'{diffusers.__version__} | preset {args.preset} | '
        f'{args.batch}x3x{args.size}x{args.size} | {args.steps} step(s) | '
        f'prior {"random" if prior is None else args.prior}'
    )
    x = torch.rand(
        args.batch,
        3,
        args.size,
        args.size,
        generator=torch.Generator().manual_seed(0),
    )
    for name in args.dtype:
        model = base.to(device=device, dtype=DTYPES[name])
        xi = x.to(device)
        # warm-up
        model.restore(
            xi, task=args.task, num_steps=args.steps, seed=0, min_size=None
        )
        if device.type == 'cuda':
            torch.cuda.synchronize(device)
            torch.cuda.reset_peak_memory_stats(device)
        times = []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            y = model.restore(
                xi, task=args.task, num_steps=args.steps, seed=0, min_size=None
            )
            if device.type == 'cuda':
                torch.cuda.synchronize(device)
            times.append(time.perf_counter() - t0)
        peak = (
            f'{torch.cuda.max_memory_allocated(device) / 2**30:.2f} GiB'
            if device.type == 'cuda'
            else 'n/a'
        )
        finite = bool(torch.isfinite(y).all())
        print(
            f'{name}: {min(times) * 1000:.1f} ms/batch (best of '
            f'{args.repeat}), peak memory {peak}, finite={finite}, out range '
            f'[{float(y.min()):.3f}, {float(y.max()):.3f}]'
        )
        if not finite:
            raise SystemExit(f'{name}: non-finite output')


if __name__ == '__main__':
    main()
