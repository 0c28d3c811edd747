#!/usr/bin/env bash
# A one-node Slurm cluster from Debian's packages, for the Slurm tests
# (tests/test_tools/test_slurm.py), as root.
#   bash .ci/slurm_cluster.sh install     # apt-get slurmctld slurmd slurm-client munge if missing
#   bash .ci/slurm_cluster.sh start DIR   # munge key + munged, slurm.conf in DIR, slurmctld, slurmd
#   bash .ci/slurm_cluster.sh stop DIR    # stop the daemons started by `start DIR`
# `start` prints the SLURM_CONF to export. Every step is idempotent; every wait is bounded.
set -eu
ACTION=${1:-install}
DIR=${2:-/tmp/glmix_slurm}

install() {
    if command -v slurmctld >/dev/null && command -v slurmd >/dev/null && \
       command -v sbatch >/dev/null && command -v munged >/dev/null; then
        return
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -y -q slurmctld slurmd slurm-client munge
}

start() {
    mkdir -p "$DIR"/{state,spool,log}
    if [ ! -s /etc/munge/munge.key ]; then
        mkdir -p /etc/munge
        head -c 1024 /dev/urandom > /etc/munge/munge.key
    fi
    chown munge:munge /etc/munge/munge.key
    chmod 400 /etc/munge/munge.key
    mkdir -p /run/munge /var/log/munge /var/lib/munge
    chown munge:munge /run/munge /var/log/munge /var/lib/munge
    if ! pgrep -u munge munged >/dev/null; then
        su -s /bin/sh munge -c munged
    fi
    local host cpus
    host=$(hostname -s)
    # nproc counts OMP_NUM_THREADS as the CPUs it may use (the test workers set it to 1).
    cpus=$(env -u OMP_NUM_THREADS -u OMP_THREAD_LIMIT nproc)
    # cred_expire (default 120 s) is also how long Slurm holds a requeued job back: the hold
    # keeps its new launch out of the second in which the node revoked the job's credential
    # (a launch in that second is refused: "Job credential revoked", the job ends FAILED).
    # 15 s here, so that the requeue test waits 16 s instead of 121.
    cat > "$DIR/slurm.conf" <<CONF
ClusterName=glmix
SlurmctldHost=$host
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=cred_expire=15
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
JobRequeue=1
ReturnToService=2
MpiDefault=none
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/slurmctld.pid
SlurmdPidFile=$DIR/slurmd.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
SlurmctldDebug=debug
SlurmdDebug=debug
KillWait=30
NodeName=$host CPUs=$cpus State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP OverSubscribe=YES
CONF
    export SLURM_CONF=$DIR/slurm.conf
    if pgrep -x slurmctld >/dev/null && ! { [ -f "$DIR/slurmctld.pid" ] && \
            [ "$(pgrep -x slurmctld)" = "$(cat "$DIR/slurmctld.pid")" ]; }; then
        echo "slurm_cluster.sh: a slurmctld of another cluster runs; stop it first" >&2
        exit 1
    fi
    [ -f "$DIR/slurmctld.pid" ] && kill -0 "$(cat "$DIR/slurmctld.pid")" 2>/dev/null || \
        slurmctld -f "$SLURM_CONF"
    [ -f "$DIR/slurmd.pid" ] && kill -0 "$(cat "$DIR/slurmd.pid")" 2>/dev/null || \
        slurmd -f "$SLURM_CONF"
    for _ in $(seq 60); do  # up to a minute for the node to be idle
        if sinfo -h -o %T 2>/dev/null | grep -q idle; then
            echo "SLURM_CONF=$SLURM_CONF"
            return
        fi
        sleep 1
    done
    echo "slurm_cluster.sh: the node did not come up; logs in $DIR/log" >&2
    exit 1
}

stop() {
    for daemon in slurmd slurmctld; do
        if [ -f "$DIR/$daemon.pid" ]; then
            kill "$(cat "$DIR/$daemon.pid")" 2>/dev/null || true
            rm -f "$DIR/$daemon.pid"
        fi
    done
}

case $ACTION in
    install) install ;;
    start) start ;;
    stop) stop ;;
    *) echo "usage: $0 install | start DIR | stop DIR" >&2; exit 2 ;;
esac
