#!/usr/bin/env bash
# GPU check of the fast SAM engine, for a machine without network access.
#
#   bash bench/gpu_check.sh            # from the repository root
#   PYTHON=/opt/conda/bin/python STAGES="test vit_b" bash bench/gpu_check.sh
#
# Nothing is downloaded: it uses the system Python's torch (pip cannot fetch it offline) and
# installs nothing else. segment_anything (pure Python) is taken from, in order: the Python
# itself, $SAM_SOURCE (a folder holding the segment_anything package), or a copy carried in
# the checkout at .venv/lib/python*/site-packages/segment_anything. Wheels for anything else
# may be offered in $WHEELHOUSE (pip install --no-index). It prints what it found and stops
# with a clear message when torch, CUDA, torchvision, numpy, Pillow or segment_anything is
# missing.
#
# Stages (STAGES, default "test vit_b vit_h"), each writing its own JSON so that a time
# limit keeps what finished:
#   test   the engine's tests (CPU agreement with the reference, and the CUDA bf16 one)
#   vit_b  bench/proposals.py, random vit_b weights, 8 Kvasir images at 1024 x 1024
#   vit_h  the same for vit_h
# Results go to $OUT when set, else bench/out.
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
OUTDIR="${OUT:-$ROOT/bench/out}"
STAGES="${STAGES:-test vit_b vit_h}"
IMAGES="${IMAGES:-8}"
DATA="${DATA:-/work/shared/data/kvasir_seg/images}"
mkdir -p "$OUTDIR"
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONDONTWRITEBYTECODE=1

fail() { echo "GPU CHECK FAILED: $*" >&2; exit 2; }

PYTHON="${PYTHON:-$(command -v python3 || command -v python || true)}"
[ -n "$PYTHON" ] || fail "no python3 on PATH; set PYTHON=/path/to/python (one with torch)"
echo "python: $PYTHON ($("$PYTHON" --version 2>&1))"

has() { "$PYTHON" -c "import $1" >/dev/null 2>&1; }

if ! has segment_anything; then
  for candidate in "${SAM_SOURCE:-}" "$ROOT"/.venv/lib/python*/site-packages; do
    if [ -n "$candidate" ] && [ -f "$candidate/segment_anything/__init__.py" ]; then
      # Only this package's folder goes on the path: the rest of a carried .venv (its own
      # torch build) must not shadow the system's.
      SAM_PATH="$(mktemp -d)"
      ln -s "$candidate/segment_anything" "$SAM_PATH/segment_anything"
      export PYTHONPATH="$PYTHONPATH:$SAM_PATH"
      echo "segment_anything: using the copy in $candidate"
      break
    fi
  done
fi

if [ -n "${WHEELHOUSE:-}" ] && [ -d "$WHEELHOUSE" ]; then
  for module_package in numpy:numpy PIL:pillow torchvision:torchvision pytest:pytest; do
    module="${module_package%%:*}" package="${module_package##*:}"
    has "$module" || "$PYTHON" -m pip install --no-index --find-links "$WHEELHOUSE" "$package" \
      || echo "could not install $package from $WHEELHOUSE"
  done
fi

echo "--- available"
"$PYTHON" - <<'EOF'
import importlib
for name in ("torch", "torchvision", "numpy", "PIL", "segment_anything", "pytest"):
    try:
        module = importlib.import_module(name)
        print(f"{name:18s} {getattr(module, '__version__', 'present')}")
    except Exception as error:  # noqa: BLE001 - a report of what is there
        print(f"{name:18s} MISSING ({type(error).__name__}: {error})")
try:
    import torch
    print(f"cuda available     {torch.cuda.is_available()}")
    if torch.cuda.is_available():
        print(f"device             {torch.cuda.get_device_name()}")
        print(f"bf16 supported     {torch.cuda.is_bf16_supported()}")
except Exception:  # noqa: BLE001
    pass
EOF
echo "---"

has torch || fail "torch is not importable by $PYTHON; pip cannot download it offline. \
Use a Python that has a CUDA build of torch (PYTHON=...) or offer a wheel in WHEELHOUSE."
"$PYTHON" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" \
  || fail "torch sees no CUDA device (a CPU-only build, or no driver): nothing to measure"
for module in torchvision numpy PIL segment_anything; do
  has "$module" || fail "$module is missing: install it into $PYTHON, or for segment_anything \
set SAM_SOURCE to a folder holding the package (it is pure Python)"
done
[ -d "$DATA" ] || fail "no images at $DATA (set DATA to a folder of Kvasir-SEG .jpg images)"

status=0
for stage in $STAGES; do
  echo "=== $stage ($(date +%T))"
  case "$stage" in
    test)
      if ! has pytest; then
        echo "pytest missing: tests skipped; the benchmark still checks agreement"
        continue
      fi
      # Only this file: the suite's conftest needs the web service's dependencies.
      INI="$(mktemp -d)/pytest.ini"
      printf '[pytest]\nfilterwarnings =\n    error\n    ignore::DeprecationWarning\n' >"$INI"
      "$PYTHON" -m pytest -c "$INI" --rootdir "$ROOT" --noconftest -p no:cacheprovider -q \
        --junitxml "$OUTDIR/gpu_tests.xml" tests/test_samdsk_proposals_engine.py || status=1
      ;;
    vit_b | vit_h | vit_l)
      "$PYTHON" bench/proposals.py --models "$stage" --device cuda --size 1024 \
        --images "$IMAGES" --data "$DATA" --agreement-points 8 \
        --out "$OUTDIR/proposals_gpu_$stage.json" || status=1
      ;;
    *) fail "unknown stage $stage (valid: test vit_b vit_h vit_l)" ;;
  esac
done
echo "results in $OUTDIR"
exit "$status"
