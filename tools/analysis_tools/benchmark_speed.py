#!/usr/bin/env python
"""Speed, memory and FLOPs of UniRestore against its bare prior, measured in
one run on one machine.

    python tools/analysis_tools/benchmark_speed.py                          # the full CPU table (512 px, sd-turbo)
    python tools/analysis_tools/benchmark_speed.py --channels-last --compile --out speed.md speed.json
    python tools/analysis_tools/benchmark_speed.py --cuda-suite --device cuda --out cuda.md
    python tools/analysis_tools/benchmark_speed.py --quick                  # tiny sizes (tests)

Rows (each measured in a FRESH process, so a row's peak memory is its own):

* ``unirestore``: ``UniRestore(preset='sd-turbo').restore(x)`` at each
  ``--sizes`` (one DDIM step);
* ``bare``: its bare prior with diffusers' own forwards: ``vae.encode``, one
  ``unet`` step (null text embedding, t=999), ``vae.decode``; nothing of
  UniRestore's own;
* ``ddim``: ``--ddim-steps`` (50) DDIM steps of the same prior, run in full
  when the estimate from one measured UNet step fits ``--ddim-budget`` seconds,
  else extrapolated (and the table says so, and from what);
* ``tiny``: the tiny preset's ``restore`` at ``--tiny-size``;
* ``train2``: one stage-2 training step (TFAs + the ``ir`` prompt under 10*L1,
  AdamW) of ``--train-preset``.

Latency is the median of ``--repeat`` timed calls after one untimed call (that
first call runs under ``torch.utils.flop_counter.FlopCounterMode``, which gives
each row's FLOPs).  Peak memory: on CUDA ``torch.cuda.max_memory_allocated``;
on the CPU the process's peak resident set (VmHWM / ru_maxrss), weights
included.  The time floor of a row is its FLOPs over the machine's peak
throughput, measured in the same run with a large matmul of the row's dtype.
Random prior weights unless ``--prior`` names a local diffusers folder: the
figures are speed and memory, never quality.
"""  # noqa: E501

import argparse
import json
import math
import os
import os.path as osp
import platform
import resource
import statistics
import subprocess
import sys
import time
from typing import Any, Dict, List, Optional

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, REPO)  # run from a checkout

DTYPES = ('fp32', 'bf16', 'fp16')
KINDS = ('unirestore', 'bare', 'ddim', 'tiny', 'train2')
ROW_TAG = 'BENCHMARK_ROW '
# the modules whose FLOPs are broken out (path inside the restorer; the bare
# prior's paths lack 'prior.')
PARTS = dict(
    encode=('prior.vae.encoder', 'prior.vae.quant_conv'),
    unet=('prior.unet',),
    decode=('prior.vae.decoder', 'prior.vae.post_quant_conv'),
    cfrm=('cfrm',),
    tfa=('tfa',),
    controller=('controller',),
    skip_adapters=('skip_adapters',),
)


class UserError(Exception):
    """A mistake in the command line: one line on stderr, exit status 2."""


class Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, no usage block
        raise UserError(message)


# -----------------------------------------------------------------------------
# Child process: one measurement
# -----------------------------------------------------------------------------
def peak_rss_bytes() -> int:
    """The process's peak resident set size (VmHWM; ru_maxrss where /proc is
    missing)."""
    try:
        with open('/proc/self/status') as f:
            for line in f:
                if line.startswith('VmHWM:'):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss if sys.platform == 'darwin' else rss * 1024


def torch_dtype(name: str):
    import torch

    return dict(fp32=torch.float32, bf16=torch.bfloat16, fp16=torch.float16)[
        name
    ]


def cast(module, dtype, device):
    """Move a restorer or prior to ``device`` in ``dtype``: the package's
    precision API where it has one."""
    module = module.to(device)
    # UniRestore's (keeps its fp32 islands); a prior: plain .to
    setter = getattr(module, 'set_dtype', None)
    if callable(setter):
        setter(dtype)
        return module
    return module.to(dtype=dtype)


def restore_kwargs(model) -> Dict[str, Any]:
    """Whole-image restoration: tiling off where ``restore`` has it (the bare
    prior is never tiled)."""
    import inspect

    return (
        dict(tiling=False)
        if 'tiling' in inspect.signature(model.restore).parameters
        else {}
    )


def flops_of(counts: Dict[str, Dict[Any, int]], name: str, module) -> int:
    """FLOPs counted under module ``name``; where it was never called as a
    whole, the sum over its children."""
    if name in counts:
        return sum(counts[name].values())
    return sum(
        flops_of(counts, f'{name}.{child}', sub)
        for child, sub in module.named_children()
    )


