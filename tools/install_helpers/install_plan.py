"""The decisions ``tools/install.sh`` makes, as plain functions that tests call
with made-up inputs.

    python tools/install_helpers/install_plan.py torch "torch==2.14.1 torchvision==0.29.1"
    python tools/install_helpers/install_plan.py mmcv

Each command probes the active Python (torch, torchvision, nvcc) and prints
shell assignments (``NAME='value'``) for ``eval``.  Nothing here imports torch
at module level: on a fresh machine there is none yet.
"""

import os
import os.path as osp
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from typing import List, Mapping, Optional, Sequence, Tuple

# Supported torch: >= 2.6 because weights_only=True became torch.load's default
# in 2.6 (MMEngine's loaders rely on it here to refuse pickled code;
# requirements/runtime.txt); < 3 because a major release may break the VAE/UNet
# internals the package drives.  The tests ran with TORCH_TESTED.
TORCH_SUPPORTED = ((2, 6), (3, 0))
TORCH_TESTED = '2.14.1'
# torchvision 0.(N + 15) is the release for torch 2.N (0.21 <-> 2.6, ..., 0.29
# <-> 2.14).
TORCHVISION_MINOR_OFFSET = 15


def parse_version(text: str) -> Tuple[int, int, int]:
    """``'2.14.1+cu130'`` -> ``(2, 14, 1)``; ``'2.6'`` -> ``(2, 6, 0)``;
    ``ValueError`` names ``text`` otherwise."""
    m = re.match(r'^\s*(\d+)\.(\d+)(?:\.(\d+))?', str(text))
    if m is None:
        raise ValueError(
            f'version {text!r}: expected MAJOR.MINOR[.PATCH] (like '
            '2.14.1+cu130)'
        )
    return int(m.group(1)), int(m.group(2)), int(m.group(3) or 0)


def supported_torch_text() -> str:
    (lo_major, lo_minor), (hi_major, hi_minor) = TORCH_SUPPORTED
    hi = f'{hi_major}' if hi_minor == 0 else f'{hi_major}.{hi_minor}'
    return f'>={lo_major}.{lo_minor},<{hi}'


def is_supported_torch(version: str) -> bool:
    major, minor, _ = parse_version(version)
    return TORCH_SUPPORTED[0] <= (major, minor) < TORCH_SUPPORTED[1]


def torchvision_minor_for(torch_version: str) -> Tuple[int, int]:
    """The torchvision (major, minor) released with this torch 2.x, e.g.
    ``'2.14.1'`` -> ``(0, 29)``."""
    major, minor, _ = parse_version(torch_version)
    if major != 2:
        raise ValueError(
            f'torch {torch_version}: the torchvision pairing is known for '
            'torch 2.x only'
        )
    return 0, minor + TORCHVISION_MINOR_OFFSET


@dataclass
class TorchPlan:
    """``action`` is ``'keep'`` or ``'install'``; ``pip_args`` what to
    pip-install (may be empty)."""

    action: str
    message: str
    pip_args: List[str] = field(default_factory=list)


