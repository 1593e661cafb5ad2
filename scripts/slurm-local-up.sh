#!/usr/bin/env bash
# A one-node Slurm cluster on this machine, for the tests and for trying
# `ambs submit` without a real cluster: munged + slurmctld + slurmd from
# Debian's packages, no systemd, no cgroups (proctrack/linuxproc).
# Also installs slurm-wlm-torque, whose qsub/qstat run PBS scripts on Slurm.
#
# Usage (as root):  scripts/slurm-local-up.sh [up|down|status]
# Idempotent: running it again with everything up changes nothing.
set -euo pipefail
ACTION=${1:-up}
case "$ACTION" in
  -h|--help)
    sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"   # the comment above
    exit 0 ;;
  up|down|status) ;;
  *) echo "slurm-local-up.sh: unknown action '$ACTION' (usage: slurm-local-up.sh [up|down|status]; --help)" >&2
     exit 2 ;;
esac
CONF=/etc/slurm/slurm.conf

running() { [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

if [ "$ACTION" = down ]; then
  for pid in /run/slurm/slurmd.pid /run/slurm/slurmctld.pid /run/munge/munged.pid; do
    if running "$pid"; then kill "$(cat "$pid")"; fi
  done
  exit 0
fi
if [ "$ACTION" = status ]; then
  exec sinfo -N -l
fi
if [ "$(id -u)" != 0 ]; then
  echo "slurm-local-up.sh: run as root (it installs packages and starts daemons)" >&2
  exit 1
fi

# PMIx lets `srun --mpi=pmix` start Open MPI ranks. Slurm's plugin dlopens the
# unversioned pmix2/lib/libpmix.so, which only libpmix-dev ships (libpmix2 alone
# is not enough); slurmd loads it when it starts, and a slurmd that could not
# hangs the first pmix step and leaves the node completing for good. So it is
# installed before slurmd starts, and a slurmd that started without it is
# restarted below.
PMIX=/usr/lib/x86_64-linux-gnu/pmix2/lib/libpmix.so
NEW_PMIX=""
if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null || ! command -v qsub >/dev/null \
   || [ ! -e "$PMIX" ]; then
  [ -e "$PMIX" ] || NEW_PMIX=1
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends slurm-wlm munge slurm-wlm-torque libpmix2 libpmix-dev >/dev/null
fi

HOST=$(hostname -s)
if ! getent hosts "$HOST" >/dev/null; then
  echo "127.0.0.1 $HOST" >> /etc/hosts   # slurmd must resolve its own name
fi
# Declare at least 4 CPUs so a 3- or 4-rank job fits on a 2-core machine;
# config_overrides stops slurmd from draining the node for the mismatch.
NCPU=$(nproc); CPUS=$(( NCPU < 4 ? 4 : NCPU ))
MEM=$(slurmd -C | sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p')

[ -s /etc/munge/munge.key ] || mungekey --create --keyfile=/etc/munge/munge.key
chown munge:munge /etc/munge/munge.key && chmod 400 /etc/munge/munge.key
install -d -o munge -g munge -m 755 /run/munge
install -d -o slurm -g slurm /run/slurm /var/spool/slurmctld /var/log/slurm
install -d /var/spool/slurmd
running /run/munge/munged.pid || runuser -u munge -- /usr/sbin/munged

# slurm.conf takes one global Key=Value per line.
cat > "$CONF.new" <<CONF
ClusterName=local
SlurmctldHost=$HOST
SlurmUser=slurm
AuthType=auth/munge
MpiDefault=pmi2
ReturnToService=2
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SlurmdParameters=config_overrides
KillWait=30
SlurmctldPidFile=/run/slurm/slurmctld.pid
SlurmdPidFile=/run/slurm/slurmd.pid
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
SchedulerType=sched/backfill
SchedulerParameters=batch_sched_delay=0
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=1024
JobAcctGatherType=jobacct_gather/linux
AccountingStorageType=accounting_storage/none
NodeName=$HOST CPUs=$CPUS RealMemory=$MEM State=UNKNOWN
PartitionName=debug Nodes=$HOST Default=YES MaxTime=INFINITE State=UP
CONF
if cmp -s "$CONF.new" "$CONF"; then
  rm "$CONF.new"
else
  mv "$CONF.new" "$CONF"   # a new configuration needs fresh daemons
  for d in slurmd slurmctld; do
    if running /run/slurm/$d.pid; then kill "$(cat /run/slurm/$d.pid)"; fi
  done
  sleep 2
fi
if [ -n "$NEW_PMIX" ] && running /run/slurm/slurmd.pid; then
  kill "$(cat /run/slurm/slurmd.pid)"; sleep 2
fi
running /run/slurm/slurmctld.pid || slurmctld
running /run/slurm/slurmd.pid || slurmd

for _ in $(seq 120); do
  state=$(sinfo -h -n "$HOST" -o %T 2>/dev/null || true)
  case "$state" in
    idle|mixed|allocated|completing) break ;;
    drain*|inval*) scontrol update nodename="$HOST" state=resume || true ;;
  esac
  sleep 0.5
done
sinfo -N -l
