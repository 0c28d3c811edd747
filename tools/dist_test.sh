#!/usr/bin/env bash
# Multi-process testing with torchrun (PyTorch DDP through MMEngine).
# Usage: bash tools/dist_test.sh CONFIG CHECKPOINT GPUS [test.py args...]
# Several machines: set NNODES, NODE_RANK, MASTER_ADDR (and PORT) on each. On CPU the gloo
# backend is used automatically.
CONFIG=$1
CHECKPOINT=$2
GPUS=$3

source "$(dirname "$0")/dist_common.sh"
dist_run test.py "$CONFIG" "$CHECKPOINT" --launcher pytorch "${@:4}"
