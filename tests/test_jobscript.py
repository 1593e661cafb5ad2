"""Job scripts for real clusters without editing: launchers and their MPI check,
site setup and directives, the settings file, PBS Pro, GPU placement, dry runs.

All of it renders or runs ``ambs submit --dry-run``; the real Slurm job is in
tests/test_submit.py.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from ambs.errors import AmbsError
from ambs.jobscript import launcher as mpi_launcher
from ambs.jobscript.placement import gpu_layout, rank_hosts
from ambs.submit import JobSpec, chain_commands, render
from tests.conftest import unavailable

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def _spec(scheduler: str, tmp_path: Path, **kw: object) -> JobSpec:
    base: dict = dict(scheduler=scheduler, problem="problems.ackley", run_dir=tmp_path / "run",
                      workdir=tmp_path, nodes=2, ranks_per_node=4, walltime="01:00:00", method="random")
    base.update(kw)
    return JobSpec(**base)


def _launch_line(script: str) -> str:
    return next(ln for ln in script.splitlines() if '"${AMBS[@]}" search' in ln)


# ------------------------------------------------------------------ placement
@pytest.mark.parametrize("nodes", [1, 2, 4])
@pytest.mark.parametrize("gpus", [1, 4])
def test_every_gpu_has_one_worker_and_the_master_none(nodes: int, gpus: int) -> None:
    hosts = [f"n{i}" for i in range(nodes)]
    slots = gpu_layout(hosts, gpus)
    assert len(slots) == nodes * gpus + 1
    assert [s.rank for s in slots] == list(range(len(slots)))
    assert slots[0].host == "n0" and slots[0].gpu is None
    workers = slots[1:]
    assert sorted((s.host, s.gpu) for s in workers) == sorted((h, g) for h in hosts for g in range(gpus))
    # On the master's node the workers are local ranks 1..G with GPUs 0..G-1.
    assert [s.gpu for s in slots[1:gpus + 1]] == list(range(gpus)) and slots[gpus].host == "n0"
    assert rank_hosts(hosts, gpus) == [s.host for s in slots]


def test_the_script_writes_the_same_host_order(tmp_path: Path) -> None:
    """The host file the job script builds (one line per rank) is the placement's order."""
    script = render(_spec("slurm", tmp_path, nodes=3, ranks_per_node=None, gpus_per_node=2))
    awk = next(ln for ln in script.splitlines() if ln.strip().startswith("awk -v g=2"))
    awk = awk.strip().split(" > ")[0]
    out = subprocess.run(["bash", "-c", f"printf 'a\\nb\\nc\\n' | {awk}"], capture_output=True, text=True)
    assert out.stdout.split() == rank_hosts(["a", "b", "c"], 2)
    assert "#SBATCH --ntasks=7" in script and "--ntasks-per-node" not in script


def test_gpu_cpus_per_task_from_cores_per_node(tmp_path: Path) -> None:
    slurm = render(_spec("slurm", tmp_path, ranks_per_node=None, gpus_per_node=4, cores_per_node=32))
    assert "#SBATCH --cpus-per-task=6" in slurm and "export OMP_NUM_THREADS=6" in slurm
    pbs = render(_spec("pbs", tmp_path, ranks_per_node=None, gpus_per_node=4, cores_per_node=32))
    assert "#PBS -l select=2:ncpus=32:mpiprocs=5:ngpus=4" in pbs
    torque = render(_spec("pbs", tmp_path, ranks_per_node=None, gpus_per_node=4, pbs_flavor="torque"))
    assert "#PBS -l nodes=2:ppn=5:gpus=4" in torque
    assert "--cpus-per-task" not in render(_spec("slurm", tmp_path, ranks_per_node=None, gpus_per_node=4))
    with pytest.raises(AmbsError, match="drop --ranks-per-node"):
        render(_spec("slurm", tmp_path, ranks_per_node=3, gpus_per_node=4))


