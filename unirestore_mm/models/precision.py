"""Reduced-precision restoration: dtype names, the ``'auto'`` policy and the
modules kept in float32.

``UniRestore(dtype='bf16')``, ``model.to(torch.bfloat16)`` or
``model.set_dtype('fp16')`` cast the restorer's weights, as ``torch_dtype=``
does for a diffusers pipeline.  Whatever the cast, a few places stay in float32
(the *fp32 islands*); :meth:`UniRestore.restore` casts activations at their
borders:

* arithmetic, not modules: the DDPM/DDIM scheduler (``add_noise`` and
  ``ddim.step`` on float32 latents, with float32 ``alphas_cumprod``), the
  latent distribution (mean/log-variance, ``exp``, the sampling noise) and the
  latent scaling by ``scaling_factor`` (0.18215), the empty-prompt embedding
  buffer (kept in float32, cast where the UNet reads it, so a float32 round
  trip finds it intact), and the final ``(x + 1) / 2``, crop, resize back and
  clamp;
* modules, :data:`FP32_MODULES`: the VAE decoder's output head
  (``conv_norm_out`` + ``conv_out``).

Why these, measured (``tools/analysis_tools/precision_islands.py``, random
weights, tables in ``docs/precision.md``): error of the restored image in [0,
1] against the float32 restoration, bf16, with all islands / without one of
them (tiny preset at 64 px; sd-turbo architecture at 128 px):

* all islands: max 6.95e-3, mean 1.18e-3 (tiny); max 1.04e-2, mean 1.48e-3
  (sd-turbo);
* without the scheduler island: max 9.37e-3 / 1.26e-2 (``add_noise`` then casts
  ``alphas_cumprod`` to bf16:
  ``sqrt(alpha_999)`` = 0.068 keeps 3 significant digits);
* without the latent island: max 9.35e-3 / 1.19e-2;
* without the decoder head: mean 1.42e-3 / 1.72e-3 (its rounding, 2^-8
  relative, lands on the pixels);
* without any island: max 1.03e-2 / 1.17e-2, mean 1.55e-3 / 1.80e-3.

The islands cost little: the arithmetic ones act on latent-sized tensors; the
head is one GroupNorm and one 3x3 conv at full resolution.  They also keep the
sampling noise bit for bit the float32 one, so a reduced-precision result
differs from the float32 one by rounding only, and a model cast to bf16 and
back finds its null embedding intact.  Not islands, measured: every GroupNorm
in float32 (no gain: PyTorch's kernels already accumulate the statistics in
float32 for bf16/fp16 inputs), the whole VAE decoder in float32 (mean error -10
% (tiny) to -19 % (sd-turbo), for the decoder's full cost: most of the rounding
is in the TFAs and UNet), the UNet's last conv or the VAE's ``quant_conv`` (no
change).  fp16 errors are about 7x smaller than bf16's (10 vs 7 mantissa bits):
max 1.11e-3, mean 1.62e-4 on the tiny preset, no overflow with random weights.
Real SD-Turbo weights are not available here, so fp16 overflow of the real VAE
decoder (why diffusers' ``force_upcast`` exists for the SD-XL VAE) is not
measured; ``'auto'`` picks bfloat16 (float32's range) on GPUs that support it.

``'auto'``, measured on the CPU here (an AMD EPYC with AVX512-BF16, no AMX,
torch 2.14.1; ``docs/precision.md``): bfloat16 for an SD-class restorer (a UNet
320 channels wide or more, the sd-turbo preset: 5.0 s against 9.7 s in float32
at 128 px, max error 1.0e-2) on a CPU whose oneDNN has native bfloat16; float32
otherwise, for the small presets (the tiny preset: 46 ms in float32 against 97
ms in bf16, where oneDNN's per-call setup outweighs the arithmetic of small
convs that float32 runs on PyTorch's own kernels) and on CPUs without native
bfloat16 (float16 has no fast CPU convolution here: about 20x slower).  On
CUDA: bfloat16 where ``torch.cuda.is_bf16_supported()``, else float16; the CUDA
choice is the usual one for SD-class models and is **not measured** in this
repository.

Memory layout (``memory_format``): ``UniRestore(memory_format=...)``,
``model.set_memory_format(...)`` or ``model.to(memory_format=...)`` store the
4-D weights (convolutions) channels-last; every convolution then runs
channels-last (PyTorch follows the weight's layout) while :meth:`restore`
still takes any input layout and returns contiguous NCHW images.  ``'auto'``
is channels-last on the CPU, measured faster at every size and precision tried
on this machine (``tools/analysis_tools/profile_precision.py
--memory-format contiguous channels_last``, interleaved, ``docs/speed.md``):
the sd-turbo architecture 1.14x at 512 px in float32 (1.19x in a
``benchmark_speed.py --channels-last`` run) and 1.09x at 256 px in bf16, the
tiny preset 1.14x at 256 px and 1.13x at 64 px (float32 and bf16 alike); the
results differ by rounding only (max 1.1e-5 at 512 px in float32).  On CUDA
``'auto'`` keeps the contiguous layout: channels-last with bf16/fp16 is the
usual advice there, but it is **not measured** in this repository
(``benchmark_speed.py --cuda-suite --channels-last`` measures it).
"""

