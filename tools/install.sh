#!/usr/bin/env bash
# One-command install of unirestore_mm and everything its tests need, into the active Python.
#
#   bash tools/install.sh             # torch (kept if supported), mmcv with ops (built once, cached), mm* stack, timm,
#                                     # this package; as root also Debian's dataset-fashion-mnist (embedded set)
#   bash tools/install.sh --no-apt    # the same without apt-get (or UNIRESTORE_NO_APT=1)
#
# Environment:
#   PYTHON                        the Python to install into (default: python)
#   TORCH_SPEC                    torch to install when the active one cannot be kept
#                                 (default "torch==2.14.1 torchvision==0.29.1")
#   TORCH_INDEX_URL               pip index for it, e.g. https://download.pytorch.org/whl/cu126 (default: PyPI)
#   UNIRESTORE_REINSTALL_TORCH=1  install TORCH_SPEC even over a supported torch
#   UNIRESTORE_MMCV_CUDA          auto (default): mmcv's CUDA ops when torch sees a GPU and nvcc matches its CUDA;
#                                 1: CUDA ops even without a GPU (build node); 0: CPU ops only
#   TORCH_CUDA_ARCH_LIST          GPU architectures of the CUDA ops (default: the visible GPU's)
#   UNIRESTORE_CACHE              where built mmcv wheels are kept (default ~/.cache/unirestore_mm)
#   UNIRESTORE_REINSTALL_MMCV=1   reinstall mmcv (from the cached wheel, built first if there is none) even if the
#                                 installed one works
#   UNIRESTORE_NO_APT=1           skip apt-get install dataset-fashion-mnist
#   MAX_JOBS                      parallel compile jobs (default: nproc)
#
# A torch that imports and is supported (tools/install_helpers/install_plan.py: >=2.6,<3) is kept; only a
# torchvision that does not match it is installed beside it.  mmsegmentation 1.2.2 needs mmcv>=2.0.0rc4,<2.2.0 *with*
# compiled ops; PyPI carries only the source of mmcv 2.1.0, whose setup.py passes -std=c++17 to g++ and to nvcc,
# while torch 2.14's headers need C++20.  We build the wheel through tools/install_helpers/std_compiler.sh, which
# raises the standard for both compilers (CXX for g++; PYTORCH_NVCC, which torch's cpp_extension uses instead of
# $CUDA_HOME/bin/nvcc, for nvcc, whose -std also reaches its host compiler), and cache it outside the repository
# so that a second install takes about a minute.
set -euo pipefail

START=$(date +%s)
APT=1
[ "${UNIRESTORE_NO_APT:-0}" = 1 ] && APT=0
for arg in "$@"; do
    case "$arg" in
        --no-apt) APT=0 ;;
        -h|--help) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) echo "[install] error: unknown argument '$arg' (expected --no-apt or --help)" >&2; exit 2 ;;
    esac
done

PY=${PYTHON:-python}
CACHE=${UNIRESTORE_CACHE:-$HOME/.cache/unirestore_mm}
TORCH_SPEC=${TORCH_SPEC:-"torch==2.14.1 torchvision==0.29.1"}
MMCV_VERSION=2.1.0
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
HELPERS="$HERE/tools/install_helpers"
pip_install() { "$PY" -m pip install --disable-pip-version-check --no-input "$@"; }
BUILD=$(mktemp -d)
trap 'rm -rf "$BUILD"' EXIT

# ---------------------------------------------------------------------------------------------------------- torch
PLAN=$("$PY" "$HELPERS/install_plan.py" torch "$TORCH_SPEC")
eval "$PLAN"
echo "[install] $TORCH_MESSAGE"
if [ -n "$TORCH_PIP_ARGS" ]; then
    # shellcheck disable=SC2086
    pip_install ${TORCH_INDEX_URL:+--index-url "$TORCH_INDEX_URL"} $TORCH_PIP_ARGS
