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
GPUS=${GPUS:-8}
GPUS_PER_NODE=${GPUS_PER_NODE:-$(( GPUS < 8 ? GPUS : 8 ))}
CPUS_PER_TASK=${CPUS_PER_TASK:-5}
SRUN_ARGS=${SRUN_ARGS:-""}

TOOLS=$(cd "$(dirname "$0")" && pwd)
[ -f "$TOOLS/test.py" ] || TOOLS=${SLURM_SUBMIT_DIR:-$PWD}/tools
export PYTHONPATH="$TOOLS/..${PYTHONPATH:+:$PYTHONPATH}"

if [ -n "${SLURM_JOB_ID:-}" ]; then
    PLACE=()
    PARTITION=${SLURM_JOB_PARTITION:-$PARTITION}
else
    PLACE=(-p "$PARTITION" --job-name="$JOB_NAME")
fi
GRES=()
if sinfo -h -p "$PARTITION" -o %G 2>/dev/null | grep -q gpu; then
    GRES=(--gres=gpu:"$GPUS_PER_NODE")
fi

# shellcheck disable=SC2086
exec srun "${PLACE[@]}" "${GRES[@]}" --ntasks="$GPUS" --ntasks-per-node="$GPUS_PER_NODE" \
    --cpus-per-task="$CPUS_PER_TASK" --kill-on-bad-exit=1 ${SRUN_ARGS} \
    python -u "$TOOLS/test.py" "$CONFIG" "$CHECKPOINT" --launcher=slurm "${@:5}"
