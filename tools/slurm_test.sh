#!/usr/bin/env bash
# Testing on a Slurm cluster (MMDetection's interface).
# Usage: [GPUS=8] [GPUS_PER_NODE=8] [CPUS_PER_TASK=5] [SRUN_ARGS=...] \
#        bash tools/slurm_test.sh PARTITION JOB_NAME CONFIG CHECKPOINT [test.py args...]
# As tools/slurm_train.sh: GPUS processes (CPU processes with gloo on a partition without
# GPUs, no GPU requested there); inside an sbatch allocation it runs there. docs/clusters.md.
set -u
PARTITION=$1
JOB_NAME=$2
CONFIG=$3
CHECKPOINT=$4

TOOLS=$(cd "$(dirname "$0")" && pwd)
[ -f "$TOOLS/test.py" ] || TOOLS=${SLURM_SUBMIT_DIR:-$PWD}/tools
source "$TOOLS/slurm_common.sh"

exec srun "${SRUN_OPTIONS[@]}" python -u "$TOOLS/test.py" "$CONFIG" "$CHECKPOINT" \
    --launcher=slurm "${@:5}"