from typing import Iterable, Optional, Union

import torch
from torch import nn

DTYPES = {
    'fp32': torch.float32,
    'float32': torch.float32,
    'float': torch.float32,
    'bf16': torch.bfloat16,
    'bfloat16': torch.bfloat16,
    'fp16': torch.float16,
    'float16': torch.float16,
    'half': torch.float16,
}
SHORT_NAMES = {
    torch.float32: 'fp32',
    torch.bfloat16: 'bf16',
    torch.float16: 'fp16',
}
REDUCED = (torch.float16, torch.bfloat16)
# Module paths (relative to UniRestore) whose weights stay float32 when the
# restorer is cast to bf16/fp16.
FP32_MODULES = (
    'prior.vae.decoder.conv_norm_out',
    'prior.vae.decoder.conv_out',
)

# The arithmetic fp32 islands, by name; switching one off
# (tools/analysis_tools/precision_islands.py, the tests) runs that arithmetic
# in the model's precision instead, to measure what the island is worth.
FP32_ARITHMETIC = {'scheduler': True, 'latent': True, 'geometry': True}

DtypeSpec = Union[str, torch.dtype, None]


def island_dtype(name: str, dtype: torch.dtype) -> torch.dtype:
    """The dtype the arithmetic island ``name`` runs in for a model computing
    in ``dtype``: float32 for bf16/fp16 (while the island is on), ``dtype``
    itself otherwise (float32 and float64 models are untouched)."""
    return (
        torch.float32 if dtype in REDUCED and FP32_ARITHMETIC[name] else dtype
    )


# The narrowest UNet (its first block's channels) for which bfloat16 was
# measured faster than float32 on a CPU with native bfloat16: the sd-turbo
# architecture (320); the tiny preset (32) was 2x slower in bfloat16.
CPU_BF16_MIN_UNET_WIDTH = 320


def cpu_has_native_bf16() -> bool:
    """Whether oneDNN reports native bfloat16 on this CPU (AVX512-BF16 or
    AMX)."""
    try:
        return bool(
            torch.backends.mkldnn.is_available()
            and torch.ops.mkldnn._is_mkldnn_bf16_supported()
        )
    # a torch without the query: assume not
    except (AttributeError, RuntimeError):
        return False


def _unet_width(model) -> Optional[int]:
    try:
        return int(model.prior.unet.config.block_out_channels[0])
    except (AttributeError, IndexError, TypeError):
        return None


def auto_dtype(
    device: Union[str, torch.device, None] = None,
    model: Optional[nn.Module] = None,
) -> torch.dtype:
    """The default precision of restoration on ``device`` for ``model`` (see
    the module docstring): on the CPU without a model, float32."""
    device = torch.device(device if device is not None else 'cpu')
    if device.type == 'cuda' and torch.cuda.is_available():
        index = (
            device.index
            if device.index is not None
            else torch.cuda.current_device()
        )
        with torch.cuda.device(index):
            return (
                torch.bfloat16
                if torch.cuda.is_bf16_supported()
                else torch.float16
            )
    if device.type == 'cpu' and model is not None:
        width = _unet_width(model)
        if (
            width is not None
            and width >= CPU_BF16_MIN_UNET_WIDTH
            and cpu_has_native_bf16()
        ):
            return torch.bfloat16
    return torch.float32


def resolve_dtype(
    dtype: DtypeSpec,
    device: Union[str, torch.device, None] = None,
    name: str = 'dtype',
    model: Optional[nn.Module] = None,
) -> torch.dtype:
    """``'auto'`` / ``None`` / a name (``'fp32'``, ``'bf16'``, ``'fp16'``,
    ``'float16'``, ...) / a torch dtype -> the torch dtype; anything else
    raises ``ValueError`` naming the argument ``name``."""
    if dtype is None or (isinstance(dtype, str) and dtype.lower() == 'auto'):
        return auto_dtype(device, model)
    if isinstance(dtype, torch.dtype):
        if dtype not in SHORT_NAMES:
            raise ValueError(
                f'{name}={dtype}: restoration runs in float32, bfloat16 or '
                'float16'
            )
        return dtype
    if isinstance(dtype, str):
        key = dtype.lower().replace('torch.', '')
        if key in DTYPES:
            return DTYPES[key]
    raise ValueError(
        f"{name}={dtype!r}: expected 'auto', 'fp32', 'bf16', 'fp16' (or "
        "float32, bfloat16, float16, "
        'a torch dtype)'
    )


