#!/usr/bin/env bash
# One-command install of unirestore_mm and everything its tests need, into the active Python.
#
#   bash tools/install.sh            # torch, full mmcv (built once, then cached), mm* stack, this package
#
# mmsegmentation 1.2.2 needs mmcv>=2.0.0rc4,<2.2.0 *with* compiled ops.  PyPI only carries the source of
# mmcv 2.1.0, whose setup.py forces -std=c++17 while torch 2.14's headers need C++20.  We build the wheel
# from PyPI's source with a compiler wrapper that swaps the flag, and cache it outside the repository
# (UNIRESTORE_CACHE, default ~/.cache/unirestore_mm) so a second install takes about a minute.
# With CUDA visible to torch and nvcc on PATH, mmcv's own setup builds the CUDA ops as well.
set -euo pipefail

PY=${PYTHON:-python}
CACHE=${UNIRESTORE_CACHE:-$HOME/.cache/unirestore_mm}
TORCH_SPEC=${TORCH_SPEC:-"torch==2.14.1 torchvision==0.29.1"}
MMCV_VERSION=2.1.0
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
pip_install() { "$PY" -m pip install --disable-pip-version-check --no-input "$@"; }

echo "[install] torch: $TORCH_SPEC"
# shellcheck disable=SC2086
pip_install $TORCH_SPEC
# setuptools<81 keeps pkg_resources (mmengine's pkg:: config bases need it); ninja speeds the mmcv build.
pip_install "setuptools<81" wheel ninja "numpy<2.4"

if "$PY" -c "import mmcv, mmcv.ops, sys; sys.exit(0 if mmcv.__version__ == '$MMCV_VERSION' else 1)" 2>/dev/null; then
    echo "[install] mmcv $MMCV_VERSION with ops already installed"
else
    TAG=$("$PY" - <<'PYEOF'
import sys, torch
cuda = torch.version.cuda if torch.cuda.is_available() else None
print(f"py{sys.version_info.major}{sys.version_info.minor}-torch{torch.__version__.split('+')[0]}-" + (f"cu{cuda}" if cuda else "cpu"))
PYEOF
)
    WHEEL_DIR="$CACHE/mmcv-$MMCV_VERSION-$TAG"
    mkdir -p "$WHEEL_DIR"
    if ! ls "$WHEEL_DIR"/mmcv-*.whl >/dev/null 2>&1; then
        echo "[install] building mmcv $MMCV_VERSION with ops from PyPI source ($TAG); ~15 min on 2 cores"
        BUILD=$(mktemp -d)
        trap 'rm -rf "$BUILD"' EXIT
        # Compiler wrapper: mmcv's setup.py hard-codes -std=c++17; torch>=2.10 headers need C++20.
        cat > "$BUILD/cxx" <<'WRAP'
#!/usr/bin/env bash
args=()
for a in "$@"; do [ "$a" = "-std=c++17" ] && a="-std=c++20"; args+=("$a"); done
exec "${REAL_CXX:-g++}" "${args[@]}"
WRAP
        chmod +x "$BUILD/cxx"
        REAL="${CXX:-g++}"
        # Build into a temporary folder and move the wheel in only when complete (never a half wheel).
        CXX="$BUILD/cxx" REAL_CXX="$REAL" MMCV_WITH_OPS=1 MAX_JOBS=${MAX_JOBS:-$(nproc)} \
            "$PY" -m pip wheel "mmcv==$MMCV_VERSION" --no-build-isolation --no-deps \
            --disable-pip-version-check -w "$BUILD/out"
        mv "$BUILD"/out/mmcv-*.whl "$WHEEL_DIR/"
    else
        echo "[install] reusing cached mmcv wheel in $WHEEL_DIR"
    fi
    pip_install --no-deps --force-reinstall "$WHEEL_DIR"/mmcv-*.whl
fi

# Degradations and data (issue 4): the embedded benchmark set composites Fashion-MNIST items from
# Debian's dataset-fashion-mnist package (no download from a dataset host) onto scikit-image photos.
# Skipped without apt-get or without root; the embedded-set tests then skip with a message.
if command -v apt-get >/dev/null 2>&1 && [ ! -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ]; then
    if [ "$(id -u)" = "0" ]; then
        echo "[install] Debian package dataset-fashion-mnist (embedded benchmark set)"
        (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dataset-fashion-mnist) \
            || echo "[install] warning: could not install dataset-fashion-mnist; the embedded set needs it"
    else
        echo "[install] warning: not root, skipping apt-get install dataset-fashion-mnist (embedded set)"
    fi
fi

echo "[install] OpenMMLab, diffusers and test requirements"
pip_install -r "$HERE/requirements.txt"
pip_install --no-deps -e "$HERE"
"$PY" -c "import mmcv.ops, mmseg.models, mmpretrain.models, diffusers, unirestore_mm; print('[install] ok: mmcv', mmcv.__version__, '| unirestore_mm', unirestore_mm.__version__)"