def test_pbs_gpu_host_file_from_the_node_file(tmp_path: Path) -> None:
    """PBS lists each host mpiprocs (G+1) times: the script keeps G+1 lines of the
    first host and G of each other, in order."""
    script = render(_spec("pbs", tmp_path, nodes=2, ranks_per_node=None, gpus_per_node=2))
    body = tmp_path / "job.pbs"
    body.write_text(script.replace('"${AMBS[@]}" search', 'true "${AMBS[@]}" search', 1)
                    .replace(_launch_line(script).split('"${AMBS[@]}"')[0], "true "))
    nodefile = tmp_path / "nodes"
    nodefile.write_text("a\na\na\nb\nb\nb\n")
    res = subprocess.run(["bash", str(body)], env={"PATH": "/usr/bin:/bin", "PBS_NODEFILE": str(nodefile),
                                                   "PBS_JOBID": "7.srv", "HOME": str(tmp_path)},
                         cwd=tmp_path, capture_output=True, text=True, timeout=30)
    assert res.returncode == 0, res.stderr
    assert (tmp_path / "run" / "hosts-7.srv").read_text().split() == ["a", "a", "a", "b", "b"]
    assert "5 ranks on a,b" in (tmp_path / "run" / "job-7.srv.out").read_text()


def test_torque_host_file_has_a_line_per_rank(tmp_path: Path) -> None:
    """Torque's ppn is the cores a node (ranks x threads) and its PBS_NODEFILE lists a
    node once per core: the script writes one line per rank instead."""
    script = render(_spec("pbs", tmp_path, nodes=2, ranks_per_node=2, threads_per_worker=3, pbs_flavor="torque"))
    assert "#PBS -l nodes=2:ppn=6" in script and "place=" not in script
    body = tmp_path / "job.pbs"
    body.write_text(script.replace(_launch_line(script).split('"${AMBS[@]}"')[0], "true "))
    nodefile = tmp_path / "nodes"
    nodefile.write_text("a\n" * 6 + "b\n" * 6)
    res = subprocess.run(["bash", str(body)], env={"PATH": "/usr/bin:/bin", "PBS_NODEFILE": str(nodefile),
                                                   "PBS_JOBID": "8.srv", "HOME": str(tmp_path)},
                         cwd=tmp_path, capture_output=True, text=True, timeout=30)
    assert res.returncode == 0, res.stderr
    assert (tmp_path / "run" / "hosts-8.srv").read_text().split() == ["a", "a", "b", "b"]
    assert "4 ranks on a,b" in (tmp_path / "run" / "job-8.srv.out").read_text()
    # One core a rank: PBS_NODEFILE is the host file as it is.
    plain = render(_spec("pbs", tmp_path, nodes=2, ranks_per_node=2, pbs_flavor="torque"))
    assert "#PBS -l nodes=2:ppn=2" in plain and "hosts-$JOB_ID" not in plain


def test_pbs_pro_scatters_its_chunks(tmp_path: Path) -> None:
    """One chunk a node, as the ranks-a-node layout assumes, with or without --exclusive."""
    for exclusive, place in ((False, "scatter"), (True, "scatter:excl")):
        for gpus in (None, 2):
            script = render(_spec("pbs", tmp_path, ranks_per_node=None if gpus else 4, gpus_per_node=gpus,
                                  exclusive=exclusive))
            assert [ln for ln in script.splitlines() if "place=" in ln] == [f"#PBS -l place={place}"]


def test_srun_is_given_the_cpus_of_a_rank(tmp_path: Path) -> None:
    """srun of Slurm 22.05+ does not take --cpus-per-task over from the job: the script says it."""
    script = render(_spec("slurm", tmp_path, launcher="srun", threads_per_worker=4))
    assert "#SBATCH --cpus-per-task=4" in script and _launch_line(script).startswith("srun --cpus-per-task=4 ")
    gpu = render(_spec("slurm", tmp_path, launcher="srun", ranks_per_node=None, gpus_per_node=4, cores_per_node=32))
    assert "srun --cpus-per-task=6 --distribution=arbitrary" in _launch_line(gpu)
    assert "--cpus-per-task" not in _launch_line(render(_spec("slurm", tmp_path, launcher="srun")))