fi
# From here on pip must not replace the torch chosen above (timm, for one, asks for torch and torchvision).
# (The installed distributions' versions: torch.__version__ may carry a local tag, +cu130, that the metadata lacks.)
"$PY" - > "$BUILD/constraints.txt" <<'PYEOF'
from importlib.metadata import version
print(f"torch=={version('torch')}")
print(f"torchvision=={version('torchvision')}")
PYEOF
# setuptools<81 keeps pkg_resources (mmcv 2.1.0's setup.py and mmengine's pkg:: config bases import it);
# ninja speeds the mmcv build; numpy<2.4: see requirements/runtime.txt.
pip_install -c "$BUILD/constraints.txt" "setuptools<81" wheel ninja "numpy<2.4"

# ----------------------------------------------------------------------------------------------- mmcv with ops
PLAN=$("$PY" "$HELPERS/install_plan.py" mmcv)
eval "$PLAN"
echo "[install] mmcv ops: $MMCV_MESSAGE"
if [ "$MMCV_ERROR" = 1 ]; then
    echo "[install] error: cannot build mmcv as asked: $MMCV_MESSAGE" >&2
    exit 1
fi
# An installed mmcv is kept when its ops import with this torch and have CUDA if CUDA ops are wanted.
if [ "${UNIRESTORE_REINSTALL_MMCV:-0}" != 1 ] && "$PY" - "$MMCV_VERSION" "$MMCV_CUDA" 2>/dev/null <<'PYEOF'
import sys
import mmcv
from mmcv.ops import get_compiling_cuda_version
cuda_ops = get_compiling_cuda_version() != 'not available'
sys.exit(0 if mmcv.__version__ == sys.argv[1] and (cuda_ops or sys.argv[2] != '1') else 1)
PYEOF
then
    echo "[install] mmcv $MMCV_VERSION with ops already installed"
else
    WHEEL_DIR="$CACHE/mmcv-$MMCV_VERSION-$MMCV_TAG"
    mkdir -p "$WHEEL_DIR"
    if ! ls "$WHEEL_DIR"/mmcv-*.whl >/dev/null 2>&1; then
        STD=${MMCV_CXX_STD:-c++17}
        echo "[install] building mmcv $MMCV_VERSION with ops from PyPI source ($MMCV_TAG, $STD); ~15 min on 2 cores"
        # Compiler shims: each runs the real compiler through std_compiler.sh, which raises mmcv's -std to $STD.
        printf '#!/bin/sh\nexec %q %q %q "$@"\n' "$HELPERS/std_compiler.sh" "$STD" "${CXX:-g++}" > "$BUILD/cxx"
        chmod +x "$BUILD/cxx"
        BUILD_ENV=(CXX="$BUILD/cxx" MMCV_WITH_OPS=1 MAX_JOBS="${MAX_JOBS:-$(nproc)}")
        if [ "$MMCV_CUDA" = 1 ]; then
            printf '#!/bin/sh\nexec %q %q %q "$@"\n' "$HELPERS/std_compiler.sh" "$STD" "$MMCV_NVCC" > "$BUILD/nvcc"
            chmod +x "$BUILD/nvcc"
            # FORCE_CUDA: mmcv's setup.py takes its CUDA branch only with a visible GPU otherwise.
            BUILD_ENV+=(FORCE_CUDA=1 CUDA_HOME="$MMCV_CUDA_HOME" PYTORCH_NVCC="$BUILD/nvcc")
            if [ -n "$MMCV_CUDA_INCLUDES" ]; then
                # An nvcc-only toolkit without cusparse.h & co.: torch's pip nvidia-* headers fill the gap.
                echo "[install] CUDA library headers from pip packages: $MMCV_CUDA_INCLUDES"
                BUILD_ENV+=(CPLUS_INCLUDE_PATH="$MMCV_CUDA_INCLUDES${CPLUS_INCLUDE_PATH:+:$CPLUS_INCLUDE_PATH}")
            fi
        else
            # CPU ops only: hide any GPU, or mmcv's setup.py takes its CUDA branch anyway.
            BUILD_ENV+=(FORCE_CUDA=0 CUDA_VISIBLE_DEVICES=)
        fi
        # Build into a temporary folder and move the wheel in only when complete (never a half wheel).
        # --no-cache-dir: pip's own wheel cache keys on the source only, so it would hand back a wheel built
        # for another torch or without CUDA ops; $WHEEL_DIR is the cache, keyed on all of that.
        env "${BUILD_ENV[@]}" "$PY" -m pip wheel "mmcv==$MMCV_VERSION" --no-build-isolation --no-deps \
            --no-cache-dir --disable-pip-version-check -w "$BUILD/out"
        mv "$BUILD"/out/mmcv-*.whl "$WHEEL_DIR/"
    else
        echo "[install] reusing cached mmcv wheel in $WHEEL_DIR"
    fi
    pip_install --no-deps --force-reinstall "$WHEEL_DIR"/mmcv-*.whl
