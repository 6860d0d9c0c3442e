#!/bin/sh
# Install (Debian's slurm-wlm + munge) and start a single-machine Slurm cluster for skyd's tests.
#
# Usage (as root): scripts/start-slurm.sh [--install]
#   --install   apt-get install slurm-wlm munge first when slurmctld is missing.
# Idempotent: a running cluster with the same configuration is left alone; a changed
# configuration is rewritten and the daemons restarted.
#
# The cluster: slurmctld plus two slurmd processes on this host (Slurm's "multiple slurmd"
# mode: NodeName=skyd-n1/skyd-n2, NodeHostname=this host, NodeAddr=127.0.0.1, one port each),
# each node declaring 2 CPUs, 2 GiB and 2 fake GPUs (GRES gpu:fake:2; its device files are
# character devices aliasing /dev/null, AutoDetect=off). Partitions:
#   lab     (default, PriorityTier=1)  both nodes
#   urgent  (PriorityTier=10)          both nodes; its jobs preempt lab's (PreemptMode=REQUEUE)
# No slurmdbd: sacct is unavailable, finished jobs stay visible to squeue/scontrol for
# MinJobAge seconds. SlurmUser is root; processes are tracked without cgroups (linuxproc).
# Stop it with: scripts/start-slurm.sh --stop
set -eu

conf_dir=/etc/slurm
state=/var/spool/skyd-slurm
logs=/var/log/skyd-slurm
ctld_port=6817
nodes="skyd-n1:17001 skyd-n2:17002"

if [ "$(id -u)" != 0 ]; then
    echo "start-slurm.sh: run as root (it installs packages and starts system daemons)" >&2
    exit 3
fi

pid_alive() { [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

stop_all() {
    for entry in $nodes; do
        name=${entry%%:*}
        if pid_alive "$state/slurmd-$name.pid"; then kill "$(cat "$state/slurmd-$name.pid")"; fi
    done
    if pid_alive "$state/slurmctld.pid"; then kill "$(cat "$state/slurmctld.pid")"; fi
    i=0
    while [ $i -lt 100 ]; do
        busy=0
        for f in "$state"/slurmctld.pid "$state"/slurmd-*.pid; do
            if pid_alive "$f"; then busy=1; fi
        done
        [ $busy = 1 ] || break
        sleep 0.1
        i=$((i + 1))
    done
}

if [ "${1:-}" = "--stop" ]; then
    stop_all
    echo "slurm stopped"
    exit 0
fi

if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null || ! command -v munged >/dev/null; then
    if [ "${1:-}" = "--install" ] && command -v apt-get >/dev/null; then
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurm-wlm munge >/dev/null
    else
        echo "start-slurm.sh: slurmctld/slurmd/munged not found; pass --install (apt-get install slurm-wlm munge)" >&2
        exit 3
    fi
fi

mkdir -p "$conf_dir" "$state" "$logs"

# munge: one key shared by every daemon and client (all on this host).
if [ ! -s /etc/munge/munge.key ]; then
    mkdir -p /etc/munge
    dd if=/dev/urandom of=/etc/munge/munge.key bs=1 count=128 2>/dev/null
fi
chown -R munge:munge /etc/munge
chmod 700 /etc/munge
chmod 400 /etc/munge/munge.key
mkdir -p /run/munge /var/lib/munge /var/log/munge
chown munge:munge /run/munge /var/lib/munge /var/log/munge
if ! munge -n >/dev/null 2>&1; then
    runuser -u munge -- /usr/sbin/munged
    i=0
    until munge -n >/dev/null 2>&1 || [ $i -ge 50 ]; do sleep 0.1; i=$((i + 1)); done
    munge -n >/dev/null || { echo "start-slurm.sh: munged did not start" >&2; exit 1; }
fi

host=$(hostname -s)
node_lines=""
names=""
for entry in $nodes; do
    name=${entry%%:*}
    port=${entry##*:}
    node_lines="${node_lines}NodeName=$name NodeHostname=$host NodeAddr=127.0.0.1 Port=$port CPUs=2 RealMemory=2048 Gres=gpu:fake:2 State=UNKNOWN
"
    names="${names:+$names,}$name"
done

new_conf=$(cat <<CONF
# Written by skyd's scripts/start-slurm.sh: a single-machine test cluster.
ClusterName=skyd-test
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$ctld_port
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=$state/ctld
SlurmdSpoolDir=$state/slurmd-%n
SlurmctldPidFile=$state/slurmctld.pid
SlurmdPidFile=$state/slurmd-%n.pid
SlurmctldLogFile=$logs/slurmctld.log
SlurmdLogFile=$logs/slurmd-%n.log
SlurmdParameters=config_overrides
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
ReturnToService=2
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=2
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
GresTypes=gpu
PreemptType=preempt/partition_prio
PreemptMode=REQUEUE
JobRequeue=1
MinJobAge=3600
KillWait=5
InactiveLimit=0
SlurmdTimeout=30
$node_lines
PartitionName=lab Nodes=$names Default=YES MaxTime=INFINITE State=UP PriorityTier=1 OverSubscribe=NO
PartitionName=urgent Nodes=$names Default=NO MaxTime=INFINITE State=UP PriorityTier=10 OverSubscribe=NO
CONF
)
# A GPU GRES needs device files (Slurm drops file-less GPUs): character devices that are
# /dev/null (1,3) stand in for them; a plain file works too, with an error in slurmd's log.
mkdir -p "$state/fake-gpus"
for n in 0 1; do
    dev="$state/fake-gpus/nvidia$n"
    [ -e "$dev" ] || mknod "$dev" c 1 3 2>/dev/null || touch "$dev"
done
new_gres="AutoDetect=off
NodeName=skyd-n[1-2] Name=gpu Type=fake File=$state/fake-gpus/nvidia[0-1]"

changed=0
if [ "$(cat "$conf_dir/slurm.conf" 2>/dev/null)" != "$new_conf" ]; then
    printf '%s\n' "$new_conf" > "$conf_dir/slurm.conf"
    changed=1
fi
if [ "$(cat "$conf_dir/gres.conf" 2>/dev/null)" != "$new_gres" ]; then
    printf '%s\n' "$new_gres" > "$conf_dir/gres.conf"
    changed=1
fi
if [ $changed = 1 ]; then
    stop_all
fi

mkdir -p "$state/ctld"
if ! pid_alive "$state/slurmctld.pid"; then
    slurmctld
fi
for entry in $nodes; do
    name=${entry%%:*}
    mkdir -p "$state/slurmd-$name"
    if ! pid_alive "$state/slurmd-$name.pid"; then
        slurmd -N "$name"
    fi
done

# Ready when every node answers and is schedulable (bounded wait; nodes come up in seconds).
i=0
while [ $i -lt 300 ]; do
    bad=$(sinfo -h -N -o '%N %t' 2>/dev/null | grep -cvE ' (idle|mix|alloc)$' || true)
    count=$(sinfo -h -N -o '%N' 2>/dev/null | sort -u | wc -l)
    if [ "$count" -ge 2 ] && [ "$bad" = 0 ]; then
        echo "slurm cluster skyd-test up: nodes $names, partitions lab (default) and urgent"
        exit 0
    fi
    # a node left DOWN by an earlier run comes back once slurmd answers
    scontrol update NodeName="$names" State=RESUME >/dev/null 2>&1 || true
    sleep 0.2
    i=$((i + 1))
done
echo "start-slurm.sh: nodes did not become idle; see $logs/ and 'sinfo -N -l'" >&2
sinfo -N -l >&2 || true
exit 1
