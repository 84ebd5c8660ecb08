#!/usr/bin/env bash
# One-call GPU run of the training programmes (starter weights, outpainting).
#
# Run on a lent GPU machine from the repository root. Carry the compact photo pool (make it
# here first: `inpaint data collect --compact data/train_pool_compact`, about 14 MB); the
# committed snapshots in models/train_state travel with the working tree:
#
#   device run: carry ["data/train_pool_compact"],
#               command "bash scripts/gpu_programme.sh aot:5 rfr:2 srn:1.5"
#
# Each ARCH:MINUTES resumes that programme from models/train_state in bf16 on the GPU (fp32
# on a machine without one), trains for MINUTES (keep the sum inside the 9-minute budget: each
# programme also evaluates against its baseline on the CPU at the end, about half a minute),
# and copies its new snapshot (fp16 EMA weights + JSON state) to $OUT. Fold the results back
# into the CPU programme by copying those files over models/train_state/ here: the next CPU
# session resumes from them.
set -euo pipefail
[ $# -gt 0 ] || set -- aot:8
DATA=${DATA:-data/train_pool_compact}
STATE=${STATE:-models/train_state}
OUT=${OUT:-/tmp/gpu_out}
mkdir -p "$OUT"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
PY=${PYTHON:-python3}
[ -d "$DATA" ] || { echo "no photo pool at $DATA (carry data/train_pool_compact)" >&2; exit 2; }
"$PY" -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), torch.cuda.get_device_name(0) if torch.cuda.is_available() else '')"
DEVICE=cuda
"$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" || DEVICE=cpu
status=0
for job in "$@"; do
    ARCH=${job%%:*}
    MINUTES=${job#*:}
    [ "$MINUTES" != "$job" ] || MINUTES=8
    if [ ! -f "$STATE/$ARCH.json" ]; then
        echo "no snapshot $STATE/$ARCH.json" >&2; status=2; continue
    fi
    # a phase planned for a grown variant: grow first, as the plan says (keeps the function)
    WANT=$("$PY" -c "import sys; from inpaint_gui.training import programme as P
st = P.read_state(P.state_path(sys.argv[1], sys.argv[2]))
print(P.growth_needed(st, P.phase_at(st['plan'], st['step'])) or '')" "$STATE" "$ARCH")
    if [ -n "$WANT" ]; then
        "$PY" -m inpaint_gui.cli train --programme "$ARCH" --state-dir "$STATE" --grow "$WANT" \
            --grow-note "grown by the one-call GPU run, as the plan's next phase says" || { status=1; continue; }
    fi
    "$PY" -m inpaint_gui.cli train --programme "$ARCH" --data "$DATA" --minutes "$MINUTES" \
        --device "$DEVICE" --state-dir "$STATE" --amp --threads "$(nproc)" --workers 8 \
        --ckpt-every 1000 --val-every 1000 --log-every 200 2>&1 | tee "$OUT/${ARCH}_train.log" || status=1
    cp "$STATE/$ARCH.json" "$STATE/${ARCH}_g.pt" "$OUT/"
    if [ -f "$STATE/${ARCH}_d.pt" ]; then cp "$STATE/${ARCH}_d.pt" "$OUT/"; fi
done
echo "snapshots in $OUT"
exit $status
