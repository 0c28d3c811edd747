# Shared by tools/slurm_train.sh and tools/slurm_test.sh (sourced, with TOOLS and PARTITION
# set): PYTHONPATH, OMP_NUM_THREADS, and SRUN_OPTIONS, the srun options from GPUS, GPUS_PER_NODE,
# CPUS_PER_TASK and SRUN_ARGS. Inside an allocation (sbatch, salloc) the tasks run there, as a
# job step; GPUs are asked for only on a partition that has them.
GPUS=${GPUS:-8}
GPUS_PER_NODE=${GPUS_PER_NODE:-$(( GPUS < 8 ? GPUS : 8 ))}
CPUS_PER_TASK=${CPUS_PER_TASK:-5}
export PYTHONPATH="$TOOLS/..${PYTHONPATH:+:$PYTHONPATH}"
# Each task computes with the CPUs it was given (torchrun's default is 1 thread a process);
# without it, a task on a node without CPU binding would use every core of the node.
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-$CPUS_PER_TASK}

SRUN_OPTIONS=(--ntasks="$GPUS" --ntasks-per-node="$GPUS_PER_NODE"
              --cpus-per-task="$CPUS_PER_TASK" --kill-on-bad-exit=1)
if [ -n "${SLURM_JOB_ID:-}" ]; then
    PARTITION=${SLURM_JOB_PARTITION:-$PARTITION}
else
    SRUN_OPTIONS+=(-p "$PARTITION" --job-name="$JOB_NAME")
fi
if sinfo -h -p "$PARTITION" -o %G 2>/dev/null | grep -q gpu; then
    SRUN_OPTIONS+=(--gres=gpu:"$GPUS_PER_NODE")
fi
# shellcheck disable=SC2206
SRUN_OPTIONS+=(${SRUN_ARGS:-})
