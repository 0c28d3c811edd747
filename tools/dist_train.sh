#!/usr/bin/env bash
# Multi-process training with torchrun (PyTorch DDP through MMEngine).
# Usage: bash tools/dist_train.sh CONFIG GPUS [train.py args...]
# Several machines: set NNODES, NODE_RANK, MASTER_ADDR (and PORT) on each. On CPU the gloo
# backend is used automatically.
CONFIG=$1
GPUS=$2

source "$(dirname "$0")/dist_common.sh"
dist_run train.py "$CONFIG" --launcher pytorch "${@:3}"
