"""tools/install.sh's pieces: the compiler wrapper that raises mmcv's -std, and
the torch/mmcv decisions."""

import importlib.util
import os
import os.path as osp
import shutil
import subprocess
import sys

import pytest

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
HELPERS = osp.join(REPO, 'tools', 'install_helpers')
WRAPPER = osp.join(HELPERS, 'std_compiler.sh')
INSTALL = osp.join(REPO, 'tools', 'install.sh')

pytestmark = pytest.mark.skipif(
    shutil.which('bash') is None, reason='needs bash'
)


def _load_plan():
    spec = importlib.util.spec_from_file_location(
        'unirestore_install_plan', osp.join(HELPERS, 'install_plan.py')
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


plan = _load_plan()


@pytest.fixture
def fake_compiler(tmp_path):
    """A 'compiler' that writes its argv, one argument per line, to argv.txt
    and exits 7."""
    out = tmp_path / 'argv.txt'
    exe = tmp_path / 'fakecc'
    exe.write_text(
        f'#!/usr/bin/env bash\nprintf "%s\\n" "$@" > {out}\nexit 7\n'
    )
    exe.chmod(0o755)
    return str(exe), out


def _run_wrapper(std, compiler, *args):
    return subprocess.run(
        ['bash', WRAPPER, std, compiler, *args], capture_output=True, text=True
    )


# ------------------------------------------------------------- std_compiler.sh
@pytest.mark.parametrize(
    'given, expected',
    [
        # mmcv's nvcc and g++ flag
        (['-std=c++17', '-c', 'x.cu'], ['-std=c++20', '-c', 'x.cu']),
        (['-std=c++14'], ['-std=c++20']),  # mmcv for torch <= 1.12
        (['-std=gnu++17'], ['-std=gnu++20']),  # GNU dialect kept
        (['--std=c++17'], ['--std=c++20']),
        # nvcc's two-argument form
        (['-std', 'c++17', '-O3'], ['-std', 'c++20', '-O3']),
        (['-std=c++1z'], ['-std=c++20']),
        (['-std=c++23'], ['-std=c++23']),  # newer: untouched
        (['-std=c++20'], ['-std=c++20']),
        (['-std=c11', 'a.c'], ['-std=c11', 'a.c']),  # a C standard: untouched
        # not -std options
        (
            ['c++17.cpp', '-DX=-std=c++17', 'a b'],
            ['c++17.cpp', '-DX=-std=c++17', 'a b'],
        ),
    ],
)
def test_wrapper_rewrites_only_older_cxx_standards(
    fake_compiler, given, expected
):
    exe, out = fake_compiler
    proc = _run_wrapper('c++20', exe, *given)
    # the real compiler's exit status comes back
    assert proc.returncode == 7, proc.stderr
    assert out.read_text().splitlines() == expected


def test_wrapper_with_cxx17_target_raises_cxx14_only(fake_compiler):
    exe, out = fake_compiler
    _run_wrapper('c++17', exe, '-std=c++14', '-std=c++20')
    assert out.read_text().splitlines() == ['-std=c++17', '-std=c++20']


def test_wrapper_rejects_bad_usage(fake_compiler):
    exe, _ = fake_compiler
    proc = _run_wrapper('c20', exe, '-c')
    assert proc.returncode == 2 and "STD must look like c++20" in proc.stderr
    proc = subprocess.run(
        ['bash', WRAPPER, 'c++20'], capture_output=True, text=True
    )
    assert proc.returncode == 2 and 'usage' in proc.stderr


CXX20_ONLY = (
    '#if __cplusplus < 202002L\n#error needs C++20\n#endif\nint '
    'main() { return 0; }\n'
)


@pytest.mark.skipif(shutil.which('g++') is None, reason='needs g++')
def test_wrapper_makes_a_real_gxx_compile_in_cxx20(tmp_path):
    src = tmp_path / 'x.cpp'
    src.write_text(CXX20_ONLY)
    plain = subprocess.run(
        ['g++', '-std=c++17', '-fsyntax-only', str(src)],
        capture_output=True,
        text=True,
    )
    # the check is real
    assert plain.returncode != 0 and 'needs C++20' in plain.stderr
    wrapped = subprocess.run(
        [
            'bash',
            WRAPPER,
            'c++20',
            'g++',
            '-std=c++17',
            '-fsyntax-only',
            str(src),
        ],
        capture_output=True,
        text=True,
    )
    assert wrapped.returncode == 0, wrapped.stderr


@pytest.mark.skipif(
    shutil.which('nvcc') is None,
    reason='needs nvcc (compiles only, no GPU needed)',
)
def test_wrapper_makes_nvcc_and_its_host_compiler_use_cxx20(tmp_path):
    """nvcc forwards its -std to the host compiler: the host pass of a .cu file
    sees C++20 as well."""
    src = tmp_path / 'x.cu'
    src.write_text('__global__ void k() {}\n' + CXX20_ONLY)
    cmd = ['-std=c++17', '-c', str(src), '-o', str(tmp_path / 'x.o')]
    plain = subprocess.run(['nvcc', *cmd], capture_output=True, text=True)
    assert (
        plain.returncode != 0 and 'needs C++20' in plain.stdout + plain.stderr
    )
    wrapped = subprocess.run(
        ['bash', WRAPPER, 'c++20', 'nvcc', *cmd],
        capture_output=True,
        text=True,
    )
    assert wrapped.returncode == 0, wrapped.stdout + wrapped.stderr


# ------------------------------------------------------ torch: keep or install
REQUESTED = 'torch==2.14.1 torchvision==0.29.1'


def test_keeps_supported_torch_with_matching_torchvision():
    p = plan.plan_torch('2.14.1+cu130', '0.29.1+cu130', REQUESTED)
    assert p.action == 'keep' and p.pip_args == []
    assert (
        p.message.startswith('keeping torch 2.14 (')
        and 'supported: >=2.6,<3' in p.message
    )


def test_keeps_oldest_supported_torch_and_installs_its_torchvision():
    p = plan.plan_torch('2.6.0', None, REQUESTED)
    assert p.action == 'keep'
    # torch pinned so pip leaves it alone
    assert p.pip_args == ['torch==2.6.0', 'torchvision==0.21.*']


def test_kept_torch_with_torchvision_of_another_release_gets_the_matching_one():
    p = plan.plan_torch('2.10.2+cpu', '0.29.1', REQUESTED)
    assert p.action == 'keep' and p.pip_args == [
        'torch==2.10.2',
        'torchvision==0.25.*',
    ]
    assert 'torchvision 0.29.1 does not match' in p.message


@pytest.mark.parametrize(
    'installed, why',
    [
        (None, 'no working torch'),
        ('2.5.1', 'outside the supported range'),
        ('1.13.1', 'outside'),
        ('3.0.0', 'outside'),
        ('garbage', 'no version number'),
    ],
)
def test_installs_requested_torch_otherwise(installed, why):
    p = plan.plan_torch(
        installed, '0.20.1', REQUESTED, torch_problem='ModuleNotFoundError'
    )
    assert p.action == 'install' and p.pip_args == REQUESTED.split()
    assert why in p.message and REQUESTED in p.message


def test_reinstall_overrides_a_supported_torch():
    p = plan.plan_torch(
        '2.14.1', '0.29.1', 'torch==2.13.0 torchvision==0.28.0', reinstall=True
    )
    assert p.action == 'install' and p.pip_args == [
        'torch==2.13.0',
        'torchvision==0.28.0',
    ]


def test_empty_request_and_bad_version_are_named():
    with pytest.raises(ValueError, match='requested torch spec is empty'):
        plan.plan_torch('2.14.1', '0.29.1', '  ')
    with pytest.raises(ValueError, match=r"version 'abc'"):
        plan.parse_version('abc')


def _fake_modules(root, **sources):
    root.mkdir()
    for name, code in sources.items():
        (root / name).mkdir()
        (root / name / '__init__.py').write_text(code)
    return str(root)


def _torch_cli(pythonpath):
    env = dict(
        os.environ, PYTHONPATH=pythonpath, UNIRESTORE_REINSTALL_TORCH='0'
    )
    proc = subprocess.run(
        [
            sys.executable,
            osp.join(HELPERS, 'install_plan.py'),
            'torch',
            REQUESTED,
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    return dict(line.split('=', 1) for line in proc.stdout.splitlines())


def test_torch_cli_probes_the_active_python(tmp_path):
    """The command install.sh evals, against stand-in torch packages that
    shadow the real one."""
    kept = _torch_cli(
        _fake_modules(
            tmp_path / 'a',
            torch="__version__ = '2.7.1+cu126'\n",
            torchvision="__version__ = '0.22.1+cu126'\n",
        )
    )
    assert kept['TORCH_ACTION'] == 'keep' and kept['TORCH_PIP_ARGS'] == "''"
    assert 'keeping torch 2.7 (2.7.1+cu126' in kept['TORCH_MESSAGE']
    broken = _torch_cli(
        _fake_modules(
            tmp_path / 'b',
            torch="raise ImportError('libcudart.so.12: cannot open')\n",
        )
    )
    assert (
        broken['TORCH_ACTION'] == 'install'
        and broken['TORCH_PIP_ARGS'] == f"'{REQUESTED}'"
    )
    assert (
        'no working torch (import torch: ImportError: libcudart.so.12'
        in broken['TORCH_MESSAGE']
    )


# ----------------------------------------------------- mmcv: C++ std, CUDA ops
def test_required_cxx_std_read_from_headers(tmp_path):
    (tmp_path / 'ATen').mkdir()
    (tmp_path / 'ATen' / 'ATen.h').write_text(
        '#if !defined(_MSC_VER) && __cplusplus < 201703L\n'
        '#error C++17 or later compatible compiler is required to use ATen.\n'
    )
    assert plan.required_cxx_std(str(tmp_path)) == 'c++17'
    assert plan.required_cxx_std(str(tmp_path / 'missing')) is None


def test_installed_torch_headers_ask_for_cxx20_from_2_14():
    import torch

    want = (
        'c++20'
        if plan.parse_version(torch.__version__)[:2] >= (2, 14)
        else None
    )
    got = plan.required_cxx_std(
        osp.join(osp.dirname(torch.__file__), 'include')
    )
    if want is None:
        pytest.skip(
            f'torch {torch.__version__}: older than the torch this fact was '
            'checked on'
        )
    assert got == want


def _toolkit(root):
    os.makedirs(osp.join(root, 'include'))
    open(osp.join(root, 'include', 'cuda_runtime.h'), 'w').close()
    os.makedirs(osp.join(root, 'bin'))
    return root


def test_find_cuda_home_sees_through_a_wrapper_nvcc(tmp_path):
    real = _toolkit(str(tmp_path / 'cuda-13.0'))
    shim_dir = tmp_path / 'local' / 'bin'
    shim_dir.mkdir(parents=True)
    # like /usr/local/bin/nvcc: a script, so torch's guess (/usr/local) has no
    # headers
    shim = shim_dir / 'nvcc'
    shim.write_text(f'#!/bin/sh\nexec {real}/bin/nvcc "$@"\n')
    assert plan.find_cuda_home(str(shim), {}, None, fallbacks=()) is None
    assert (
        plan.find_cuda_home(
            str(shim), {}, nvcc_top=f'{real}/bin/..', fallbacks=()
        )
        == real
    )
    assert (
        plan.find_cuda_home(str(shim), {'CUDA_HOME': real}, None, fallbacks=())
        == real
    )
    link = tmp_path / 'nvcc-link'
    os.symlink(osp.join(real, 'bin', 'nvcc'), link)
    assert plan.find_cuda_home(str(link), {}, None, fallbacks=()) == real


def test_cuda_library_headers_from_pip_only_when_the_toolkit_lacks_them(
    tmp_path,
):
    # nvcc-only: cuda_runtime.h, no cusparse.h
    home = _toolkit(str(tmp_path / 'cuda'))
    site = tmp_path / 'site'
    for lib in ('cu13', 'cudnn'):
        (site / 'nvidia' / lib / 'include').mkdir(parents=True)
    empty_site = tmp_path / 'empty'
    empty_site.mkdir()
    # no cusparse.h anywhere
    assert (
        plan.cuda_library_include_dirs(home, [str(empty_site), str(site)])
        == []
    )
    (site / 'nvidia' / 'cu13' / 'include' / 'cusparse.h').write_text('')
    dirs = plan.cuda_library_include_dirs(home, [str(empty_site), str(site)])
    assert dirs == [
        str(site / 'nvidia' / 'cu13' / 'include'),
        str(site / 'nvidia' / 'cudnn' / 'include'),
    ]
    # a full toolkit needs nothing from pip
    open(osp.join(home, 'include', 'cusparse.h'), 'w').close()
    assert plan.cuda_library_include_dirs(home, [str(site)]) == []
    assert plan.cuda_library_include_dirs(None, [str(site)]) == []


@pytest.mark.parametrize(
    'torch_cuda, gpu, nvcc, release, home, mode, cuda, error',
    [
        # GPU, matching nvcc: CUDA ops
        ('13.0', True, '/x/nvcc', '13.0', '/cuda', 'auto', True, False),
        # no GPU (this machine): CPU ops
        ('13.0', False, '/x/nvcc', '13.0', '/cuda', 'auto', False, False),
        # build node: forced
        ('13.0', False, '/x/nvcc', '13.0', '/cuda', '1', True, False),
        # major mismatch: CPU ops, warned
        ('13.0', True, '/x/nvcc', '12.8', '/cuda', 'auto', False, False),
        # ... an error when forced
        ('13.0', True, '/x/nvcc', '12.8', '/cuda', '1', False, True),
        # CPU torch
        (None, True, '/x/nvcc', '13.0', '/cuda', 'auto', False, False),
        ('13.0', True, None, None, None, 'auto', False, False),  # no nvcc
        ('13.0', True, None, None, None, '1', False, True),
        # no headers
        ('13.0', True, '/x/nvcc', '13.0', None, 'auto', False, False),
        # opted out
        ('13.0', True, '/x/nvcc', '13.0', '/cuda', '0', False, False),
        # bad value
        ('13.0', True, '/x/nvcc', '13.0', '/cuda', 'yes', False, True),
    ],
)
def test_mmcv_cuda_ops_plan(
    torch_cuda, gpu, nvcc, release, home, mode, cuda, error
):
    p = plan.plan_mmcv_ops(torch_cuda, gpu, nvcc, release, home, mode)
    assert (p.cuda, p.error) == (cuda, error), p.message
    if torch_cuda and nvcc and gpu and release == '12.8' and mode == 'auto':
        assert 'WARNING' in p.message and 'must match' in p.message


def test_wheel_tag_matches_the_existing_cache_layout():
    assert (
        plan.wheel_tag((3, 11), '2.14.1+cu130', None)
        == 'py311-torch2.14.1-cpu'
    )
    assert (
        plan.wheel_tag((3, 11), '2.14.1+cu130', '13.0')
        == 'py311-torch2.14.1-cu13.0'
    )


# ----------------------------------------------------------- install.sh itself
def test_install_script_parses_and_rejects_unknown_arguments():
    assert subprocess.run(['bash', '-n', INSTALL]).returncode == 0
    proc = subprocess.run(
        ['bash', INSTALL, '--bogus'],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2 and "unknown argument '--bogus'" in proc.stderr
    proc = subprocess.run(
        ['bash', INSTALL, '--help'], capture_output=True, text=True, timeout=60
    )
    assert (
        proc.returncode == 0
        and 'UNIRESTORE_NO_APT' in proc.stdout
        and 'TORCH_SPEC' in proc.stdout
    )