def test_run_directory_characters_the_schedulers_read(tmp_path: Path) -> None:
    """sbatch expands '%' in --output (written '%%'); '#' starts a comment in a
    directive; PBS reads 'host:' before a ':' of -o."""
    script = render(_spec("slurm", tmp_path, run_dir=tmp_path / "a%b"))
    assert f"#SBATCH --output={tmp_path}/a%%b/job-%j.out" in script
    assert f"RUN_DIR={tmp_path}/a%b" in script
    with pytest.raises(AmbsError, match="comment"):
        render(_spec("slurm", tmp_path, run_dir=tmp_path / "a#b"))
    with pytest.raises(AmbsError, match="comment"):
        render(_spec("pbs", tmp_path, job_name="x#y"))
    with pytest.raises(AmbsError, match="host name"):
        render(_spec("pbs", tmp_path, run_dir=tmp_path / "a:b"))
    assert "#PBS -o" in render(_spec("pbs", tmp_path, run_dir=tmp_path / "a%b"))


# ------------------------------------------------------------------ launchers
LAUNCH = {
    ("slurm", "mpiexec"): '/opt/mpi/bin/mpiexec -n "$SLURM_NTASKS" "${AMBS[@]}"',
    ("slurm", "mpirun"): '/opt/mpi/bin/mpirun -n "$SLURM_NTASKS" "${AMBS[@]}"',
    ("slurm", "srun"): 'srun "${AMBS[@]}"',
    ("slurm", "custom"): 'srun --cpu-bind=cores -n "$SLURM_NTASKS" "${AMBS[@]}"',
    ("pbs", "mpiexec"): '/opt/mpi/bin/mpiexec -n "$NRANKS" ${HOSTS[@]+"${HOSTS[@]}"} "${AMBS[@]}"',
    ("pbs", "mpirun"): '/opt/mpi/bin/mpirun -n "$NRANKS" ${HOSTS[@]+"${HOSTS[@]}"} "${AMBS[@]}"',
    ("pbs", "custom"): 'aprun -n "$NRANKS" -d 4 "${AMBS[@]}"',
}
CUSTOM = {"slurm": "srun --cpu-bind=cores -n $SLURM_NTASKS", "pbs": "aprun -n $NRANKS -d 4"}


@pytest.mark.parametrize(("scheduler", "launcher"), sorted(LAUNCH))
def test_each_launcher_on_each_scheduler(scheduler: str, launcher: str, tmp_path: Path) -> None:
    kw: dict = {"launcher": launcher}
    if launcher in ("mpiexec", "mpirun"):
        kw["launcher_path"] = f"/opt/mpi/bin/{launcher}"
    if launcher == "custom":
        kw["launcher_command"] = CUSTOM[scheduler]
    script = render(_spec(scheduler, tmp_path, **kw))
    line = _launch_line(script)
    assert line.startswith(LAUNCH[(scheduler, launcher)]), line
    last = next(ln for ln in script.splitlines() if ln.lstrip().startswith("--walltime "))
    assert last.rstrip().endswith("&")  # in the background: the trap forwards USR1 to it
    assert 'kill -USR1 "$PID"' in script and "trap '" in script
    assert "--mpi=" not in script and "-f " not in line  # no PMI type, no Hydra-only host flag
    words = CUSTOM[scheduler] if launcher == "custom" else LAUNCH[(scheduler, launcher)].split(' -n')[0].split(' "$')[0]
    assert f"export AMBS_LAUNCHER='{words}'" in script or f"export AMBS_LAUNCHER={words}" in script
    assert subprocess.run(["bash", "-n"], input=script, text=True).returncode == 0


def test_srun_takes_mpi_only_when_given(tmp_path: Path) -> None:
    script = render(_spec("slurm", tmp_path, launcher="srun", mpi="pmix"))
    assert _launch_line(script).startswith('srun --mpi=pmix "${AMBS[@]}"')
    gpu = render(_spec("slurm", tmp_path, launcher="srun", ranks_per_node=None, gpus_per_node=2))
    assert _launch_line(gpu).startswith('SLURM_HOSTFILE="$HOSTFILE" srun --distribution=arbitrary "${AMBS')


def test_custom_launcher_words_stay_words(tmp_path: Path) -> None:
    """$VAR words expand; shell syntax in the command is a word, not a command."""
    script = render(_spec("pbs", tmp_path, launcher_command="aprun -n $NRANKS ; touch INJECTED $(id)"))
    assert _launch_line(script).startswith("""aprun -n "$NRANKS" ';' touch INJECTED '$(id)' "${AMBS""")


