#!/bin/bash
# One ambs search across a PBS allocation: MPI rank 0 runs the search and
# writes results.csv, every other rank trains candidate models.
# Rendered by `ambs submit`; change the values here or render anew.
#PBS -N @job_name@
# GPU nodes: @gpus_per_node@ worker ranks a node (one a GPU) plus the master on the first, which takes no GPU.
#PBS -l @pbs_select@
#PBS -l mem=@pbs_mem@
#PBS -l place=@pbs_place@
#PBS @pbs_exclusive@
# Time limit @walltime@ = the search's own --walltime (@search_walltime@ s) + --warning (@warning@ s).
#PBS -l walltime=@walltime@
#PBS -A @account@
#PBS -q @queue@
#PBS -r @requeue@
#PBS -j oe
#PBS -o @job_output@
@directives@

set -u
# What to search, and where the results go (a later job resumes the same run).
PROBLEM=@problem@
METHOD=@method@
MAX_EVALS=@max_evals@
RUN_DIR=@run_dir@
# The ambs command, as the words of an array: a path with a space stays one word.
AMBS=(@ambs@)
cd @workdir@
# One output file per job of a chain, beside the run (#PBS -o cannot name the job's id).
JOB_ID=${PBS_JOBID:-${SLURM_JOB_ID:-$$}}
mkdir -p "$RUN_DIR"
exec >>"$RUN_DIR/job-$JOB_ID.out" 2>&1
@setup@
export OMP_NUM_THREADS=@threads@
export AMBS_LAUNCHER=@launcher_env@
# Ranks and hosts as PBS hands them over: one line per rank in PBS_NODEFILE.
# Under Slurm's PBS wrappers there is no PBS_NODEFILE; SLURM_NTASKS says it.
if [ -n "${PBS_NODEFILE:-}" ] && [ -f "$PBS_NODEFILE" ]; then
  HOSTFILE=$PBS_NODEFILE
#@gpu   # One line per rank: the master and @gpus_per_node@ workers on the first node, @gpus_per_node@ on each other.
#@gpu   HOSTFILE="$RUN_DIR/hosts-$JOB_ID"
#@gpu   awk '!seen[$0]++' "$PBS_NODEFILE" |
#@gpu     awk -v g=@gpus_per_node@ 'NR == 1 { print } { for (i = 0; i < g; i++) print }' > "$HOSTFILE"
#@slots   # Torque lists a node once per core (ppn): @torque_slots@ lines a node, one per rank.
#@slots   HOSTFILE="$RUN_DIR/hosts-$JOB_ID"
#@slots   awk '!seen[$0]++' "$PBS_NODEFILE" | awk -v r=@torque_slots@ '{ for (i = 0; i < r; i++) print }' > "$HOSTFILE"
  NRANKS=$(wc -l < "$HOSTFILE")
  # --hostfile: Hydra (MPICH, Intel MPI) and Open MPI both read it.
  HOSTS=(--hostfile "$HOSTFILE")
  NODES=$(sort -u "$PBS_NODEFILE" | paste -sd, -)
else
  HOSTFILE=""
  NRANKS=@total_ranks@
  HOSTS=()
  NODES=${SLURM_JOB_NODELIST:-$(hostname -s)}
fi
export AMBS_HOSTFILE="$HOSTFILE" NRANKS
RESUME=""
if [ -f "$RUN_DIR/run.json" ]; then RESUME="--resume"; fi
echo "ambs job $JOB_ID: $NRANKS ranks on $NODES"

# PBS sends no warning before the walltime kill: the search's own --walltime
# is the timer, set @warning@ s short of the job's walltime.
# Stop signals reach the search as USR1, which Hydra and Open MPI's mpirun
# both pass on to the ranks; also one that comes before the search starts.
STOP=""
trap 'STOP=1; if [ -n "${PID:-}" ]; then kill -USR1 "$PID" 2>/dev/null; fi' USR1 TERM
if [ -n "$STOP" ]; then echo "ambs: stop signal before the search started; a later job resumes"; exit 0; fi
@launch@ "${AMBS[@]}" search "$PROBLEM" --method "$METHOD" --max-evals "$MAX_EVALS" \
    --evaluator mpi --output "$RUN_DIR" $RESUME \
    --walltime @search_walltime@ --grace @grace@@search_args@ &
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
