#!/usr/bin/env bash
# Test a checkpoint on several processes (one per GPU, or CPU processes with the gloo backend) with torchrun; the
# test set is sharded across the processes and the metrics collected by MMEngine.
#   bash tools/dist_test.sh CONFIG CHECKPOINT NUM_PROCS [test.py options]
#   NNODES=2 NODE_RANK=0 MASTER_ADDR=10.0.0.1 bash tools/dist_test.sh CONFIG CHECKPOINT 8   # on each machine
#   PYTHON=/path/to/venv/bin/python bash tools/dist_test.sh CONFIG CHECKPOINT 8            # another interpreter
# Without CUDA, tools/test.py switches to the gloo backend by itself.
set -euo pipefail
if [ $# -lt 3 ]; then
    echo "usage: bash tools/dist_test.sh CONFIG CHECKPOINT NUM_PROCS [test.py options]" >&2
    exit 2
fi
CONFIG=$1
CHECKPOINT=$2
NPROCS=$3
NNODES=${NNODES:-1}
NODE_RANK=${NODE_RANK:-0}
PORT=${PORT:-29500}
MASTER_ADDR=${MASTER_ADDR:-"127.0.0.1"}
ROOT="$(cd "$(dirname "$0")/.." && pwd)"

PYTHONPATH="$ROOT:${PYTHONPATH:-}" \
"${PYTHON:-python}" -m torch.distributed.run \
    --nnodes="$NNODES" \
    --node_rank="$NODE_RANK" \
    --master_addr="$MASTER_ADDR" \
    --nproc_per_node="$NPROCS" \
    --master_port="$PORT" \
    "$ROOT/tools/test.py" \
    "$CONFIG" \
    "$CHECKPOINT" \
    --launcher pytorch "${@:4}"
