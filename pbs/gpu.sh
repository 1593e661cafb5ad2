#!/bin/bash
# One ambs search across a PBS allocation: MPI rank 0 runs the search and
# writes results.csv, every other rank trains candidate models.
# Rendered by `ambs submit`; change the values here or render anew.
#PBS -N ambs-mlp
# GPU nodes: 4 worker ranks a node (one a GPU) plus the master on the first, which takes no GPU.
#PBS -l select=4:ncpus=32:mpiprocs=5:ngpus=4
#PBS -l place=scatter
# Time limit 02:00:00 = the search's own --walltime (7080 s) + --warning (120 s).
#PBS -l walltime=02:00:00
#PBS -A MYPROJECT
#PBS -q gpu
#PBS -j oe
#PBS -o ambs-job.out

set -u
# What to search, and where the results go (a later job resumes the same run).
PROBLEM=problems.mlp_digits
METHOD=ambs
MAX_EVALS=2000
RUN_DIR=runs/mlp_digits-ambs
# The ambs command, as the words of an array: a path with a space stays one word.
AMBS=(ambs)
cd "${PBS_O_WORKDIR:-$PWD}"
# One output file per job of a chain, beside the run (#PBS -o cannot name the job's id).
JOB_ID=${PBS_JOBID:-${SLURM_JOB_ID:-$$}}
mkdir -p "$RUN_DIR"
exec >>"$RUN_DIR/job-$JOB_ID.out" 2>&1
export OMP_NUM_THREADS=6
export AMBS_LAUNCHER=mpiexec
# Ranks and hosts as PBS hands them over: one line per rank in PBS_NODEFILE.
# Under Slurm's PBS wrappers there is no PBS_NODEFILE; SLURM_NTASKS says it.
if [ -n "${PBS_NODEFILE:-}" ] && [ -f "$PBS_NODEFILE" ]; then
  HOSTFILE=$PBS_NODEFILE
  # One line per rank: the master and 4 workers on the first node, 4 on each other.
  HOSTFILE="$RUN_DIR/hosts-$JOB_ID"
  awk '!seen[$0]++' "$PBS_NODEFILE" |
    awk -v g=4 'NR == 1 { print } { for (i = 0; i < g; i++) print }' > "$HOSTFILE"
  NRANKS=$(wc -l < "$HOSTFILE")
  # --hostfile: Hydra (MPICH, Intel MPI) and Open MPI both read it.
  HOSTS=(--hostfile "$HOSTFILE")
  NODES=$(sort -u "$PBS_NODEFILE" | paste -sd, -)
else
  HOSTFILE=""
  NRANKS=17
  HOSTS=()
  NODES=${SLURM_JOB_NODELIST:-$(hostname -s)}
fi
export AMBS_HOSTFILE="$HOSTFILE" NRANKS
RESUME=""
if [ -f "$RUN_DIR/run.json" ]; then RESUME="--resume"; fi
echo "ambs job $JOB_ID: $NRANKS ranks on $NODES"

# PBS sends no warning before the walltime kill: the search's own --walltime
# is the timer, set 120 s short of the job's walltime.
# Stop signals reach the search as USR1, which Hydra and Open MPI's mpirun
# both pass on to the ranks; also one that comes before the search starts.
STOP=""
trap 'STOP=1; if [ -n "${PID:-}" ]; then kill -USR1 "$PID" 2>/dev/null; fi' USR1 TERM
if [ -n "$STOP" ]; then echo "ambs: stop signal before the search started; a later job resumes"; exit 0; fi
mpiexec -n "$NRANKS" ${HOSTS[@]+"${HOSTS[@]}"} "${AMBS[@]}" search "$PROBLEM" --method "$METHOD" --max-evals "$MAX_EVALS" \
    --evaluator mpi --output "$RUN_DIR" $RESUME \
    --walltime 7080 --grace 60 --gpus-per-node 4 &
PID=$!
# A signal between the launch and the line above: give the search a moment to start.
if [ -n "$STOP" ]; then sleep 2; kill -USR1 "$PID" 2>/dev/null; fi
# `wait` returns early (128+signal) when a trapped signal arrives: wait again
# while the search runs, and take its own exit status once it is done.
while :; do
  wait "$PID"; rc=$?
  if [ $rc -le 128 ]; then break; fi
  if ! kill -0 "$PID" 2>/dev/null; then
    wait "$PID" 2>/dev/null; last=$?
    if [ $last -ne 127 ]; then rc=$last; fi
    break
  fi
done
exit $rc