fi

# ------------------------------------------------------------------------------------ Fashion-MNIST (opt-out)
# The embedded benchmark set composites Fashion-MNIST items from Debian's dataset-fashion-mnist package (no
# download from a dataset host) onto scikit-image photos.  Opt out with --no-apt or UNIRESTORE_NO_APT=1.
FMNIST=/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz
if [ -f "$FMNIST" ] || [ -n "${UNIRESTORE_FASHION_MNIST:-}" ]; then
    :
elif [ "$APT" = 0 ]; then
    echo "[install] skipping apt-get install dataset-fashion-mnist (--no-apt / UNIRESTORE_NO_APT=1)"
elif ! command -v apt-get >/dev/null 2>&1; then
    echo "[install] no apt-get: not installing dataset-fashion-mnist (embedded set)"
elif [ "$(id -u)" != "0" ]; then
    echo "[install] not root: not installing dataset-fashion-mnist (embedded set); run as root or use --no-apt"
else
    echo "[install] Debian package dataset-fashion-mnist (embedded benchmark set; --no-apt to skip)"
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dataset-fashion-mnist) \
        || echo "[install] warning: could not install dataset-fashion-mnist; the embedded set needs it"
fi

# ------------------------------------------------------------------------- OpenMMLab, diffusers, timm, tests
echo "[install] OpenMMLab, diffusers, timm and test requirements (requirements.txt)"
pip_install -c "$BUILD/constraints.txt" -r "$HERE/requirements.txt"
pip_install --no-deps -e "$HERE"

"$PY" - "$MMCV_CUDA" <<'PYEOF'
import sys
import mmcv, mmcv.ops, mmseg.models, mmpretrain.models, diffusers, timm, torch, unirestore_mm
from mmcv.ops import get_compiling_cuda_version
ops = get_compiling_cuda_version()
if sys.argv[1] == '1' and ops == 'not available':
    sys.exit('[install] error: mmcv was to get CUDA ops but the installed one has none (a stale wheel in '
             'UNIRESTORE_CACHE?)')
print(f'[install] ok: torch {torch.__version__} | mmcv {mmcv.__version__} (ops: '
      f'{"CUDA " + ops if ops != "not available" else "CPU"}) | diffusers {diffusers.__version__} '
      f'| timm {timm.__version__} | unirestore_mm {unirestore_mm.__version__}')
missing = []  # what the embedded benchmark set (tools/dataset_converters/build_embedded_set.py) needs and does not find
try:
    import skimage.data  # noqa: F401
except ImportError:
    missing.append('scikit-image (pip install scikit-image)')
from unirestore_mm.datasets import load_fashion_mnist
try:
    load_fashion_mnist('test')
except FileNotFoundError as err:
    missing.append(str(err))
print('[install] embedded benchmark set: ' + ('sources present' if not missing else
      'cannot be built, missing ' + '; '.join(missing)))
PYEOF
echo "[install] finished in $(( $(date +%s) - START )) s"