def plan_torch(
    installed_torch: Optional[str],
    installed_torchvision: Optional[str],
    requested: str,
    reinstall: bool = False,
    torch_problem: str = '',
) -> TorchPlan:
    """Keep a working, supported torch; install ``requested`` (a pip spec like
    ``'torch==2.14.1 torchvision==0.29.1'``) otherwise.

    Args:
        installed_torch: ``torch.__version__`` of the active Python, or None
            when ``import torch`` fails.
        installed_torchvision: ``torchvision.__version__``, or None when it is
            missing or does not import.
        requested: what to install when the installed torch cannot be kept.
        reinstall: install ``requested`` whatever is installed
            (``UNIRESTORE_REINSTALL_TORCH=1``).
        torch_problem: why ``import torch`` failed, for the message.

    A kept torch whose torchvision is missing or of another release gets the
    matching torchvision (``torchvision==0.M.*`` beside ``torch==<installed>``,
    so pip leaves the torch alone).
    """
    if not requested.split():
        raise ValueError(
            'requested torch spec is empty; expected e.g. "torch==2.14.1 '
            'torchvision==0.29.1"'
        )
    supported = supported_torch_text()
    install = TorchPlan('install', '', requested.split())
    if reinstall:
        install.message = (
            'UNIRESTORE_REINSTALL_TORCH=1: installing '
            f'{requested} (supported: {supported})'
        )
        return install
    if installed_torch is None:
        why = f' ({torch_problem})' if torch_problem else ''
        install.message = (
            f'no working torch{why}; installing {requested} '
            f'(supported: {supported})'
        )
        return install
    try:
        ok = is_supported_torch(installed_torch)
    except ValueError:
        install.message = (
            f'torch {installed_torch!r} has no version number; '
            f'installing {requested}'
        )
        return install
    major, minor, patch = parse_version(installed_torch)
    if not ok:
        install.message = (
            f'torch {installed_torch} is outside the supported range '
            f'{supported}; installing {requested}'
        )
        return install
    public = installed_torch.split('+')[0]
    keep = TorchPlan(
        'keep',
        f'keeping torch {major}.{minor} ({installed_torch}; supported: '
        f'{supported}, tested with {TORCH_TESTED})',
    )
    want = torchvision_minor_for(installed_torch)
    have = None
    if installed_torchvision is not None:
        try:
            have = parse_version(installed_torchvision)[:2]
        except ValueError:
            have = None
    if have != want:
        spec = f'torchvision=={want[0]}.{want[1]}.*'
        found = (
            'none' if installed_torchvision is None else installed_torchvision
        )
        keep.pip_args = [f'torch=={public}', spec]
        keep.message += (
            f'; torchvision {found} does not match it: installing {spec}'
        )
    return keep


def required_cxx_std(torch_include_dir: str) -> Optional[str]:
    """The C++ standard torch's headers demand (``'c++20'`` for torch 2.14),
    from ATen.h's ``#error`` line.

    None when the headers are missing or name no standard (then mmcv's own
    flags are left alone).
    """
    for rel in (
        ('ATen', 'ATen.h'),
        ('torch', 'csrc', 'api', 'include', 'torch', 'all.h'),
    ):
        path = osp.join(torch_include_dir, *rel)
        if not osp.isfile(path):
            continue
        with open(path, encoding='utf-8', errors='replace') as f:
            m = re.search(r'#\s*error\s+C\+\+(\d+) or later', f.read())
        if m:
            return f'c++{m.group(1)}'
    return None


def _has_cuda_headers(home: Optional[str]) -> bool:
    return bool(home) and osp.isfile(
        osp.join(home, 'include', 'cuda_runtime.h')
    )


def find_cuda_home(
    nvcc: Optional[str],
    env: Mapping[str, str],
    nvcc_top: Optional[str] = None,
    fallbacks: Sequence[str] = ('/usr/local/cuda',),
) -> Optional[str]:
    """The CUDA toolkit folder (with ``include/cuda_runtime.h``) for building
    mmcv's CUDA ops.

    In order: ``$CUDA_HOME``/``$CUDA_PATH``; the folder above the real ``nvcc``
    (symlinks resolved); ``nvcc_top`` (what ``nvcc --dryrun`` reports as TOP,
    for an ``nvcc`` that is a wrapper script such as ``/usr/local/bin/nvcc``,
    where torch's own guess, ``/usr/local``, has no CUDA headers); then
    ``fallbacks``.
    """
    candidates = [env.get('CUDA_HOME'), env.get('CUDA_PATH')]
    if nvcc:
        candidates.append(osp.dirname(osp.dirname(osp.realpath(nvcc))))
    if nvcc_top:
        candidates.append(
            osp.normpath(osp.join(nvcc_top, '..'))
            if osp.basename(osp.normpath(nvcc_top)) == 'bin'
            else osp.normpath(nvcc_top)
        )
    candidates += list(fallbacks)
    for home in candidates:
        if _has_cuda_headers(home):
            return osp.normpath(home)
    return None


