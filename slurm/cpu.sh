#!/bin/bash
# One ambs search across a Slurm allocation: MPI rank 0 runs the search and
# writes results.csv, every other rank trains candidate models.
# Rendered by `ambs submit`; change the values here or render anew.
#SBATCH --job-name=ambs-mlp
#SBATCH --nodes=8
#SBATCH --ntasks-per-node=16
#SBATCH --cpus-per-task=4
#SBATCH --time=02:00:00
#SBATCH --account=MYPROJECT
#SBATCH --partition=normal
# A requeued job keeps its id (%j): its output is appended, and it resumes the run.
#SBATCH --output=ambs-%j.out
#SBATCH --open-mode=append
# Time limit 02:00:00 = the search's own --walltime (7080 s) + --warning (120 s).
# USR1 to this script 120 s before the time limit; it is passed on to
# the search, which stops handing out work and exits cleanly with a full CSV.
#SBATCH --signal=B:USR1@120

set -u
# What to search, and where the results go (a later job resumes the same run).
PROBLEM=problems.mlp_digits
METHOD=ambs
MAX_EVALS=2000
RUN_DIR=runs/mlp_digits-ambs
# The ambs command, as the words of an array: a path with a space stays one word.
AMBS=(ambs)
cd "${SLURM_SUBMIT_DIR:-$PWD}"
export OMP_NUM_THREADS=4
export AMBS_LAUNCHER=mpiexec
# The first job starts the run; a later one (a chain, a requeue) resumes it.
RESUME=""
if [ -f "$RUN_DIR/run.json" ]; then RESUME="--resume"; fi
echo "ambs job ${SLURM_JOB_ID:-?}: ${SLURM_NTASKS:-?} ranks on ${SLURM_JOB_NODELIST:-?}"

# Stop signals reach the search as USR1, which srun, Hydra and Open MPI's
# mpirun all pass on to the ranks (mpirun answers TERM by killing them);
# also one that comes before the search starts.
STOP=""
trap 'STOP=1; if [ -n "${PID:-}" ]; then kill -USR1 "$PID" 2>/dev/null; fi' USR1 TERM
if [ -n "$STOP" ]; then echo "ambs: stop signal before the search started; a later job resumes"; exit 0; fi
mpiexec -n "$SLURM_NTASKS" "${AMBS[@]}" search "$PROBLEM" --method "$METHOD" --max-evals "$MAX_EVALS" \
    --evaluator mpi --output "$RUN_DIR" $RESUME \
    --walltime 7080 --grace 60 --threads-per-worker 4 &
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
