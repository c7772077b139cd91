#!/usr/bin/env bash
# Create .venv and install the project with its test tools. PyTorch is pinned to the release
# that pip takes from local wheels where they exist, instead of downloading gigabytes.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
if ! .venv/bin/python -c "import torch, torchvision" 2>/dev/null; then
  case "$(uname -m)" in
    aarch64) .venv/bin/pip install --quiet torch==2.9.1 torchvision==0.24.1 ;;
    *) .venv/bin/pip install --quiet torch==2.14.1 torchvision==0.29.1 ;;
  esac
fi
.venv/bin/pip install --quiet -e ".[dev]"
