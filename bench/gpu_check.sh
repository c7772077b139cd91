#!/usr/bin/env bash
# GPU checks, for a machine without network access: the fast SAM engine, and the full-size
# SamDSK experiment.
#
#   bash bench/prepare_device.sh       # here, once: stages bench/device/ (carry it)
#   bash bench/gpu_check.sh            # there, from the repository root
#   PYTHON=/opt/conda/bin/python STAGES="test vit_b" bash bench/gpu_check.sh
#   STAGES=experiment bash bench/gpu_check.sh
#
# Nothing is downloaded: it uses the system Python's torch (pip cannot fetch it offline) and
# installs nothing. Pure-Python packages the machine lacks (segment_anything,
# segmentation_models_pytorch) are taken from, in order: the Python itself, $SAM_SOURCE (a
# folder holding them), bench/device/site (bench/prepare_device.sh), or a copy carried in the
# checkout at .venv/lib/python*/site-packages. Wheels for anything else may be offered in
# $WHEELHOUSE (pip install --no-index). It prints what it found and stops with a clear message
# when torch, CUDA, torchvision, numpy, Pillow or segment_anything is missing.
#
# Stages (STAGES, default "test vit_b vit_h"), each writing its own JSON so that a time
# limit keeps what finished:
#   test   the engine's tests (CPU agreement with the reference, the restructured decoder and
#          encoder against segment_anything's, and the CUDA bf16 ones)
#   vit_b  bench/proposals.py, random vit_b weights, 8 Kvasir images at 1024 x 1024
#   vit_h  the same for vit_h
#   experiment  samdsk experiment on Kvasir-SEG at full size (EXP_SIZE 352 px, EXP_ENCODER
#          resnet34, EXP_STEPS 2000 steps of batch 8, one round, threshold 0.85, at most 120
#          machine labels, offline proposals over all but two CPUs; stopped after EXP_TIMEOUT
#          540 s); its outputs (report.json, CSVs, plots, log) come back as
#          experiment_kvasir.tar.gz. Not in the default stages: it takes several minutes, so it
#          gets a call of its own.
# Results go to $OUT when set, else bench/out.
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
OUTDIR="${OUT:-$ROOT/bench/out}"
STAGES="${STAGES:-test vit_b vit_h}"
IMAGES="${IMAGES:-8}"
STAGED="$ROOT/bench/device"
if [ -d "$STAGED/data/kvasir_seg" ]; then
  KVASIR="$STAGED/data/kvasir_seg"
  export SAMDSK_SHARED_DATA="${SAMDSK_SHARED_DATA:-$STAGED/data}"  # the tests' real image
else KVASIR="$ROOT/../shared/data/kvasir_seg"; fi
DATA="${DATA:-$KVASIR/images}"
EXP_DATA="${EXP_DATA:-$KVASIR}"
# DEVICE=cpu runs the experiment stage on the CPU (a dry run of this script; the SAM stages
# need CUDA whatever it says).
DEVICE="${DEVICE:-cuda}"
mkdir -p "$OUTDIR"
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONDONTWRITEBYTECODE=1

fail() { echo "GPU CHECK FAILED: $*" >&2; exit 2; }

PYTHON="${PYTHON:-$(command -v python3 || command -v python || true)}"
[ -n "$PYTHON" ] || fail "no python3 on PATH; set PYTHON=/path/to/python (one with torch)"
echo "python: $PYTHON ($("$PYTHON" --version 2>&1))"

has() { "$PYTHON" -c "import $1" >/dev/null 2>&1; }

EXTRA_PATH="$(mktemp -d)"
export PYTHONPATH="$PYTHONPATH:$EXTRA_PATH"
for package in segment_anything segmentation_models_pytorch; do
  has "$package" && continue
  for candidate in "${SAM_SOURCE:-}" "$STAGED/site" "$ROOT"/.venv/lib/python*/site-packages; do
    if [ -n "$candidate" ] && [ -f "$candidate/$package/__init__.py" ]; then
      # Only this package's folder goes on the path: the rest of a carried .venv (its own
      # torch build) must not shadow the system's.
      ln -s "$candidate/$package" "$EXTRA_PATH/$package"
      echo "$package: using the copy in $candidate"
      break
    fi
  done
done

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
for name in (
    "torch", "torchvision", "numpy", "PIL", "segment_anything", "pytest",
    "segmentation_models_pytorch", "timm", "skimage", "scipy", "matplotlib", "tqdm",
):
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
if [ "$DEVICE" = cuda ]; then
  "$PYTHON" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" \
    || fail "torch sees no CUDA device (a CPU-only build, or no driver): nothing to measure"
fi
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
      # Only the engine's files: the suite's conftest needs the web service's dependencies.
      INI="$(mktemp -d)/pytest.ini"
      printf '[pytest]\nfilterwarnings =\n    error\n    ignore::DeprecationWarning\n' >"$INI"
      "$PYTHON" -m pytest -c "$INI" --rootdir "$ROOT" --noconftest -p no:cacheprovider -q \
        --junitxml "$OUTDIR/gpu_tests.xml" tests/test_samdsk_proposals_engine.py \
        tests/test_samdsk_proposals_decoder.py tests/test_samdsk_proposals_encoder.py || status=1
      ;;
    vit_b | vit_h | vit_l)
      "$PYTHON" bench/proposals.py --models "$stage" --device cuda --size 1024 \
        --images "$IMAGES" --data "$DATA" --agreement-points 8 \
        --out "$OUTDIR/proposals_gpu_$stage.json" || status=1
      ;;
    experiment)
      for module in segmentation_models_pytorch skimage scipy matplotlib tqdm; do
        has "$module" || { echo "experiment skipped: $module is missing"; status=1; continue 2; }
      done
      [ -f "$EXP_DATA/split.csv" ] || { echo "experiment skipped: no $EXP_DATA/split.csv"; \
        status=1; continue; }
      RUN_DIR="$(mktemp -d)/experiment_kvasir"
      mkdir -p "$RUN_DIR"
      WORKERS="$(( $(nproc) > 3 ? $(nproc) - 2 : 1 ))"
      # A time limit of its own, so that the log comes back even from a run cut short.
      PYTHONUNBUFFERED=1 timeout "${EXP_TIMEOUT:-540}" "$PYTHON" -c "import sys; from samdsk.cli import main; sys.exit(main())" \
        experiment --data "$EXP_DATA" --out "$RUN_DIR" --labeled-fraction 0.1 --rounds 1 \
        --size "${EXP_SIZE:-352}" --encoder "${EXP_ENCODER:-resnet34}" \
        --steps "${EXP_STEPS:-2000}" --threshold 0.85 --max-new 120 --device "$DEVICE" \
        --proposal-workers "$WORKERS" ${EXP_ARGS:-} 2>&1 | tee "$RUN_DIR/experiment.log" \
        | tr '\r' '\n' | grep -v -e "it/s" -e "s/it" -e "image/s" -e "s/image" -e "^$"
      [ "${PIPESTATUS[0]}" -eq 0 ] || status=1
      tar czf "$OUTDIR/experiment_kvasir.tar.gz" --exclude proposal_cache \
        -C "$(dirname "$RUN_DIR")" experiment_kvasir
      ;;
    *) fail "unknown stage $stage (valid: test vit_b vit_h vit_l experiment)" ;;
  esac
done
echo "results in $OUTDIR"
exit "$status"