def _call_module(model, fn):
    """A module holding ``model`` as a child, so the flop counter names every
    module by its path (``_Call.model.cfrm``...); calling it calls ``fn``."""
    import torch

    class _Call(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.model = model

        def forward(self):
            return fn()

    return _Call()


def sync(device) -> None:
    import torch

    if device.type == 'cuda':
        torch.cuda.synchronize(device)


def compile_blocks(model, unirestore: bool) -> None:
    """``torch.compile`` the blocks both paths call (VAE, UNet, and
    UniRestore's modules), in place."""
    prior = model.prior if unirestore else model
    enc, dec, unet = prior.vae.encoder, prior.vae.decoder, prior.unet
    mods = [
        enc.conv_in,
        *enc.down_blocks,
        enc.mid_block,
        dec.conv_in,
        dec.mid_block,
        *dec.up_blocks,
        *unet.down_blocks,
        unet.mid_block,
        *unet.up_blocks,
    ]
    if unirestore:
        mods += [
            *model.cfrm.stages,
            model.controller,
            model.skip_adapters,
            *model.tfa,
        ]
    for m in mods:
        m.compile()


def disable_fixes(model) -> None:
    """The restorer as before issue 11's speed fixes (the 'fixes off' rows):
    each TFA gate runs its own InstanceNorm and its full-size last conv before
    the pool (see :meth:`TaskFeatureAdapter.gates`)."""
    for adapter in model.tfa.adapters:
        adapter.fast_gates = False


def channels_last(model, *tensors):
    import torch

    model.to(memory_format=torch.channels_last)
    return [t.contiguous(memory_format=torch.channels_last) for t in tensors]


def build_prior(spec):
    from unirestore_mm.models import DiffusionPrior
    from unirestore_mm.models.presets import get_preset

    cfg = (
        dict(pretrained=spec['prior'])
        if spec.get('prior')
        else get_preset(spec['preset'])['prior']
    )
    return DiffusionPrior.build(cfg)


def bare_prior_fn(prior, x, steps: int, generator_seed: int = 0):
    """The bare prior with diffusers' own forwards: encode, ``steps`` DDIM
    steps from t=999, decode."""
    import torch
    from diffusers import DDIMScheduler
    from diffusers.utils.torch_utils import randn_tensor

    vae, unet = prior.vae, prior.unet
    sf = vae.config.scaling_factor
    ddim = DDIMScheduler.from_config(prior.ddim_config)
    b = x.shape[0]
    null = prior.null_embedding.to(device=x.device, dtype=x.dtype).expand(
        b, -1, -1
    )

    @torch.no_grad()
    def run(parts: Optional[dict] = None):
        g = torch.Generator(device=x.device).manual_seed(generator_seed)
        t0 = time.perf_counter()
        z0 = vae.encode(x * 2 - 1).latent_dist.sample(generator=g) * sf
        ddim.set_timesteps(steps, device=x.device)
        noise = randn_tensor(
            z0.shape, generator=g, device=z0.device, dtype=z0.dtype
        )
        z = prior.ddpm.add_noise(z0, noise, ddim.timesteps[:1].expand(b))
        if parts is not None:
            sync(x.device)
            parts['encode'] = time.perf_counter() - t0
        for t in ddim.timesteps:
            t1 = time.perf_counter()
            eps = unet(z, t.expand(b), encoder_hidden_states=null).sample
            z = ddim.step(eps, t, z).prev_sample
            if parts is not None:
                sync(x.device)
                parts.setdefault('unet', []).append(time.perf_counter() - t1)
        t2 = time.perf_counter()
        y = ((vae.decode(z / sf).sample + 1) / 2).clamp(0, 1)
        if parts is not None:
            sync(x.device)
            parts['decode'] = time.perf_counter() - t2
        return y

    return run


def measure_row(spec: Dict[str, Any]) -> Dict[str, Any]:
    """Build the row's model in this (fresh) process, count FLOPs on the
    untimed first call, time the rest."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from unirestore_mm.models import UniRestore

    torch.manual_seed(0)
    device = torch.device(spec['device'])
    dtype = torch_dtype(spec['dtype'])
    kind, size, batch = spec['kind'], spec['size'], spec['batch']
    x = torch.rand(
        batch, 3, size, size, generator=torch.Generator().manual_seed(0)
    ).to(device=device, dtype=dtype)
    result: Dict[str, Any] = dict(spec)
    root, unirestore_paths = None, True
    t_build = time.perf_counter()
    if kind in ('unirestore', 'tiny'):
        prior = (
            dict(pretrained=spec['prior'])
            if spec.get('prior') and spec['preset'] != 'tiny'
            else None
        )
        # inference only (restore runs without autograd either way); the flop
        # counter's module tracker cannot follow the prompt's no-grad views of
        # a parameter that requires grad
        model = cast(
            UniRestore(preset=spec['preset'], prior=prior)
            .eval()
            .requires_grad_(False),
            dtype,
            device,
        )
        if spec.get('fixes_off'):
            disable_fixes(model)
        if spec['channels_last']:
            (x,) = channels_last(model, x)
        if spec['compile']:
            compile_blocks(model, unirestore=True)
        root = model

        kw = restore_kwargs(model)

        def fn():
            return model.restore(
                x, task='ir', num_steps=1, seed=0, min_size=None, **kw
            )
    elif kind in ('bare', 'ddim'):
        prior = cast(build_prior(spec).eval(), dtype, device)
        if spec['channels_last']:
            (x,) = channels_last(prior, x)
        if spec['compile']:
            compile_blocks(prior, unirestore=False)
        root, unirestore_paths = prior, False
        fn = bare_prior_fn(
            prior, x, steps=spec['steps'] if kind == 'ddim' else 1
        )
    elif kind == 'train2':
        from unirestore_mm.models.restorer_model import UniRestoreModel

        prior = (
            dict(pretrained=spec['prior'])
            if spec.get('prior') and spec['preset'] != 'tiny'
            else None
        )
        restorer = dict(type='unirestore_mm.UniRestore', preset=spec['preset'])
        if prior:
            restorer['prior'] = prior
        wrapper = UniRestoreModel(restorer=restorer, stage=2, task='ir')
        cast(wrapper.restorer, dtype, device)
        wrapper.train()
        if spec.get('fixes_off'):
            disable_fixes(wrapper.restorer)
        if spec['channels_last']:
            (x,) = channels_last(wrapper.restorer, x)
        if spec['compile']:
            compile_blocks(wrapper.restorer, unirestore=True)
        params = [p for p in wrapper.parameters() if p.requires_grad]
        result['trainable_params'] = sum(p.numel() for p in params)
        optim = torch.optim.AdamW(params, lr=1e-4)
        gt = torch.rand(
            x.shape, generator=torch.Generator().manual_seed(1)
        ).to(x)
        root = wrapper.restorer

        def fn():
            losses = wrapper.compute_losses(x, gt)
            loss = sum(losses.values())
            optim.zero_grad(set_to_none=True)
            loss.backward()
            optim.step()
            return loss.detach()
    else:  # pragma: no cover - the parent only builds known kinds
        raise ValueError(kind)
    result['build_s'] = time.perf_counter() - t_build

    # the untimed first call, under the flop counter (the compiled variant:
    # plain, its FLOPs are the eager row's)
    if spec['count_flops'] and not spec['compile']:
        counter = FlopCounterMode(display=False)
        call = _call_module(root, fn)
        with counter:
            out = call()
        counts = counter.get_flop_counts()
        result['flops'] = counter.get_total_flops()
        if kind != 'train2':
            parts = {}
            for part, paths in PARTS.items():
                total, found = 0, False
                for path in paths:
                    if not unirestore_paths:
                        if not path.startswith('prior.'):
                            continue
                        path = path[len('prior.') :]
                    module = (
                        root.get_submodule(path) if _has(root, path) else None
                    )
                    if module is not None:
                        total += flops_of(
                            counts, f'_Call.model.{path}', module
                        )
                        found = True
                if found:
                    parts[part] = total
            result['flops_parts'] = parts
    # warm up on one step, not on the full run (the probe below times the
    # parts)
    elif kind == 'ddim':
        out = bare_prior_fn(root, x, steps=1)()
    else:
        out = fn()
    sync(device)
    result['finite'] = bool(torch.isfinite(out).all())

    if device.type == 'cuda':
        torch.cuda.reset_peak_memory_stats(device)
    times: List[float] = []
    if kind == 'ddim':
        # estimate the full run from its parts, then run it whole as often as
        # the budget allows
        parts = {}
        bare_prior_fn(root, x, steps=spec['probe_steps'])(parts)
        unet_step = statistics.median(parts['unet'])
        estimate = (
            parts['encode'] + spec['steps'] * unet_step + parts['decode']
        )
        result['probe'] = dict(
            encode=parts['encode'],
            unet_step=unet_step,
            unet_steps_timed=len(parts['unet']),
            decode=parts['decode'],
            estimate=estimate,
        )
        runs = min(
            spec['repeat'], int(spec['ddim_budget'] // max(estimate, 1e-9))
        )
        if runs >= 1:
            for _ in range(runs):
                t0 = time.perf_counter()
                fn()
                sync(device)
                times.append(time.perf_counter() - t0)
            result['extrapolated'] = False
        else:
            times = [estimate]
            result['extrapolated'] = True
    else:
        for _ in range(spec['repeat']):
            t0 = time.perf_counter()
            fn()
            sync(device)
            times.append(time.perf_counter() - t0)
    result['times'] = times
    result['median_s'] = statistics.median(times)
    result['images_per_s'] = batch / result['median_s']
    if device.type == 'cuda':
        result['peak_bytes'] = torch.cuda.max_memory_allocated(device)
        result['peak_kind'] = 'cuda max_memory_allocated'
    else:
        result['peak_bytes'] = peak_rss_bytes()
        result['peak_kind'] = 'process peak RSS'
    return result


def _has(root, path: str) -> bool:
    try:
        root.get_submodule(path)
        return True
    except AttributeError:
        return False


def peak_throughput(
    device_name: str, dtype_name: str, n: int, repeat: int = 5
) -> float:
    """FLOP/s of an n x n matmul in ``dtype``: the best of ``repeat`` after a
    warm-up."""
    import torch

    device = torch.device(device_name)
    dtype = torch_dtype(dtype_name)
    a = torch.randn(n, n, device=device).to(dtype)
    b = torch.randn(n, n, device=device).to(dtype)
    a @ b
    sync(device)
    best = math.inf
    for _ in range(repeat):
        t0 = time.perf_counter()
        a @ b
        sync(device)
        best = min(best, time.perf_counter() - t0)
    return 2 * n**3 / best


def child_result(spec: Dict[str, Any]) -> Dict[str, Any]:
    try:
        if spec['kind'] == 'peak':
            return dict(
                spec,
                flops_per_s=peak_throughput(
                    spec['device'], spec['dtype'], spec['n']
                ),
            )
        return measure_row(spec)
    except Exception as e:  # reported in the table; the parent exits non-zero
        return dict(
            spec, error=f'{type(e).__name__}: {e}'.splitlines()[0][:300]
        )


def child_main(spec_json: str) -> None:
    print(
        ROW_TAG + json.dumps(child_result(json.loads(spec_json))), flush=True
    )


# -----------------------------------------------------------------------------
# Parent process: the plan, the children, the table
# -----------------------------------------------------------------------------
def machine_info(device: str) -> Dict[str, str]:
    import diffusers
    import torch

    info = dict(
        python=platform.python_version(),
        torch=torch.__version__,
        diffusers=diffusers.__version__,
        platform=platform.platform(),
    )
    if device.startswith('cuda'):
        info['device'] = torch.cuda.get_device_name(torch.device(device))
        try:
            driver = (
                subprocess.run(
                    [
                        'nvidia-smi',
                        '--query-gpu=driver_version',
                        '--format=csv,noheader',
                    ],
                    capture_output=True,
                    text=True,
                    timeout=30,
                )
                .stdout.split('\n')[0]
                .strip()
            )
        except (OSError, subprocess.SubprocessError):
            driver = ''
        info['driver'] = driver or 'unknown'
        info['cuda'] = str(torch.version.cuda)
    else:
        model = platform.processor() or platform.machine()
        try:
            with open('/proc/cpuinfo') as f:
                names = [
                    line.split(':', 1)[1].strip()
                    for line in f
                    if line.startswith('model name')
                ]
            if names:
                model = names[0]
        except OSError:
            pass
        info['device'] = (
            f'{model}, {os.cpu_count()} logical CPUs, torch threads '
            f'{torch.get_num_threads()}'
        )
    return info


def plan(args) -> List[Dict[str, Any]]:
    """The rows to measure, in order."""
    common = dict(
        device=args.device,
        prior=args.prior,
        repeat=args.repeat,
        count_flops=not args.no_flops,
        fixes_off=False,
    )
    rows: List[Dict[str, Any]] = []

    def add(kind, preset, size, batch, dtype, cl=False, comp=False, **extra):
        rows.append(
            dict(
                common,
                kind=kind,
                preset=preset,
                size=size,
                batch=batch,
                dtype=dtype,
                channels_last=cl,
                compile=comp,
                steps=1,
                **extra,
            )
        )

    def add_fixes_off(kind, preset, size, batch, dtype):
        if args.fixes_off and kind in ('unirestore', 'tiny', 'train2'):
            add(kind, preset, size, batch, dtype, fixes_off=True)

    variants = [(False, False)]
    if args.channels_last:
        variants.append((True, False))
    if args.compile == 'all':
        variants.append((False, True))
    tiny_variants = (
        variants + [(False, True)] if args.compile == 'tiny' else variants
    )
    kinds = set(args.rows)
    if args.cuda_suite:
        for dtype in args.dtype:
            for size in args.sizes:
                for batch in args.batches:
                    for cl, comp in variants:
                        for kind in ('unirestore', 'bare'):
                            if kind in kinds:
                                add(
                                    kind,
                                    args.preset,
                                    size,
                                    batch,
                                    dtype,
                                    cl,
                                    comp,
                                )
        return rows
    for dtype in args.dtype:
        for size in args.sizes:
            for cl, comp in variants:
                for kind in ('unirestore', 'bare'):
                    if kind in kinds:
                        add(
                            kind,
                            args.preset,
                            size,
                            args.batch,
                            dtype,
                            cl,
                            comp,
                        )
            if 'unirestore' in kinds:
                add_fixes_off(
                    'unirestore', args.preset, size, args.batch, dtype
                )
            if 'ddim' in kinds:
                rows.append(
                    dict(
                        common,
                        kind='ddim',
                        preset=args.preset,
                        size=size,
                        batch=args.batch,
                        dtype=dtype,
                        channels_last=False,
                        compile=False,
                        steps=args.ddim_steps,
                        count_flops=False,
                        probe_steps=args.probe_steps,
                        ddim_budget=args.ddim_budget,
                    )
                )
        if 'tiny' in kinds:
            for cl, comp in tiny_variants:
                add(
                    'tiny', 'tiny', args.tiny_size, args.batch, dtype, cl, comp
                )
            add_fixes_off('tiny', 'tiny', args.tiny_size, args.batch, dtype)
        if 'train2' in kinds:
            add(
                'train2',
                args.train_preset,
                args.train_size,
                args.train_batch,
                dtype,
            )
            add_fixes_off(
                'train2',
                args.train_preset,
                args.train_size,
                args.train_batch,
                dtype,
            )
    return rows


def run_child(
    spec: Dict[str, Any], timeout: Optional[float], fork: bool = False
) -> Dict[str, Any]:
    """Measure ``spec`` in a new process: forked from this one (which has
    imported the package but run no torch op, so the child starts from the same
    resident set a fresh interpreter has after its imports, without paying for
    them again), or a fresh interpreter (``--spawn``; always on CUDA, which
    cannot be forked)."""
    if fork:
        return _run_forked(spec, timeout)
    cmd = [sys.executable, osp.abspath(__file__), '--child', json.dumps(spec)]
    try:
        proc = subprocess.run(
            cmd, capture_output=True, text=True, timeout=timeout, cwd=REPO
        )
    except subprocess.TimeoutExpired:
        return dict(spec, error=f'timed out after {timeout:.0f} s')
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith(ROW_TAG):
            return json.loads(line[len(ROW_TAG) :])
    tail = (proc.stderr.strip().splitlines() or ['no output'])[-1]
    return dict(spec, error=f'child exited {proc.returncode}: {tail[:300]}')


def _run_forked(
    spec: Dict[str, Any], timeout: Optional[float]
) -> Dict[str, Any]:
    import select
    import signal

    sys.stdout.flush()
    sys.stderr.flush()
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    # the child: measure, send one JSON line, leave without running the
    # parent's clean-up
    if pid == 0:
        code = 0
        try:
            os.close(read_fd)
            with open(os.devnull, 'w') as null:
                os.dup2(null.fileno(), 1)  # the parent owns stdout
            line = json.dumps(child_result(spec)) + '\n'
            with os.fdopen(write_fd, 'w') as f:
                f.write(line)
        # a forked child must never return into the parent's code
        except BaseException:  # noqa: B036
            code = 1
        finally:
            os._exit(code)
    os.close(write_fd)
    chunks, deadline = (
        [],
        None if timeout is None else time.monotonic() + timeout,
    )
    with os.fdopen(read_fd, 'r') as f:
        while True:
            wait = (
                None
                if deadline is None
                else max(0.0, deadline - time.monotonic())
            )
            ready, _, _ = select.select([f], [], [], wait)
            if not ready:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                return dict(spec, error=f'timed out after {timeout:.0f} s')
            chunk = f.readline()
            if not chunk:
                break
            chunks.append(chunk)
    _, status = os.waitpid(pid, 0)
    text = ''.join(chunks).strip()
    if not text:
        return dict(
            spec,
            error='child process ended without a result (wait status '
            f'{status})',
        )
    return json.loads(text)


def row_label(r: Dict[str, Any]) -> str:
    names = dict(
        unirestore='UniRestore',
        bare='bare prior (1 step)',
        ddim=f'prior, {r["steps"]} DDIM steps',
        tiny='UniRestore',
        train2='stage-2 train step',
    )
    label = names[r['kind']]
    extra = [
        v
        for v, on in (
            ('channels-last', r['channels_last']),
            ('compile', r['compile']),
            ('fixes off', r.get('fixes_off')),
        )
        if on
    ]
    return label + (f' [{", ".join(extra)}]' if extra else '')


def fmt(v: Optional[float], spec: str) -> str:
    return '-' if v is None else format(v, spec)


def gflops(v: Optional[float]) -> str:
    return (
        '-' if v is None else format(v / 1e9, ',.0f' if v >= 1e11 else '.4g')
    )


def find(rows, **match) -> Optional[Dict[str, Any]]:
    for r in rows:
        if 'error' not in r and all(r.get(k) == v for k, v in match.items()):
            return r
    return None


def derive(
    rows: List[Dict[str, Any]], peaks: Dict[str, float]
) -> List[Dict[str, Any]]:
    """FLOPs of the DDIM rows (from their size's bare row), floors, and the
    ratios, all from the measured rows."""
    for r in rows:
        if 'error' in r:
            continue
        if r['kind'] == 'ddim' and r.get('flops') is None:
            bare = find(
                rows,
                kind='bare',
                size=r['size'],
                batch=r['batch'],
                dtype=r['dtype'],
                channels_last=False,
                compile=False,
            )
            if bare and bare.get('flops_parts'):
                p = bare['flops_parts']
                r['flops'] = p['encode'] + r['steps'] * p['unet'] + p['decode']
                r['flops_note'] = (
                    f'encode + {r["steps"]} x UNet step + decode of the bare '
                    'row'
                )
            else:
                r['flops'] = None
        elif r.get('compile') and r.get('flops') is None:
            twin = find(
                rows,
                kind=r['kind'],
                size=r['size'],
                batch=r['batch'],
                dtype=r['dtype'],
                preset=r['preset'],
                channels_last=r['channels_last'],
                compile=False,
                fixes_off=r['fixes_off'],
            )
            r['flops'] = twin.get('flops') if twin else None
        r.setdefault('flops', None)
        peak = peaks.get(r['dtype'])
        r['floor_s'] = r['flops'] / peak if r['flops'] and peak else None
        r['time_over_floor'] = (
            r['median_s'] / r['floor_s'] if r['floor_s'] else None
        )

    ratios = []
    keys = sorted(
        {
            (
                r['size'],
                r['batch'],
                r['dtype'],
                r['channels_last'],
                r['compile'],
                r['fixes_off'],
            )
            for r in rows
            if r['kind'] == 'unirestore'
        }
    )
    for size, batch, dtype, cl, comp, off in keys:
        u = find(
            rows,
            kind='unirestore',
            size=size,
            batch=batch,
            dtype=dtype,
            channels_last=cl,
            compile=comp,
            fixes_off=off,
        )
        b = find(
            rows,
            kind='bare',
            size=size,
            batch=batch,
            dtype=dtype,
            channels_last=cl,
            compile=comp,
        )
        where = dict(
            size=size,
            batch=batch,
            dtype=dtype,
            channels_last=cl,
            compile=comp,
            fixes_off=off,
        )
        name = (
            'UniRestore (fixes off) / bare prior'
            if off
            else 'UniRestore / bare prior'
        )
        if u and b:
            ratios.append(
                dict(
                    where,
                    name=name,
                    value=u['median_s'] / b['median_s'],
                    target='<= 1.20',
                    ok=u['median_s'] / b['median_s'] <= 1.20,
                    flop_ratio=u['flops'] / b['flops']
                    if u['flops'] and b['flops']
                    else None,
                    numerator=u['median_s'],
                    denominator=b['median_s'],
                )
            )
        d = find(rows, kind='ddim', size=size, batch=batch, dtype=dtype)
        if u and d and not cl and not comp and not off:
            ratios.append(
                dict(
                    where,
                    name=f'{d["steps"]}-step prior / UniRestore',
                    value=d['median_s'] / u['median_s'],
                    target='>= 7.5',
                    ok=d['median_s'] / u['median_s'] >= 7.5,
                    flop_ratio=d['flops'] / u['flops']
                    if d['flops'] and u['flops']
                    else None,
                    numerator=d['median_s'],
                    denominator=u['median_s'],
                    extrapolated=bool(d.get('extrapolated')),
                )
            )
    return ratios


def render(info, args, rows, ratios, peaks, load) -> str:
    lines = [f'# UniRestore speed: {info["device"]}', '']
    versions = (
        f'python {info["python"]} | torch {info["torch"]} | diffusers '
        f'{info["diffusers"]}'
    )
    if 'driver' in info:
        versions = (
            f'driver {info["driver"]} | CUDA {info["cuda"]} | ' + versions
        )
    lines += [
        f'- machine: {info["device"]} | {info["platform"]}',
        f'- versions: {versions}',
        f'- command: `{args.command}`',
        f'- prior weights: {args.prior or "random (speed and memory only)"}; '
        f'{args.repeat} timed run(s) per row after one untimed '
        f'(flop-counted) run; median reported; {args.isolation} (its peak '
        'memory is its own)',
        f'- load average (1 min) at start / end: {load[0]:.2f} / '
        f'{load[1]:.2f}',
    ]
    peak_txt = ', '.join(
        f'{k} {v / 1e9:.1f} GFLOP/s' for k, v in peaks.items()
    )
    lines += [
        f'- peak throughput (best {args.peak_n}x{args.peak_n} matmul, same '
        f'run): {peak_txt}',
        '',
    ]
    lines += [
        '| row | preset | size | batch | dtype | median s | images/s | peak '
        'memory GiB | GFLOPs | floor s | time / floor |',
        '|---|---|---|---|---|---|---|---|---|---|---|',
    ]
    for r in rows:
        if 'error' in r:
            lines.append(
                f'| {row_label(r)} | {r["preset"]} | {r["size"]} | '
                f'{r["batch"]} | {r["dtype"]} | FAILED: {r["error"]} | - | - '
                '| - | - | - |'
            )
            continue
        median = fmt(r['median_s'], '.3f') + (
            ' (extrapolated)' if r.get('extrapolated') else ''
        )
        lines.append(
            f'| {row_label(r)} | {r["preset"]} | {r["size"]} | {r["batch"]} '
            f'| {r["dtype"]} | {median} | {fmt(r["images_per_s"], ".3g")} | '
            f'{r["peak_bytes"] / 2**30:.2f} | {gflops(r["flops"])} | '
            f'{fmt(r["floor_s"], ".3g")} | {fmt(r["time_over_floor"], ".2f")} '
            '|'
        )
    lines.append('')
    notes = []
    for r in rows:
        if r.get('kind') == 'ddim' and 'probe' in r:
            p = r['probe']
            how = (
                'extrapolated (not run in full): '
                if r['extrapolated']
                else f'run in full {len(r["times"])} time(s); estimate '
                'before the run: '
            )
            notes.append(
                f'- {row_label(r)}, {r["size"]} px, {r["dtype"]}: '
                f'{how}encode {p["encode"]:.2f} s + {r["steps"]} x UNet step '
                f'{p["unet_step"]:.3f} s (median of {p["unet_steps_timed"]} '
                f'timed steps) + decode {p["decode"]:.2f} s = '
                f'{p["estimate"]:.2f} s'
                + (
                    f'; FLOPs: {r["flops_note"]}'
                    if r.get('flops_note')
                    else ''
                )
            )
        if r.get('kind') == 'train2' and 'trainable_params' in r:
            notes.append(
                f'- {row_label(r)} ({r["preset"]}, {r["size"]} px, batch '
                f'{r["batch"]}): encode + 1-step sample + TFA decode + 10*L1 '
                f'+ backward + AdamW over {r["trainable_params"]:,} '
                'trainable parameters (TFAs and the ir prompt)'
            )
    if notes:
        lines += ['Notes:'] + notes + ['']
    if ratios:
        lines += [
            '| ratio | size | batch | dtype | variant | measured | FLOP '
            'ratio | target | met |',
            '|---|---|---|---|---|---|---|---|---|',
        ]
        for q in ratios:
            variant = (
                ', '.join(
                    v
                    for v, on in (
                        ('channels-last', q['channels_last']),
                        ('compile', q['compile']),
                        ('fixes off', q['fixes_off']),
                    )
                    if on
                )
                or 'eager'
            )
            value = f'{q["value"]:.3f}' + (
                ' (extrapolated)' if q.get('extrapolated') else ''
            )
            lines.append(
                f'| {q["name"]} | {q["size"]} | {q["batch"]} | {q["dtype"]} '
                f'| {variant} | {value} | {fmt(q["flop_ratio"], ".3f")} | '
                f'{q["target"]} | {"yes" if q["ok"] else "no"} |'
            )
        lines.append('')
    parts_rows = [
        r
        for r in rows
        if r.get('flops_parts')
        and r['kind'] in ('unirestore', 'bare', 'tiny')
        and not r['channels_last']
    ]
    if parts_rows:
        names = list(PARTS)
        lines += [
            'FLOPs by module (GFLOPs; "other": outside these modules, e.g. '
            'the scheduler and casts):',
            '',
            '| GFLOPs of | size | batch | dtype | '
            + ' | '.join(names)
            + ' | other | total |',
            '|---|---|---|---|' + '---|' * (len(names) + 2),
        ]
        for r in parts_rows:
            p = r['flops_parts']
            other = r['flops'] - sum(p.values())
            cells = ' | '.join(gflops(p.get(n)) for n in names)
            lines.append(
                f'| {row_label(r)} ({r["preset"]}) | {r["size"]} | '
                f'{r["batch"]} | {r["dtype"]} | {cells} | {gflops(other)} | '
                f'{gflops(r["flops"])} |'
            )
        lines.append('')
    return '\n'.join(lines)


def parse_args(argv):
    p = Parser(
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        '--device',
        default=None,
        help='cpu, cuda or cuda:N (default: cuda when available)',
    )
    p.add_argument(
        '--dtype',
        nargs='+',
        default=None,
        choices=DTYPES,
        help='default fp32 (the --cuda-suite: fp32 bf16 fp16)',
    )
    p.add_argument(
        '--sizes',
        nargs='+',
        type=int,
        default=None,
        help='square sizes of the sd-turbo rows (default 512; --cuda-suite: '
        '512 1024)',
    )
    p.add_argument('--batch', type=int, default=1)
    p.add_argument(
        '--batches',
        nargs='+',
        type=int,
        default=None,
        help='--cuda-suite batches (default 1 8)',
    )
    p.add_argument(
        '--repeat',
        type=int,
        default=3,
        help='timed runs per row (median reported)',
    )
    p.add_argument(
        '--preset', default='sd-turbo', choices=['sd-turbo', 'tiny']
    )
    p.add_argument(
        '--prior',
        default=None,
        help='local diffusers folder of the prior (default: random weights)',
    )
    p.add_argument(
        '--rows',
        nargs='+',
        default=list(KINDS),
        choices=KINDS,
        help='which rows to measure',
    )
    p.add_argument('--tiny-size', type=int, default=256)
    p.add_argument(
        '--train-preset', default='tiny', choices=['tiny', 'sd-turbo']
    )
    p.add_argument(
        '--train-size',
        type=int,
        default=None,
        help='default: 256 (tiny) or 512 (sd-turbo)',
    )
    p.add_argument(
        '--train-batch', type=int, default=None, help='default: --batch'
    )
    p.add_argument('--ddim-steps', type=int, default=50)
    p.add_argument(
        '--ddim-budget',
        type=float,
        default=480.0,
        help='seconds the full DDIM runs may take; beyond it the row is '
        'extrapolated (printed so)',
    )
    p.add_argument(
        '--probe-steps',
        type=int,
        default=2,
        help='UNet steps timed for the DDIM estimate',
    )
    p.add_argument(
        '--channels-last',
        action='store_true',
        help='add channels-last rows (the plain rows stay)',
    )
    p.add_argument(
        '--compile',
        nargs='?',
        const='all',
        default=None,
        choices=['all', 'tiny'],
        help='add torch.compile rows (the plain rows stay): for every row, '
        'or for the tiny row only',
    )
    p.add_argument(
        '--fixes-off',
        action='store_true',
        help="add UniRestore rows without issue 11's speed fixes "
        "(before/after in one run)",
    )
    p.add_argument(
        '--cuda-suite',
        action='store_true',
        help='the GPU grid: --dtype x --sizes x --batches, UniRestore and '
        'bare prior rows',
    )
    p.add_argument(
        '--quick', action='store_true', help='tiny preset, tiny sizes (tests)'
    )
    p.add_argument(
        '--no-flops',
        action='store_true',
        help='skip the flop-counted first run (plain warm-up)',
    )
    p.add_argument(
        '--peak-n',
        type=int,
        default=None,
        help='matmul size of the peak measurement',
    )
    p.add_argument(
        '--timeout',
        type=float,
        default=None,
        help='seconds per row process (default: none)',
    )
    p.add_argument(
        '--out',
        nargs='+',
        default=[],
        help='write the table to .md and/or .json files (atomically)',
    )
    p.add_argument(
        '--spawn',
        action='store_true',
        help='measure each row in a fresh interpreter instead of a fork of '
        'this one (CUDA always is)',
    )
    p.add_argument('--child', default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child is not None:
        return args
    for name in (
        'batch',
        'repeat',
        'tiny_size',
        'train_batch',
        'train_size',
        'ddim_steps',
        'probe_steps',
        'peak_n',
    ):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise UserError(
                f'--{name.replace("_", "-")} must be at least 1; got {value}'
            )
    for name in ('sizes', 'batches'):
        bad = [v for v in getattr(args, name) or [] if v < 1]
        if bad:
            raise UserError(f'--{name} must be positive; got {bad}')
    if args.ddim_budget < 0:
        raise UserError(
            f'--ddim-budget must be >= 0 seconds; got {args.ddim_budget}'
        )
    if args.prior is not None:
        missing = [
            s
            for s in ('vae', 'unet')
            if not osp.isdir(osp.join(args.prior, s))
        ]
        if not osp.isdir(args.prior) or missing:
            raise UserError(
                f'--prior {args.prior!r} is not a diffusers folder with vae/ '
                'and unet/ sub-folders'
            )
        args.prior = osp.abspath(args.prior)
    for path in args.out:
        if not path.endswith(('.md', '.json')):
            raise UserError(f'--out {path!r}: give a .md or .json file')
        folder = osp.dirname(osp.abspath(path))
        if not osp.isdir(folder):
            raise UserError(
                f'--out {path!r}: the folder {folder!r} does not exist'
            )

    import torch

    if args.device is None:
        args.device = 'cuda' if torch.cuda.is_available() else 'cpu'
    try:
        dev = torch.device(args.device)
    except RuntimeError:
        raise UserError(
            f'--device {args.device!r} is not a torch device (cpu, cuda, '
            'cuda:N)'
        )
    if dev.type not in ('cpu', 'cuda'):
        raise UserError(
            f'--device {args.device!r}: only cpu and cuda are supported'
        )
    if dev.type == 'cuda' and not torch.cuda.is_available():
        raise UserError(
            f'--device {args.device}: CUDA is not available on this machine '
            f'(torch {torch.__version__})'
        )
    if args.quick:
        args.preset = 'tiny'
        args.sizes = args.sizes or [64]
        args.tiny_size = 32 if args.tiny_size == 256 else args.tiny_size
        args.train_size = args.train_size or 32
        args.ddim_steps = 4 if args.ddim_steps == 50 else args.ddim_steps
        args.batches = args.batches or [1, 2]
        args.peak_n = args.peak_n or 256
    if args.cuda_suite:
        args.dtype = args.dtype or list(DTYPES)
        args.sizes = args.sizes or [512, 1024]
        args.batches = args.batches or [1, 8]
    args.dtype = args.dtype or ['fp32']
    args.sizes = args.sizes or [512]
    args.batches = args.batches or [args.batch]
    args.train_size = args.train_size or (
        256 if args.train_preset == 'tiny' else 512
    )
    args.train_batch = args.train_batch or args.batch
    args.peak_n = args.peak_n or (8192 if dev.type == 'cuda' else 2048)
    return args


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        args = parse_args(argv)
    except UserError as e:
        print(f'benchmark_speed.py: error: {e}', file=sys.stderr)
        return 2
    if args.child is not None:
        child_main(args.child)
        return 0
    args.command = (
        'python tools/analysis_tools/benchmark_speed.py ' + ' '.join(argv)
    )
    fork = args.device == 'cpu' and not args.spawn and hasattr(os, 'fork')
    # everything the rows use, imported once here so that forked rows start
    # with it (no torch op runs here)
    import diffusers  # noqa: F401
    import torch.utils.flop_counter  # noqa: F401

    import unirestore_mm  # noqa: F401
    from unirestore_mm.models.restorer_model import (
        UniRestoreModel,  # noqa: F401
    )
    from unirestore_mm.utils.fileio import atomic_write_text

    args.isolation = (
        'a forked process per row' if fork else 'a fresh interpreter per row'
    )

    load_start = os.getloadavg()[0]
    info = machine_info(args.device)
    print(
        f'# {info["device"]} | '
        + ' | '.join(
            f'{k} {info[k]}'
            for k in ('driver', 'cuda', 'torch', 'diffusers', 'python')
            if k in info
        ),
        flush=True,
    )
    peaks = {}
    for dtype in args.dtype:
        r = run_child(
            dict(kind='peak', device=args.device, dtype=dtype, n=args.peak_n),
            args.timeout,
            fork,
        )
        if 'error' in r:
            print(f'peak {dtype}: FAILED: {r["error"]}', flush=True)
        else:
            peaks[dtype] = r['flops_per_s']
            print(
                f'peak {dtype}: {peaks[dtype] / 1e9:.1f} GFLOP/s '
                f'({args.peak_n}^3 matmul)',
                flush=True,
            )
    rows = []
    for spec in plan(args):
        t0 = time.perf_counter()
        r = run_child(spec, args.timeout, fork)
        rows.append(r)
        what = (
            f'{row_label(spec)} {spec["preset"]} {spec["size"]}px '
            f'b{spec["batch"]} {spec["dtype"]}'
        )
        if 'error' in r:
            print(f'{what}: FAILED: {r["error"]}', flush=True)
        else:
            print(
                f'{what}: median {r["median_s"]:.3f} s, peak '
                f'{r["peak_bytes"] / 2**30:.2f} GiB (process '
                f'{time.perf_counter() - t0:.0f} s)',
                flush=True,
            )
    ratios = derive(rows, peaks)
    text = render(
        info, args, rows, ratios, peaks, (load_start, os.getloadavg()[0])
    )
    print()
    print(text)
    for path in args.out:
        if path.endswith('.json'):
            payload = dict(
                machine=info,
                command=args.command,
                peaks=peaks,
                rows=rows,
                ratios=ratios,
                load=dict(start=load_start, end=os.getloadavg()[0]),
            )
            atomic_write_text(json.dumps(payload, indent=1) + '\n', path)
        else:
            atomic_write_text(text + '\n', path)
    return (
        1
        if any('error' in r for r in rows) or len(peaks) < len(args.dtype)
        else 0
    )


if __name__ == '__main__':
    sys.exit(main())
