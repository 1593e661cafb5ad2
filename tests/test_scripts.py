"""The helper scripts under scripts/: ``--help`` prints usage and exits 0, and
a script writes nothing unless given what it needs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PY_SCRIPTS = sorted((ROOT / "scripts").glob("*.py"))
SH_SCRIPTS = sorted((ROOT / "scripts").glob("*.sh"))
# Benchmarks with a command line (bench/sleep_problem.py is a problem module, not a script).
BENCH_SCRIPTS = sorted(p for p in (ROOT / "bench").glob("*.py") if "__main__" in p.read_text())


def _run(cmd: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT), MPLBACKEND="Agg")
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=60)


def _tree(d: Path) -> list[str]:
    return sorted(str(p.relative_to(d)) for p in d.rglob("*"))


def test_there_are_scripts() -> None:
    assert len(PY_SCRIPTS) >= 5 and SH_SCRIPTS


@pytest.mark.parametrize("script", PY_SCRIPTS + BENCH_SCRIPTS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_python_script_help_writes_nothing(script: Path, tmp_path: Path) -> None:
    res = _run([sys.executable, str(script), "--help"], tmp_path)
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith("usage:") and res.stderr == ""
    assert _tree(tmp_path) == []


@pytest.mark.parametrize("script", PY_SCRIPTS, ids=lambda p: p.name)
def test_python_script_without_arguments_writes_nothing(script: Path, tmp_path: Path) -> None:
    res = _run([sys.executable, str(script)], tmp_path)
    assert res.returncode == 2 and "usage:" in res.stderr and "Traceback" not in res.stderr
    assert _tree(tmp_path) == []


@pytest.mark.parametrize("script", SH_SCRIPTS, ids=lambda p: p.name)
def test_shell_script_help_prints_usage(script: Path, tmp_path: Path) -> None:
    res = _run(["bash", str(script), "--help"], tmp_path)
    assert res.returncode == 0, res.stderr
    assert "Usage" in res.stdout and script.name in res.stdout
    assert _tree(tmp_path) == []


def test_render_job_examples_check_and_write(tmp_path: Path) -> None:
    script = str(ROOT / "scripts" / "render_job_examples.py")
    assert _run([sys.executable, script, str(ROOT), "--check"], tmp_path).returncode == 0
    assert _run([sys.executable, script, ".", "--check"], tmp_path).returncode == 1
    assert _tree(tmp_path) == []
    res = _run([sys.executable, script, "."], tmp_path)
    assert res.returncode == 0, res.stderr
    assert _tree(tmp_path) == ["pbs", "pbs/cpu.sh", "pbs/gpu.sh", "slurm", "slurm/cpu.sh", "slurm/gpu.sh"]
