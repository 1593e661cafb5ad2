#!/bin/bash
# One ambs search across a Slurm allocation: MPI rank 0 runs the search and
# writes results.csv, every other rank trains candidate models.
# Rendered by `ambs submit`; change the values here or render anew.
#SBATCH --job-name=@job_name@
#SBATCH --nodes=@nodes@
#SBATCH --ntasks-per-node=@ranks_per_node@
#SBATCH --cpus-per-task=@cpus_per_task@
#SBATCH --gpus-per-node=@gpus_per_node@
#SBATCH --time=@walltime@
#SBATCH --account=@account@
#SBATCH --partition=@queue@
#SBATCH --output=@job_output@
# USR1 to this script @warning@ s before the time limit; it is passed on to
# the search, which stops handing out work and exits cleanly with a full CSV.
#SBATCH --signal=B:USR1@@warning@

set -u
# What to search, and where the results go (a later job resumes the same run).
PROBLEM=@problem@
METHOD=@method@
MAX_EVALS=@max_evals@
RUN_DIR=@run_dir@
AMBS=@ambs@
cd @workdir@
export OMP_NUM_THREADS=@threads@
# The first job starts the run; a later one (a chain, a resubmission) resumes it.
RESUME=""
if [ -f "$RUN_DIR/run.json" ]; then RESUME="--resume"; fi
echo "ambs job ${SLURM_JOB_ID:-?}: ${SLURM_NTASKS:-?} ranks on ${SLURM_JOB_NODELIST:-?}"

@launcher@ $AMBS search "$PROBLEM" --method "$METHOD" --max-evals "$MAX_EVALS" \
    --evaluator mpi --output "$RUN_DIR" $RESUME \
    --walltime @search_walltime@ --grace @grace@@search_args@ &
PID=$!
trap 'kill -USR1 $PID 2>/dev/null' USR1 TERM
wait $PID; rc=$?
# `wait` returns early (128+signal) when a trapped signal arrives: wait again.
while [ $rc -gt 128 ] && kill -0 $PID 2>/dev/null; do wait $PID; rc=$?; done
exit $rc
