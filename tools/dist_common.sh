# Shared by tools/dist_train.sh and tools/dist_test.sh (sourced, with GPUS set): dist_run SCRIPT
# [ARGS...] runs tools/SCRIPT with ARGS in GPUS processes under torchrun, on NNODES machines
# (NODE_RANK, MASTER_ADDR and PORT as torchrun's --node_rank, --master_addr, --master_port).
NNODES=${NNODES:-1}
NODE_RANK=${NODE_RANK:-0}
PORT=${PORT:-29500}
MASTER_ADDR=${MASTER_ADDR:-"127.0.0.1"}

dist_run() {
    PYTHONPATH="$(dirname "$0")/..":$PYTHONPATH \
    python -m torch.distributed.run \
        --nnodes="$NNODES" --node_rank="$NODE_RANK" --master_addr="$MASTER_ADDR" \
        --nproc_per_node="$GPUS" --master_port="$PORT" \
        "$(dirname "$0")/$1" "${@:2}"
}