def cuda_library_include_dirs(
    cuda_home: Optional[str], site_dirs: Sequence[str]
) -> List[str]:
    """Header folders of the pip ``nvidia-*`` packages, for a toolkit without
    the CUDA math libraries' headers.

    torch's CUDA headers include ``cusparse.h`` and ``cublas_v2.h``; an
    nvcc-only toolkit lacks them, while torch's CUDA wheels bring them as pip
    packages (``nvidia/cu13/include``, or ``nvidia/<library>/include`` for CUDA
    12).  Empty when ``<cuda_home>/include/cusparse.h`` exists.  install.sh
    puts these on CPLUS_INCLUDE_PATH, searched after the toolkit's own folders,
    so they only fill what the toolkit lacks.
    """
    if not cuda_home or osp.isfile(
        osp.join(cuda_home, 'include', 'cusparse.h')
    ):
        return []
    found = []
    for site in site_dirs:
        root = osp.join(site, 'nvidia')
        if not osp.isdir(root):
            continue
        for name in sorted(os.listdir(root)):
            inc = osp.join(root, name, 'include')
            if osp.isdir(inc) and inc not in found:
                found.append(inc)
        if any(osp.isfile(osp.join(d, 'cusparse.h')) for d in found):
            return found
        found = []
    return []


@dataclass
class MmcvPlan:
    """How to build mmcv's ops: ``cuda`` (CUDA ops or CPU only), ``message``,
    and ``error`` (stop the install)."""

    cuda: bool
    message: str
    error: bool = False


def plan_mmcv_ops(
    torch_cuda: Optional[str],
    cuda_available: bool,
    nvcc: Optional[str],
    nvcc_release: Optional[str],
    cuda_home: Optional[str],
    mode: str = 'auto',
) -> MmcvPlan:
    """Whether to build mmcv's CUDA ops.

    Args:
        torch_cuda: ``torch.version.cuda`` (None for a CPU build of torch).
        cuda_available: ``torch.cuda.is_available()``.
        nvcc: path of nvcc, or None.
        nvcc_release: ``'13.0'`` from ``nvcc --version``, or None.
        cuda_home: :func:`find_cuda_home`'s answer.
        mode: ``UNIRESTORE_MMCV_CUDA``: ``auto`` (CUDA ops when torch sees a
            GPU and a matching nvcc is there), ``1`` (CUDA ops even without a
            GPU, e.g. on a build node; an unmet requirement is an error), ``0``
            (CPU ops only).
    """
    if mode not in ('auto', '0', '1'):
        return MmcvPlan(
            False,
            f'UNIRESTORE_MMCV_CUDA={mode!r}: expected auto, 1 or 0',
            error=True,
        )
    if mode == '0':
        return MmcvPlan(False, 'CPU ops only (UNIRESTORE_MMCV_CUDA=0)')
    forced = mode == '1'
    problem = None
    if torch_cuda is None:
        problem = 'torch is a CPU build'
    elif not nvcc:
        problem = 'no nvcc on PATH'
    elif not cuda_home:
        problem = (
            'no CUDA toolkit with include/cuda_runtime.h found for '
            f'{nvcc} (set CUDA_HOME)'
        )
    elif not nvcc_release:
        problem = f'cannot read the CUDA release from `{nvcc} --version`'
    elif nvcc_release.split('.')[0] != str(torch_cuda).split('.')[0]:
        problem = (
            f'nvcc is CUDA {nvcc_release} but torch was built with CUDA '
            f'{torch_cuda} (the major versions '
            'must match; set CUDA_HOME and PATH to a matching toolkit)'
        )
    elif not cuda_available and not forced:
        problem = (
            'torch sees no GPU (UNIRESTORE_MMCV_CUDA=1 builds the CUDA '
            'ops anyway)'
        )
    if problem is None:
        how = 'forced' if forced else 'GPU visible'
        return MmcvPlan(
            True,
            f'CUDA ops with nvcc {nvcc_release} ({how}; '
            f'CUDA_HOME={cuda_home})',
        )
    if forced:
        return MmcvPlan(
            False, f'UNIRESTORE_MMCV_CUDA=1 but {problem}', error=True
        )
    if torch_cuda is not None and nvcc and cuda_available:
        return MmcvPlan(
            False,
            f'CPU ops only: {problem}. WARNING: mmcv.ops will not run on the '
            'GPU',
        )
    return MmcvPlan(False, f'CPU ops only: {problem}')


def wheel_tag(
    python: Tuple[int, int], torch_version: str, cuda: Optional[str]
) -> str:
    """Cache key of a built mmcv wheel, e.g. ``py311-torch2.14.1-cpu`` or
    ``py311-torch2.14.1-cu13.0``."""
    return f'py{python[0]}{python[1]}-torch{torch_version.split("+")[0]}-' + (
        f'cu{cuda}' if cuda else 'cpu'
    )


