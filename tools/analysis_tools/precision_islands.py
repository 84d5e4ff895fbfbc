#!/usr/bin/env python
"""Measure what bf16/fp16 restoration costs against float32, and what each fp32
island is worth.

    python tools/analysis_tools/precision_islands.py --preset tiny --size 64
    python tools/analysis_tools/precision_islands.py --preset sd-turbo --size 128 --dtype bf16 fp16

Random weights (the prior's and the restorer's): the zero-initialised
parameters of the restorer (NAFBlock scales, the Controller's last convs, the
prompts) are filled with small random values (``--init-std``) so every module
acts on the output.  Rows:

* ``part <name>``: the float32 model with only that part in the reduced
  precision (inputs cast in, outputs cast back): the error each part
  contributes;
* ``default``: the whole model cast (``model.to(dtype)``), all fp32 islands
  kept (what the package does);
* ``-<island>``: the default with one island switched off (runs in the reduced
  precision);
* ``+<module>``: the default with one more module kept in float32 (candidate
  islands).

Each row: max and mean absolute error of the restored image in [0, 1] against
the float32 restoration (same seed), its PSNR against it, and whether the
output is finite.  Prints the machine and versions.
"""

import argparse
import os.path as osp
import platform
import sys
from contextlib import contextmanager

import diffusers
import torch

# run from a checkout
sys.path.insert(
    0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
)
from unirestore_mm.models import (  # noqa: E402
    UniRestore,
    precision,
)

PARTS = {
    'cfrm': 'cfrm',
    'vae.encoder': 'prior.vae.encoder',
    'controller': 'controller',
    'skip_adapters': 'skip_adapters',
    'unet': 'prior.unet',
    'vae.decoder': 'prior.vae.decoder',
    'tfa': 'tfa',
}
EXTRA_FP32 = {
    'vae.decoder': 'prior.vae.decoder',
    'decoder.up_blocks[-1]': None,
    'unet.conv_out': 'prior.unet.conv_out',
    'all GroupNorm': 'GroupNorm',
    'vae.quant_conv': 'prior.vae.quant_conv',
}


def _cast(obj, dtype):
    if isinstance(obj, torch.Tensor):
        return obj.to(dtype) if obj.is_floating_point() else obj
    if isinstance(obj, (list, tuple)):
        return type(obj)(_cast(o, dtype) for o in obj)
    if isinstance(obj, dict):
        return {k: _cast(v, dtype) for k, v in obj.items()}
    return obj


def _called(module: torch.nn.Module):
    """The sub-modules the restore path calls for ``module``: the module itself
    when it is called as a whole, else (the VAE encoder/decoder, the UNet,
    CFRM, the TFAs, driven block by block) its children, with the elements of
    ModuleLists."""
    if not isinstance(
        module,
        (
            diffusers.models.autoencoders.vae.Encoder,
            diffusers.models.autoencoders.vae.Decoder,
            diffusers.UNet2DConditionModel,
        ),
    ) and type(module).__name__ not in ('CFRM', 'TaskFeatureAdapters'):
        return [module]
    out = []
    for child in module.children():
        out += (
            list(child) if isinstance(child, torch.nn.ModuleList) else [child]
        )
    return out


def in_dtype(
    module: torch.nn.Module,
    dtype: torch.dtype,
    out_dtype: torch.dtype,
    keep_out=(),
):
    """Run ``module`` in ``dtype``: weights cast, inputs cast in, outputs cast
    back to ``out_dtype`` (but those of the sub-modules in ``keep_out``)."""
    module.to(dtype)
    hooks = []
    for m in _called(module):
        hooks.append(
            m.register_forward_pre_hook(
                lambda m, a, k: (_cast(a, dtype), _cast(k, dtype)),
                with_kwargs=True,
            )
        )
        if not any(m is k for k in keep_out):
            hooks.append(
                m.register_forward_hook(lambda m, a, o: _cast(o, out_dtype))
            )
    return hooks


@contextmanager
def island_off(name):
    old = precision.FP32_ARITHMETIC[name]
    precision.FP32_ARITHMETIC[name] = False
    try:
        yield
    finally:
        precision.FP32_ARITHMETIC[name] = old