def test_oversubscribe_only_for_open_mpi(tmp_path: Path) -> None:
    ompi = render(_spec("slurm", tmp_path, launcher="mpirun", launcher_path="/usr/bin/mpirun",
                        mpi_family="openmpi", oversubscribe=True))
    assert _launch_line(ompi).startswith('/usr/bin/mpirun --oversubscribe -n "$SLURM_NTASKS"')
    assert "--oversubscribe" not in render(_spec("slurm", tmp_path, mpi_family="mpich", oversubscribe=True))
    assert "--oversubscribe" not in render(_spec("slurm", tmp_path, mpi_family="openmpi"))
    assert "allow-run-as-root" not in ompi


@pytest.mark.parametrize(("text", "family"), [
    ("HYDRA build details:\n    Version: 5.0.2", "mpich"),
    ("mpirun (Open MPI) 4.1.4\n\nReport bugs to https://www.open-mpi.org/community/help/", "openmpi"),
    ("mpiexec (OpenRTE) 4.0.3", "openmpi"),
    ("Open MPI v4.1.4, package: Debian OpenMPI", "openmpi"),
    ("MPICH Version:      5.0.2", "mpich"),
    ("Intel(R) MPI Library 2021.10 for Linux* OS", "intel"),
    ("MPI VERSION    : CRAY MPICH version 8.1.25", "cray"),
    ("something else", None),
])
def test_mpi_family(text: str, family: str | None) -> None:
    assert mpi_launcher.family(text) == family


def _fake_launcher(tmp_path: Path, text: str) -> str:
    path = tmp_path / "fake-mpirun"
    path.write_text(f"#!/bin/bash\ncat <<'X'\n{text}\nX\n")
    path.chmod(0o755)
    return str(path)


def test_launcher_of_another_mpi_is_refused(tmp_path: Path) -> None:
    # The test extra installs mpi4py: its library must be readable here.
    assert mpi_launcher.library_version() is not None, "mpi4py's MPI library cannot be read"
    lib = mpi_launcher.family(mpi_launcher.library_version() or "")
    other = "mpirun (Open MPI) 4.1.4" if lib != "openmpi" else "HYDRA build details:"
    with pytest.raises(AmbsError) as info:
        mpi_launcher.check_launcher(_fake_launcher(tmp_path, other))
    msg = str(info.value)
    assert "\n" not in msg and "mpi4py was built with" in msg and "--no-launcher-check" in msg
    same = "mpirun (Open MPI) 4.1.4" if lib == "openmpi" else "HYDRA build details:"
    assert mpi_launcher.check_launcher(_fake_launcher(tmp_path, same)) == lib
    assert mpi_launcher.check_launcher(str(mpi_launcher.resolve("mpiexec"))) == lib


def test_a_system_open_mpi_launcher_is_refused_for_a_venv_mpich() -> None:
    """The case the check is for: Debian's Open MPI mpirun on PATH, mpi4py on pip's MPICH."""
    system = Path("/usr/bin/mpirun.openmpi")  # Debian's name, whatever /usr/bin/mpirun points to
    if not system.exists():
        unavailable("the check against a system Open MPI launcher",
                    f"Debian's Open MPI ({system}) is not installed: `sudo scripts/site-mpi-env.sh` installs it")
    lib = mpi_launcher.library_version()
    assert lib is not None and mpi_launcher.family(lib) == "mpich", lib  # the test extra's MPICH wheel
    with pytest.raises(AmbsError, match=r"is Open MPI's launcher but mpi4py was built with MPICH"):
        mpi_launcher.check_launcher(str(system))


