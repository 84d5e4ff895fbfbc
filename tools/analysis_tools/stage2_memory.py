#!/usr/bin/env python
"""Peak memory of stage-2 training steps (TFAs + the ``ir`` prompt learn;
prior, CFRM, Controller, skip adapters frozen), and the bytes autograd keeps
for the backward pass, per phase of the restorer.

    OMP_NUM_THREADS=1 python tools/analysis_tools/stage2_memory.py --preset tiny --size 64 --batch 2
    OMP_NUM_THREADS=1 python tools/analysis_tools/stage2_memory.py --preset sd-turbo --size 128 --keep-activations

Run one configuration per fresh process: the peak RSS (``ru_maxrss``) of a
process never goes down. ``--keep-activations`` is the comparison: the degraded
images and the encoder's latent are made to require grad, so autograd records
the frozen encoder, CFRM, Controller, UNet and decoder as a model without the
package's ``needs_grad``/``no_grad`` guards would when anything upstream needs
a gradient.  Random weights (a memory figure, not a quality one).  Prints the
machine, versions and the command line.
"""  # noqa: E501

import argparse
import os.path as osp
import platform
import resource
import sys
import time
from collections import defaultdict
from contextlib import contextmanager

import diffusers
import torch

# run from a checkout
sys.path.insert(
    0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
)
from unirestore_mm.models import UniRestore  # noqa: E402
from unirestore_mm.models.restorer_model import UniRestoreModel  # noqa: E402


def rss_mib() -> float:
    # Linux: KiB
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class SavedBytes:
    """Counts what autograd saves for backward, by the restorer phase running
    at the time."""

    def __init__(self, params=()):
        # weights (and views of them) are no activations
        self.params = {p.untyped_storage().data_ptr() for p in params}
        self.phase = 'other'
        self.bytes = defaultdict(int)
        self.count = defaultdict(int)
        self._seen = set()

    def pack(self, t):
        key = (t.untyped_storage().data_ptr(), t.dtype)
        # activations only; a storage counts once
        if key not in self._seen and key[0] not in self.params:
            self._seen.add(key)
            self.bytes[self.phase] += t.untyped_storage().nbytes()
        self.count[self.phase] += 1
        return t

    @contextmanager
    def during(self, phase):
        old, self.phase = self.phase, phase
        try:
            yield
        finally:
            self.phase = old


def instrument(model: UniRestore, saved: SavedBytes, keep: bool) -> None:
    enc, smp, dec = model.encode, model.sample, model.decode

    def encode(images, generator=None):
        if keep:
            images = images.detach().requires_grad_(True)
        with saved.during('encode (VAE encoder + CFRM)'):
            out = enc(images, generator=generator)
        if keep:
            out.latent.requires_grad_(True)
        return out

    def sample(z0, num_steps=1, generator=None):
        with saved.during('sample (Controller + UNet + adapters)'):
            return smp(z0, num_steps=num_steps, generator=generator)

    def decode(latent, skips, task):
        with saved.during('decode (VAE decoder + TFAs)'):
            return dec(latent, skips, task)

    model.encode, model.sample, model.decode = encode, sample, decode


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        '--preset', default='tiny', choices=['tiny', 'sd-turbo']
    )
    parser.add_argument('--size', type=int, default=64)
    parser.add_argument('--batch', type=int, default=2)
    parser.add_argument('--iters', type=int, default=2)
    parser.add_argument('--keep-activations', action='store_true')
    parser.add_argument(
        '--save-frozen-conv-inputs',
        action='store_true',
        help='the decoder\'s frozen convs save their inputs as plain '
        'nn.Conv2d does (the package before this option existed), to '
        'measure what saving weights only spares',
    )
    args = parser.parse_args()
    torch.manual_seed(0)
    start = rss_mib()
    model = UniRestoreModel(
        restorer=dict(type='unirestore_mm.UniRestore', preset=args.preset),
        stage=2,
        seed=0,
    )
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    optim = torch.optim.AdamW(params, lr=1e-4)
    saved = SavedBytes(model.parameters())
    instrument(model.restorer, saved, args.keep_activations)
    if args.save_frozen_conv_inputs:
        from contextlib import nullcontext

        from unirestore_mm.models import autoencoder

        autoencoder.frozen_convs_keep_weights_only = (
            lambda modules: nullcontext()
        )
    x = torch.rand(args.batch, 3, args.size, args.size)
    gt = torch.rand(args.batch, 3, args.size, args.size)
    built = rss_mib()
    t0 = time.perf_counter()
    for i in range(args.iters):
        saved.bytes.clear()  # the figures are the last iteration's
        saved.count.clear()
        saved._seen.clear()
        with torch.autograd.graph.saved_tensors_hooks(saved.pack, lambda t: t):
            losses = model.compute_losses(x, gt)
        loss = sum(losses.values())
        optim.zero_grad()
        loss.backward()
        optim.step()
    dt = (time.perf_counter() - t0) / args.iters
    peak = rss_mib()
    n_train = sum(p.numel() for p in params)
    print(
        f'# {platform.processor() or platform.machine()} | torch '
        f'{torch.__version__} | diffusers {diffusers.__version__} | '
        f'{" ".join(sys.argv)}'
    )
    print(
        f'preset {args.preset}, batch '
        f'{args.batch}x3x{args.size}x{args.size}, stage 2 ({n_train:,} '
        f'trainable), keep_activations={args.keep_activations}, '
        f'save_frozen_conv_inputs={args.save_frozen_conv_inputs}: peak RSS '
        f'{peak:.0f} MiB (after build {built:.0f}, at start {start:.0f}; '
        f'training adds {peak - built:.0f} MiB), {dt:.2f} s/iter'
    )
    for phase in sorted(saved.count):
        print(
            f'  saved for backward in {phase}: {saved.count[phase]} tensors, '
            f'{saved.bytes[phase] / 2**20:.1f} MiB'
        )


if __name__ == '__main__':
    main()