def build(args):
    model = UniRestore(preset=args.preset).eval()
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if not name.startswith('prior.') and p.abs().max() == 0:
                p.copy_(torch.randn(p.shape, generator=gen) * args.init_std)
    return model


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
    parser.add_argument('--steps', type=int, default=1)
    parser.add_argument(
        '--dtype',
        nargs='+',
        default=['bf16', 'fp16'],
        choices=['bf16', 'fp16'],
    )
    parser.add_argument('--init-std', type=float, default=0.02)
    parser.add_argument(
        '--min-size',
        type=int,
        default=None,
        help='short-side policy of restore (default: none)',
    )
    parser.add_argument(
        '--rows', nargs='+', default=['parts', 'default', 'islands', 'extra']
    )
    args = parser.parse_args()
    torch.manual_seed(0)
    model = build(args)
    state = {
        k: v.clone() for k, v in model.state_dict(keep_vars=False).items()
    }
    x = torch.rand(
        args.batch,
        3,
        args.size,
        args.size,
        generator=torch.Generator().manual_seed(0),
    )
    # a smooth image plus detail, closer to a photo than uniform noise
    x = (torch.nn.functional.avg_pool2d(x, 5, 1, 2) * 0.8 + x * 0.2).clamp(
        0, 1
    )

    def run():
        with torch.no_grad():
            return model.restore(
                x,
                task='ir',
                num_steps=args.steps,
                seed=0,
                min_size=args.min_size,
            ).float()

    def reset():
        model.to(torch.float32)
        # the prior is not in the state dict: reset it below
        model.load_state_dict(state, strict=False)
        model.prior.load_state_dict(prior_state)

    prior_state = {k: v.clone() for k, v in model.prior.state_dict().items()}
    ref = run()
    print(
        f'# {platform.processor() or platform.machine()} CPU, '
        f'{torch.get_num_threads()} threads | torch {torch.__version__} | '
        f'diffusers {diffusers.__version__} | preset {args.preset} | '
        f'{args.batch}x3x{args.size}x{args.size}, min_size {args.min_size} | '
        f'{args.steps} step(s) | random weights, init-std {args.init_std}'
    )
    print(
        '| dtype | row | max abs err | mean abs err | PSNR vs fp32 (dB) | '
        'finite |'
    )
    print('|---|---|---|---|---|---|')

    def report(dname, row, y):
        err = (y - ref).abs()
        finite = bool(torch.isfinite(y).all())
        mse = float((err**2).mean()) if finite else float('nan')
        psnr = (
            10 * torch.log10(torch.tensor(1.0 / max(mse, 1e-20))).item()
            if finite
            else float('nan')
        )
        print(
            f'| {dname} | {row} | {float(err.max()):.2e} | '
            f'{float(err.mean()):.2e} | {psnr:.1f} | {finite} |',
            flush=True,
        )

    for dname in args.dtype:
        dtype = precision.resolve_dtype(dname)
        if 'parts' in args.rows:
            for label, path in PARTS.items():
                reset()
                hooks = in_dtype(
                    model.get_submodule(path), dtype, torch.float32
                )
                # restore() casts its input to the CFRM's dtype (the model's):
                # back to float32 for the VAE encoder
                conv_in = model.prior.vae.encoder.conv_in
                if conv_in.weight.dtype == torch.float32:
                    hooks.append(
                        conv_in.register_forward_pre_hook(
                            lambda m, a: _cast(a, torch.float32)
                        )
                    )
                report(dname, f'part {label} only', run())
                for h in hooks:
                    h.remove()
        if 'default' in args.rows:
            reset()
            model.to(dtype)
            report(dname, 'default (all islands)', run())
        if 'islands' in args.rows:
            for name in precision.FP32_ARITHMETIC:
                reset()
                model.to(dtype)
                with island_off(name):
                    report(dname, f'-{name}', run())
            reset()
            model.to(dtype)
            for path in precision.FP32_MODULES:
                model.get_submodule(path).to(dtype)
            report(dname, '-head (decoder conv_norm_out+conv_out)', run())
            reset()
            model.to(dtype)
            for path in precision.FP32_MODULES:
                model.get_submodule(path).to(dtype)
            with (
                island_off('scheduler'),
                island_off('latent'),
                island_off('geometry'),
            ):
                report(dname, 'no islands at all', run())
        if 'extra' in args.rows:
            for label, path in EXTRA_FP32.items():
                reset()
                model.to(dtype)
                if path == 'GroupNorm':
                    mods = [
                        m
                        for m in model.modules()
                        if isinstance(m, torch.nn.GroupNorm)
                    ]
                elif path is None:
                    mods = [model.prior.vae.decoder.up_blocks[-1]]
                else:
                    mods = [model.get_submodule(path)]
                hooks = []
                # the head (image) stays float32, as in the default
                dec = model.prior.vae.decoder
                head = [dec.conv_norm_out, dec.conv_out]
                for m in mods:
                    hooks += in_dtype(m, torch.float32, dtype, keep_out=head)
                # the decoder hands its float32 feature to the TFAs: cast it in
                if path == 'prior.vae.decoder':
                    hooks += in_dtype(model.tfa, dtype, dtype)
                report(dname, f'+{label} in fp32', run())
                for h in hooks:
                    h.remove()
    reset()


if __name__ == '__main__':
    main()