def test_submit_checks_the_launcher(ambs_main, make_problem, capfd, monkeypatch, tmp_path) -> None:
    """A mismatch is one line (exit 2); --no-launcher-check skips it; an MPI that
    cannot be told is one warning line, and the script is still written."""
    make_problem("quadratic")
    monkeypatch.setattr(mpi_launcher, "library_version", lambda timeout=30.0: "MPICH Version: 5.0.2")
    fake = _fake_launcher(tmp_path, "mpirun (Open MPI) 4.1.4")
    monkeypatch.setattr(mpi_launcher, "resolve", lambda name: fake)
    args = ["submit", "quadratic.py", "--scheduler", "slurm", "--ranks-per-node", "2",
            "--walltime", "1h", "--dry-run", "--launcher", "mpirun"]
    assert ambs_main(*args) == 2
    out, err = capfd.readouterr()
    assert len(err.strip().splitlines()) == 1 and "Open MPI" in err and "MPICH" in err, err
    assert ambs_main(*args, "--no-launcher-check") == 0
    out, err = capfd.readouterr()
    assert f"{fake} -n" in out
    monkeypatch.setattr(mpi_launcher, "library_version", lambda timeout=30.0: None)
    with pytest.warns(UserWarning, match="cannot tell which MPI mpi4py uses") as caught:
        assert ambs_main(*args) == 0
    assert len(caught) == 1 and "\n" not in str(caught[0].message)


# ------------------------------------------------------------- site settings
def test_setup_directives_and_resources(tmp_path: Path) -> None:
    spec = _spec("slurm", tmp_path, setup=["module load cuda/12", "source ~/env/bin/activate"],
                 directives=["--mail-type=END", "--comment=ambs"], account="A", queue="gpu",
                 qos="high", constraint="a100&nvlink", mem="64G", exclusive=True, requeue=True)
    script = render(spec)
    for line in ("#SBATCH --mail-type=END", "#SBATCH --comment=ambs", "#SBATCH --qos=high",
                 "#SBATCH --constraint=a100&nvlink", "#SBATCH --mem=64G", "#SBATCH --exclusive",
                 "#SBATCH --requeue", "#SBATCH --open-mode=append"):
        assert line in script
    lines = script.splitlines()
    # Directives before the first command (sbatch stops reading there); setup after cd, before the launch.
    first_cmd = next(i for i, ln in enumerate(lines) if ln and not ln.startswith("#"))
    assert lines.index("#SBATCH --comment=ambs") < first_cmd
    cd = next(i for i, ln in enumerate(lines) if ln.startswith("cd "))
    assert cd < lines.index("module load cuda/12") < lines.index(_launch_line(script))
    pbs = render(_spec("pbs", tmp_path, setup=["module load x"], directives=["-l place=scatter", "-m ae"],
                       mem="64gb", exclusive=True, requeue=True))
    for line in ("#PBS -l place=scatter", "#PBS -m ae", "#PBS -l select=2:ncpus=4:mpiprocs=4:mem=64gb",
                 "#PBS -l place=scatter:excl", "#PBS -r y"):
        assert line in pbs


