#!/usr/bin/env bash
# Training on a Slurm cluster (MMDetection's interface).
# Usage: [GPUS=8] [GPUS_PER_NODE=8] [CPUS_PER_TASK=5] [SRUN_ARGS=...] \
#        bash tools/slurm_train.sh PARTITION JOB_NAME CONFIG WORK_DIR [train.py args...]
# GPUS is the number of processes (one per GPU; on a partition without GPUs, CPU processes
# using gloo, and no GPU is requested). Run from an sbatch script (or submitted with sbatch),
# it starts its tasks in that allocation, forwards Slurm's warning signal (sbatch
# --signal=B:USR1@SECONDS) to them, requeues the job when training stopped on a signal
# (scontrol requeue), and a requeued job continues with --resume. See docs/clusters.md.
set -u
PARTITION=$1
JOB_NAME=$2
CONFIG=$3
WORK_DIR=$4
PY_ARGS=("${@:5}")

# sbatch runs a copy of this script: find tools/ from the submission folder then.
TOOLS=$(cd "$(dirname "$0")" && pwd)
[ -f "$TOOLS/train.py" ] || TOOLS=${SLURM_SUBMIT_DIR:-$PWD}/tools
source "$TOOLS/slurm_common.sh"
if [ "${SLURM_RESTART_COUNT:-0}" -gt 0 ]; then  # a requeued job continues its run
    PY_ARGS+=(--resume)
fi

srun "${SRUN_OPTIONS[@]}" python -u "$TOOLS/train.py" "$CONFIG" --work-dir="$WORK_DIR" \
    --launcher=slurm "${PY_ARGS[@]}" &
STEP=$!
# Slurm's warning (sbatch --signal=B:USR1@SECONDS) reaches this shell only: pass it on.
trap 'kill -USR1 "$STEP" 2>/dev/null' USR1
# A SIGTERM for the tasks reaches them from Slurm itself: only wait for them.
trap ':' TERM
while true; do
    wait "$STEP"
    CODE=$?
    kill -0 "$STEP" 2>/dev/null || break  # wait returned for a trapped signal: wait again
done
# 128 + SIGINT / SIGUSR1 / SIGTERM: training stopped cleanly on a signal and saved its state.
if [ -n "${SLURM_JOB_ID:-}" ] && { [ "$CODE" -eq 130 ] || [ "$CODE" -eq 138 ] || \
                                   [ "$CODE" -eq 143 ]; }; then
    echo "Training stopped on a signal (exit code $CODE): requeueing job $SLURM_JOB_ID."
    scontrol requeue "$SLURM_JOB_ID"
fi
exit "$CODE"
