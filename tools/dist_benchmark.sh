#!/usr/bin/env bash
# The benchmark on several processes (one per GPU, or CPU processes with the gloo backend) with torchrun: the
# images are sharded across the processes and the metrics collected by MMEngine, as in mmpretrain's and mmseg's
# tools/dist_test.sh.
#   bash tools/dist_benchmark.sh NUM_PROCS [benchmark.py options]
#   NNODES=2 NODE_RANK=0 MASTER_ADDR=10.0.0.1 bash tools/dist_benchmark.sh 8 ...   # on each machine
# On slurm: srun -p PARTITION --ntasks=8 --gres=gpu:8 python tools/benchmark.py ... --launcher slurm
set -euo pipefail
if [ $# -lt 1 ]; then
    echo "usage: bash tools/dist_benchmark.sh NUM_PROCS [benchmark.py options]" >&2
    exit 2
fi
NPROCS=$1
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
    "$ROOT/tools/benchmark.py" \
    --launcher pytorch "${@:2}"
