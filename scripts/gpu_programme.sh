#!/usr/bin/env bash
# One-call GPU run of the training programmes (issue: starter weights / outpainting).
#
# Run on a lent GPU machine from the repository root, with the compact photo pool carried
# along (make it here first: `inpaint data collect --compact data/train_pool_compact`, about
# 15 MB) and models/train_state holding the committed snapshots:
#
#   device run: carry ["data/train_pool_compact", "models/train_state"],
#               command "bash scripts/gpu_programme.sh aot 8"      (arch, minutes of training)
#
# It resumes ARCH's programme from models/train_state in bf16 on the GPU, trains for MINUTES
# (default 8, inside the 9-minute budget), evaluates against Telea on the CPU, and copies the
# new snapshot (fp16 EMA weights + JSON state) to $OUT. Fold it back into the CPU programme by
# copying those files over models/train_state/ here: the next CPU session resumes from them.
set -euo pipefail
ARCH=${1:-aot}
MINUTES=${2:-8}
DATA=${DATA:-data/train_pool_compact}
STATE=${STATE:-models/train_state}
OUT=${OUT:-/tmp/gpu_out}
mkdir -p "$OUT"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
PY=${PYTHON:-python3}
[ -d "$DATA" ] || { echo "no photo pool at $DATA (carry data/train_pool_compact)" >&2; exit 2; }
[ -f "$STATE/$ARCH.json" ] || { echo "no snapshot $STATE/$ARCH.json" >&2; exit 2; }
"$PY" -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), torch.cuda.get_device_name(0) if torch.cuda.is_available() else '')"
DEVICE=cuda
"$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" || DEVICE=cpu
"$PY" -m inpaint_gui.cli train --programme "$ARCH" --data "$DATA" --minutes "$MINUTES" --device "$DEVICE" --state-dir "$STATE" \
    --amp --threads "$(nproc)" --workers 8 --ckpt-every 1000 --val-every 1000 --log-every 200 \
    2>&1 | tee "$OUT/${ARCH}_train.log"
cp "$STATE/$ARCH.json" "$STATE/${ARCH}_g.pt" "$OUT/"
if [ -f "$STATE/${ARCH}_d.pt" ]; then cp "$STATE/${ARCH}_d.pt" "$OUT/"; fi
echo "snapshot in $OUT"
