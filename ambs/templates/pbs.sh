#!/bin/bash
# One ambs search across a PBS allocation: MPI rank 0 runs the search and
# writes results.csv, every other rank trains candidate models.
# Rendered by `ambs submit`; change the values here or render anew.
# (PBS Pro / OpenPBS sites may prefer: -l select=@nodes@:ncpus=@ranks_per_node@:mpiprocs=@ranks_per_node@)
#PBS -N @job_name@
#PBS -l nodes=@nodes@:ppn=@ranks_per_node@@pbs_gpus@
#PBS -l walltime=@walltime@
#PBS -A @account@
#PBS -q @queue@
#PBS -j oe
#PBS -o @job_output@

set -u
# What to search, and where the results go (a later job resumes the same run).
PROBLEM=@problem@
METHOD=@method@
MAX_EVALS=@max_evals@
RUN_DIR=@run_dir@
# The ambs command, as the words of an array: a path with a space stays one word.
AMBS=(@ambs@)
cd @workdir@
export OMP_NUM_THREADS=@threads@
# Ranks and hosts as PBS hands them over: one line per rank in PBS_NODEFILE.
# Under Slurm's PBS wrappers there is no PBS_NODEFILE; SLURM_NTASKS says it.
if [ -n "${PBS_NODEFILE:-}" ] && [ -f "$PBS_NODEFILE" ]; then
  NRANKS=$(wc -l < "$PBS_NODEFILE")
  HOSTS=(-f "$PBS_NODEFILE")
  NODES=$(sort -u "$PBS_NODEFILE" | paste -sd, -)
else
  NRANKS=${SLURM_NTASKS:-@total_ranks@}
  HOSTS=()
  NODES=${SLURM_JOB_NODELIST:-$(hostname -s)}
fi
RESUME=""
if [ -f "$RUN_DIR/run.json" ]; then RESUME="--resume"; fi
echo "ambs job ${PBS_JOBID:-${SLURM_JOB_ID:-?}}: $NRANKS ranks on $NODES"

# PBS sends no warning before the walltime kill: the search's own --walltime
# is the timer, set @warning@ s short of the job's walltime.
# Stop signals are passed on to the search, also one that comes before it starts.
STOP=""
trap 'STOP=1; if [ -n "${PID:-}" ]; then kill -USR1 "$PID" 2>/dev/null; fi' USR1 TERM
if [ -n "$STOP" ]; then echo "ambs: stop signal before the search started; a later job resumes"; exit 0; fi
@mpiexec@ -n "$NRANKS" ${HOSTS[@]+"${HOSTS[@]}"} "${AMBS[@]}" search "$PROBLEM" --method "$METHOD" --max-evals "$MAX_EVALS" \
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