MEMORY_FORMATS = {
    'channels_last': torch.channels_last,
    'contiguous': torch.contiguous_format,
}
MemoryFormatSpec = Union[str, torch.memory_format, None]


def auto_memory_format(
    device: Union[str, torch.device, None] = None,
) -> torch.memory_format:
    """The layout of the restorer's weights on ``device`` (see the module
    docstring): channels-last on the CPU (measured), contiguous elsewhere."""
    device = torch.device(device if device is not None else 'cpu')
    return (
        torch.channels_last
        if device.type == 'cpu'
        else torch.contiguous_format
    )


def resolve_memory_format(
    memory_format: MemoryFormatSpec,
    device: Union[str, torch.device, None] = None,
    name: str = 'memory_format',
) -> torch.memory_format:
    """``'auto'`` / ``None`` / ``'channels_last'`` / ``'contiguous'`` / a
    torch memory format -> the torch memory format; anything else raises
    ``ValueError`` naming the argument ``name``."""
    if memory_format is None or memory_format == 'auto':
        return auto_memory_format(device)
    if isinstance(memory_format, torch.memory_format):
        if memory_format in MEMORY_FORMATS.values():
            return memory_format
    elif isinstance(memory_format, str):
        key = memory_format.lower().replace('torch.', '')
        key = {'contiguous_format': 'contiguous'}.get(key, key)
        if key in MEMORY_FORMATS:
            return MEMORY_FORMATS[key]
    raise ValueError(
        f"{name}={memory_format!r}: expected 'auto', 'channels_last' or "
        "'contiguous'"
    )


def weights_memory_format(model: nn.Module) -> torch.memory_format:
    """The layout of ``model``'s first 4-D weight whose layout shows (a 1x1
    kernel is both); contiguous when it has none."""
    for p in model.parameters():
        if p.dim() != 4:
            continue
        nchw = p.is_contiguous()
        nhwc = p.is_contiguous(memory_format=torch.channels_last)
        if nchw != nhwc:
            return torch.channels_last if nhwc else torch.contiguous_format
    return torch.contiguous_format


def memory_format_name(memory_format: torch.memory_format) -> str:
    return (
        'channels_last'
        if memory_format == torch.channels_last
        else 'contiguous'
    )


def dtype_name(dtype: torch.dtype) -> str:
    return SHORT_NAMES.get(dtype, str(dtype).replace('torch.', ''))


def module_dtype(
    module: nn.Module, default: torch.dtype = torch.float32
) -> torch.dtype:
    """The dtype of a module's first floating-point parameter (``default`` when
    it has none)."""
    for p in module.parameters():
        if p.is_floating_point():
            return p.dtype
    return default


def run_in_own_dtype(module: nn.Module, x: torch.Tensor, *args, **kwargs):
    """``module(x)`` with ``x`` cast to the module's weight dtype (the border
    of an fp32 island)."""
    return module(x.to(module_dtype(module, x.dtype)), *args, **kwargs)


def keep_fp32(
    root: nn.Module, paths: Iterable[str], buffers: Iterable[str] = ()
) -> None:
    """Cast the modules at ``paths`` (and the buffers at ``buffers``) of
    ``root`` back to float32 when the rest of ``root`` is in a reduced
    precision; float64 and float32 models are left alone."""
    for path in paths:
        module = root.get_submodule(path)
        for p in module.parameters(recurse=True):
            if p.dtype in REDUCED:
                p.data = p.data.float()
        for mod in module.modules():
            for key, b in mod._buffers.items():
                if b is not None and b.dtype in REDUCED:
                    mod._buffers[key] = b.float()
    for path in buffers:
        owner, _, key = path.rpartition('.')
        mod = root.get_submodule(owner) if owner else root
        b = mod._buffers.get(key)
        if b is not None and b.dtype in REDUCED:
            mod._buffers[key] = b.float()


def compute_dtype(
    model: nn.Module, fallback: Optional[torch.dtype] = None
) -> torch.dtype:
    """The precision a restorer computes in: the dtype of its CFRM weights."""
    return module_dtype(
        getattr(model, 'cfrm', model), fallback or torch.float32
    )
