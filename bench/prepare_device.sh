#!/usr/bin/env bash
# Stage what a GPU machine without network access needs into bench/device/ (git-ignored),
# so that one folder travels with the checkout:
#
#   bash bench/prepare_device.sh            # from the repository root, after `make install`
#
# bench/device/site   pure-Python packages the GPU image lacks, copied from .venv:
#                     segment_anything and segmentation_models_pytorch (their own needs,
#                     torch, timm, huggingface_hub, safetensors, scikit-image, are there)
# bench/device/data   Kvasir-SEG (images/, masks/, split.csv) from ../shared/data
#
# bench/gpu_check.sh finds both there by default.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STAGE="$ROOT/bench/device"
SOURCE_DATA="${SOURCE_DATA:-$ROOT/../shared/data/kvasir_seg}"
SITE_PACKAGES="$(echo "$ROOT"/.venv/lib/python*/site-packages)"

[ -d "$SITE_PACKAGES" ] || { echo "no .venv here: run make install first" >&2; exit 2; }
[ -d "$SOURCE_DATA/images" ] || { echo "no Kvasir-SEG at $SOURCE_DATA" >&2; exit 2; }

rm -rf "$STAGE"
mkdir -p "$STAGE/site" "$STAGE/data"
for package in segment_anything segmentation_models_pytorch; do
  cp -r "$SITE_PACKAGES/$package" "$STAGE/site/"
done
find "$STAGE/site" -name __pycache__ -prune -exec rm -rf {} +
cp -r "$SOURCE_DATA" "$STAGE/data/kvasir_seg"
echo "staged $(du -sh "$STAGE" | cut -f1) in $STAGE (the device call carries at most 64 MiB)"
