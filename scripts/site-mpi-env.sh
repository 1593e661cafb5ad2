#!/usr/bin/env bash
# A second virtualenv, .venv-openmpi, whose mpi4py is built from source against
# Debian's Open MPI, as on a cluster whose mpi4py is built against the site's
# MPI (the README's .venv uses the MPICH wheel from PyPI instead). The cluster
# tests (tests/test_cluster_matrix.py) run ambs from it under the local Slurm
# with `srun --mpi=pmix` and with Open MPI's `mpirun`.
#
# Usage (as root):  scripts/site-mpi-env.sh [up|status]
# Installs openmpi-bin, libopenmpi-dev and libpmix2 when missing (start Slurm
# with scripts/slurm-local-up.sh, which installs PMIx before slurmd starts,
# so that `srun --mpi=pmix` works). Idempotent: a venv whose mpi4py already
# reports Open MPI is kept; only ambs is reinstalled from this checkout.
set -euo pipefail
ACTION=${1:-up}
case "$ACTION" in
  -h|--help)
    sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"   # the comment above
    exit 0 ;;
  up|status) ;;
  *) echo "site-mpi-env.sh: unknown action '$ACTION' (usage: site-mpi-env.sh [up|status]; --help)" >&2
     exit 2 ;;
esac
cd "$(dirname "$0")/.."
VENV=.venv-openmpi
library() { "$VENV/bin/python" -c 'from mpi4py import MPI; print(MPI.Get_library_version().strip(chr(0)).splitlines()[0])' 2>/dev/null; }

if [ "$ACTION" = status ]; then
  if [ -x "$VENV/bin/python" ] && lib=$(library); then echo "$VENV: $lib"; exit 0; fi
  echo "$VENV: missing or without mpi4py (run scripts/site-mpi-env.sh)"; exit 1
fi
if ! command -v mpicc.openmpi >/dev/null || [ ! -e /usr/lib/x86_64-linux-gnu/pmix2/lib/libpmix.so ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "site-mpi-env.sh: Open MPI is not installed; run as root to install it" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends openmpi-bin libopenmpi-dev libpmix2 libpmix-dev >/dev/null
fi
PYTHON=${PYTHON:-python3}
[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
# ambs without the MPICH wheel (the mpi extra would bring it): mpi4py comes next.
# $AMBS_PIP_LOCK (set by .ci/run): a file that serializes editable installs of
# this checkout, which all write its ambs.egg-info.
${AMBS_PIP_LOCK:+flock "$AMBS_PIP_LOCK"} "$VENV/bin/pip" install -q -e .
case "$(library || true)" in
  "Open MPI"*) ;;
  *)
    # -O0: the wrapper's speed does not matter here, and it builds four times faster.
    CFLAGS=-O0 MPICC=$(command -v mpicc.openmpi) \
      "$VENV/bin/pip" install -q --no-binary mpi4py --no-cache-dir --force-reinstall 'mpi4py>=4.0' ;;
esac
echo "site-mpi-env.sh: $VENV: $(library)"