# -------------------------------------------------------------- probes and CLI
def _probe_torch() -> Tuple[Optional[str], Optional[str], str]:
    """(torch version, torchvision version, why torch failed) from a fresh
    interpreter; None where not importable."""
    code = (
        'import sys\n'
        'import torch\n'
        'print(torch.__version__)\n'
        'try:\n'
        '    import torchvision\n'
        '    print(torchvision.__version__)\n'
        'except Exception as err:\n'
        '    print("none:", repr(err)[:200], file=sys.stderr)\n'
    )
    try:
        out = subprocess.run(
            [sys.executable, '-c', code],
            capture_output=True,
            text=True,
            timeout=300,
        )
    except (OSError, subprocess.TimeoutExpired) as err:
        return None, None, f'import torch: {err}'
    lines = out.stdout.split()
    if out.returncode != 0 or not lines:
        last = (out.stderr.strip().splitlines() or ['failed'])[-1]
        return None, None, f'import torch: {last}'
    return lines[0], (lines[1] if len(lines) > 1 else None), ''


def _nvcc_facts(nvcc: Optional[str]) -> Tuple[Optional[str], Optional[str]]:
    """(release like '13.0', TOP folder from ``--dryrun``) of nvcc, None where
    unreadable."""
    if not nvcc:
        return None, None
    release = top = None
    try:
        out = subprocess.run(
            [nvcc, '--version'], capture_output=True, text=True, timeout=60
        ).stdout
        m = re.search(r'release (\d+\.\d+)', out)
        release = m.group(1) if m else None
        dry = subprocess.run(
            [nvcc, '--dryrun', '-c', '-x', 'cu', os.devnull, '-o', os.devnull],
            capture_output=True,
            text=True,
            timeout=60,
        )
        m = re.search(r'TOP=(\S+)', dry.stdout + dry.stderr)
        top = m.group(1) if m else None
    except (OSError, subprocess.TimeoutExpired):
        pass
    return release, top


def _emit(**values) -> None:
    for k, v in values.items():
        print(f'{k}={shlex.quote(str(v))}')


def main(argv: Optional[Sequence[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in ('torch', 'mmcv'):
        print(
            'usage: install_plan.py torch "<pip spec>" | install_plan.py mmcv',
            file=sys.stderr,
        )
        return 2
    if argv[0] == 'torch':
        if len(argv) != 2:
            print(
                'usage: install_plan.py torch "torch==X torchvision==Y"',
                file=sys.stderr,
            )
            return 2
        torch_version, tv_version, problem = _probe_torch()
        try:
            plan = plan_torch(
                torch_version,
                tv_version,
                argv[1],
                reinstall=os.environ.get('UNIRESTORE_REINSTALL_TORCH', '0')
                == '1',
                torch_problem=problem,
            )
        except ValueError as err:
            print(f'install_plan.py: {err}', file=sys.stderr)
            return 2
        _emit(
            TORCH_ACTION=plan.action,
            TORCH_MESSAGE=plan.message,
            TORCH_PIP_ARGS=' '.join(plan.pip_args),
        )
        return 0
    import torch

    nvcc = shutil.which('nvcc')
    release, top = _nvcc_facts(nvcc)
    home = find_cuda_home(nvcc, os.environ, top)
    plan = plan_mmcv_ops(
        torch.version.cuda,
        torch.cuda.is_available(),
        nvcc,
        release,
        home,
        os.environ.get('UNIRESTORE_MMCV_CUDA', 'auto'),
    )
    include = osp.join(osp.dirname(torch.__file__), 'include')
    _emit(
        MMCV_CUDA=int(plan.cuda),
        MMCV_MESSAGE=plan.message,
        MMCV_ERROR=int(plan.error),
        MMCV_TAG=wheel_tag(
            sys.version_info[:2],
            torch.__version__,
            torch.version.cuda if plan.cuda else None,
        ),
        MMCV_CXX_STD=required_cxx_std(include) or '',
        MMCV_CUDA_HOME=home or '',
        MMCV_NVCC=osp.join(home, 'bin', 'nvcc') if home else '',
        MMCV_CUDA_INCLUDES=os.pathsep.join(
            cuda_library_include_dirs(home, sys.path) if plan.cuda else []
        ),
    )
    return 0


if __name__ == '__main__':
    sys.exit(main())
