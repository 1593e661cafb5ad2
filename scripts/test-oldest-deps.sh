#!/usr/bin/env bash
# The analysis, recorder and user-path tests against the oldest versions of
# ambs's dependencies that setup.py allows: each `name>=X` of install_requires
# becomes `name==X.*` (numpy 1.24, scipy 1.10, scikit-learn 1.3, threadpoolctl 3.1, ConfigSpace
# 1.2, pandas 2.0, matplotlib 3.7), installed with ambs, pytest, pytest-xdist and hypothesis
# into the virtualenv .venv-oldest (created if missing, brought to those
# versions if not). No torch and no MPI there: the torch problems' cells check
# that a search on them fails in one line, the MPI cells are left out.
#
# Usage:  scripts/test-oldest-deps.sh [--install-only | PYTEST_ARGS...]   (from anywhere; .ci/run runs it)
# --install-only: bring .venv-oldest to the floors and stop (.ci/run does this
# while the README's virtualenv installs, then runs the tests afterwards).
set -euo pipefail
case "${1:-}" in
  -h|--help)
    sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"   # the comment above
    exit 0 ;;
esac
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
# The floors, from setup.py's install_requires (one list, no second copy to keep in step).
mapfile -t PINS < <("$PYTHON" - <<'EOF'
import ast, re
tree = ast.parse(open("setup.py").read())
call = next(n for n in ast.walk(tree) if isinstance(n, ast.Call) and getattr(n.func, "id", None) == "setup")
requires = ast.literal_eval(next(k.value for k in call.keywords if k.arg == "install_requires"))
for req in requires:
    m = re.fullmatch(r"([A-Za-z0-9_.-]+)\s*>=\s*([0-9.]+)\s*(,.*)?", req.split(";")[0].strip())
    if m is None:
        raise SystemExit(f"test-oldest-deps.sh: no floor in requirement {req!r} of setup.py")
    print(f"{m.group(1)}=={m.group(2)}.*")
EOF
)
[ -x .venv-oldest/bin/python ] || "$PYTHON" -m venv .venv-oldest
# $AMBS_PIP_LOCK: see scripts/site-mpi-env.sh.
${AMBS_PIP_LOCK:+flock "$AMBS_PIP_LOCK"} .venv-oldest/bin/pip install -q -e . "${PINS[@]}" 'pytest>=8' 'pytest-xdist>=3.5' 'hypothesis>=6'
echo "test-oldest-deps.sh: $(.venv-oldest/bin/python -m pip list 2>/dev/null \
  | awk 'tolower($1) ~ /^(numpy|scipy|scikit-learn|threadpoolctl|configspace|pandas|matplotlib)$/ {printf "%s %s, ", $1, $2}' \
  | sed 's/, $//')"
[ "${1:-}" = --install-only ] && exit 0
# Not here: the MPI cells (no mpi extra) and the architecture-problem check,
# whose problems need torch, which the oldest pins leave out (torch is an extra;
# the README's test command runs both).
exec .venv-oldest/bin/python -m pytest -q -n 2 -m 'not mpi' \
  --deselect tests/test_user_path.py::test_every_architecture_method_meets_an_architecture_problem \
  tests/test_analysis.py tests/test_recorder.py tests/test_user_path.py "$@"