def _submit(*args: str, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    full = {**os.environ, "XDG_CONFIG_HOME": str(cwd / "xdg"), **(env or {})}
    return subprocess.run([sys.executable, "-m", "ambs", "submit", str(ROOT / "problems" / "branin.py"),
                           "--walltime", "1h", "--dry-run", "-o", str(cwd / "run"), *args],
                          cwd=cwd, capture_output=True, text=True, timeout=120, env=full)


def test_settings_file_precedence(tmp_path: Path) -> None:
    user = tmp_path / "xdg" / "ambs" / "config.toml"
    user.parent.mkdir(parents=True)
    user.write_text('[submit]\nscheduler = "slurm"\naccount = "FROMUSER"\nranks_per_node = 3\n')
    res = _submit(cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert "#SBATCH --account=FROMUSER" in res.stdout and "#SBATCH --ntasks-per-node=3" in res.stdout
    (tmp_path / "ambs.toml").write_text(textwrap.dedent("""
        [submit]
        scheduler = "pbs"
        account = "FROMDIR"
        ranks_per_node = 2
        partition = "batch"
        setup = ["module load mpi", "export A=1"]
        directive = ["-m ae"]
        exclusive = true
    """))
    res = _submit("--setup", "export B=2", "--account", "FROMCLI", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    s = res.stdout
    assert "#PBS -A FROMCLI" in s and "#PBS -q batch" in s and "#PBS -m ae" in s
    assert "#PBS -l place=scatter:excl" in s and "mpiprocs=2" in s
    assert s.index("module load mpi") < s.index("export A=1") < s.index("export B=2")
    explicit = tmp_path / "site.toml"
    explicit.write_text('[submit]\nscheduler = "slurm"\nranks_per_node = 2\nlauncher = "srun"\nmpi = "pmi2"\n')
    res = _submit("--config", str(explicit), cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert 'srun --mpi=pmi2 "${AMBS[@]}"' in res.stdout
    assert f"with the [submit] settings of {explicit}" in res.stderr
    # The file's srun --mpi type goes with its launcher: another launcher on the command line drops it.
    res = _submit("--config", str(explicit), "--launcher", "mpiexec", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert "--mpi=" not in res.stdout and '-n "$SLURM_NTASKS"' in res.stdout
    res = _submit("--config", str(explicit), "--launcher", "mpiexec", "--mpi", "pmix", cwd=tmp_path)
    assert res.returncode == 2 and "--mpi is srun's" in res.stderr


@pytest.mark.parametrize(("text", "words"), [
    ('[submit]\nacount = "x"\n', ["unknown key 'acount'"]),
    ('[sbumit]\naccount = "x"\n', ["'sbumit'"]),
    ('[submit]\nnodes = "two"\n', ["nodes", "whole number"]),
    ('[submit]\nlauncher = "aprun"\n', ["launcher must be one of"]),
    ('[submit]\nexclusive = "yes"\n', ["true or false"]),
    ("[submit\n", ["not valid TOML"]),
])
def test_settings_file_mistakes_are_one_line(text: str, words: list[str], tmp_path: Path) -> None:
    (tmp_path / "ambs.toml").write_text(text)
    res = _submit("--scheduler", "slurm", "--ranks-per-node", "2", cwd=tmp_path)
    assert res.returncode == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ambs: error:") and "ambs.toml" in lines[0], res.stderr
    for w in words:
        assert w in lines[0]


def test_setup_file_lines(tmp_path: Path) -> None:
    f = tmp_path / "site.sh"
    f.write_text("module purge\n\nmodule load cuda\n")
    res = _submit("--scheduler", "slurm", "--ranks-per-node", "2", "--setup", "echo first",
                  "--setup-file", str(f), cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    s = res.stdout
    assert s.index("echo first") < s.index("module purge") < s.index("module load cuda")


# ------------------------------------------------------------------ dry runs
def test_dry_run_lists_the_chain(tmp_path: Path) -> None:
    res = _submit("--scheduler", "slurm", "--ranks-per-node", "2", "--chain", "2", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    script = tmp_path / "run" / "job.slurm"
    assert script.read_text() == res.stdout
    assert [ln for ln in res.stderr.splitlines() if not ln.startswith("#")] == [
        f"sbatch --parsable {script}    # job 1",
        f"sbatch --parsable --dependency=afterany:<job 1> {script}    # job 2",
        f"sbatch --parsable --dependency=afterany:<job 2> {script}    # job 3",
    ]
    spec = _spec("pbs", tmp_path)
    assert chain_commands(spec, tmp_path / "j.pbs", 1)[1].startswith("qsub -W depend=afterany:<job 1> ")


BLOCK_TORCH = """
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            raise ImportError("torch is blocked")
sys.meta_path.insert(0, Block())
from ambs.cli import main
code = main(sys.argv[1:])
assert "torch" not in sys.modules
sys.exit(code)
"""


def test_dry_run_of_a_torch_problem_loads_no_torch(tmp_path: Path) -> None:
    res = subprocess.run([sys.executable, "-c", BLOCK_TORCH, "submit", str(ROOT / "problems" / "mlp_digits.py"),
                          "--scheduler", "slurm", "--gpus-per-node", "2", "--walltime", "1h", "--dry-run",
                          "-o", str(tmp_path / "run")], capture_output=True, text=True, timeout=120,
                         cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert "#SBATCH --job-name=ambs-mlp_digits" in res.stdout


def test_missing_scheduler_names_it(tmp_path: Path, monkeypatch) -> None:
    from ambs import submit as sub

    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(AmbsError, match="sbatch not found: is this a login node of a Slurm cluster"):
        sub.submit(_spec("slurm", tmp_path), tmp_path / "job.slurm")
    with pytest.raises(AmbsError, match="qsub not found: is this a login node of a PBS cluster"):
        sub.submit(_spec("pbs", tmp_path), tmp_path / "job.pbs")
