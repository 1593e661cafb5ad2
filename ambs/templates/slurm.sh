#!/bin/bash
# One ambs search across a Slurm allocation: MPI rank 0 runs the search and
# writes results.csv, every other rank trains candidate models.
# Rendered by `ambs submit`; change the values here or render anew.
#SBATCH --job-name=@job_name@
#SBATCH --nodes=@nodes@
#SBATCH --ntasks-per-node=@ranks_per_node@
# GPU nodes: @gpus_per_node@ worker ranks a node (one a GPU) plus the master, which takes no GPU.
#SBATCH --ntasks=@gpu_ranks@
#SBATCH --cpus-per-task=@cpus_per_task@
#SBATCH --gpus-per-node=@gpus_per_node@
#SBATCH --mem=@mem@
#SBATCH --exclusive@exclusive@
#SBATCH --time=@walltime@
#SBATCH --account=@account@
#SBATCH --partition=@queue@
#SBATCH --qos=@qos@
#SBATCH --constraint=@constraint@
#SBATCH --requeue@requeue@
# A requeued job keeps its id (%j): its output is appended, and it resumes the run.
#SBATCH --output=@job_output@
#SBATCH --open-mode=append
# Time limit @walltime@ = the search's own --walltime (@search_walltime@ s) + --warning (@warning@ s).
# USR1 to this script @warning@ s before the time limit; it is passed on to
# the search, which stops handing out work and exits cleanly with a full CSV.
#SBATCH --signal=B:USR1@@warning@
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
@setup@
export OMP_NUM_THREADS=@threads@
export AMBS_LAUNCHER=@launcher_env@
# The first job starts the run; a later one (a chain, a requeue) resumes it.
RESUME=""
if [ -f "$RUN_DIR/run.json" ]; then RESUME="--resume"; fi
echo "ambs job ${SLURM_JOB_ID:-?}: ${SLURM_NTASKS:-?} ranks on ${SLURM_JOB_NODELIST:-?}"
#@gpu # One line per rank: the master and @gpus_per_node@ workers on the first node, @gpus_per_node@ on each other.
#@gpu mkdir -p "$RUN_DIR"
#@gpu HOSTFILE="$RUN_DIR/hosts-${SLURM_JOB_ID:-$$}"
#@gpu scontrol show hostnames "$SLURM_JOB_NODELIST" |
#@gpu   awk -v g=@gpus_per_node@ 'NR == 1 { print } { for (i = 0; i < g; i++) print }' > "$HOSTFILE"
#@gpu export AMBS_HOSTFILE="$HOSTFILE"

# Stop signals reach the search as USR1, which srun, Hydra and Open MPI's
# mpirun all pass on to the ranks (mpirun answers TERM by killing them);
# also one that comes before the search starts.
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
