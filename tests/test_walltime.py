"""One reading of a duration for every command (ambs.walltime)."""

from __future__ import annotations

import pytest

from ambs.submit import JobSpec, render
from ambs.walltime import hms, parse_walltime


@pytest.mark.parametrize(("text", "seconds"), [
    ("3600", 3600), ("90s", 90), ("45m", 2700), ("2h", 7200), ("1d", 86400), ("1.5h", 5400),
    ("01:00:00", 3600), ("05:30", 330), ("1-00:00:00", 86400), ("0.6", 0.6), ("36:00:00", 129600),
])
def test_every_form_reads_as_seconds(text, seconds):
    assert parse_walltime(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "abc", "1:2:3:4", "5x", "-5", "0", "00:00:00", "1h30", "nan",
                                  "1:61:00", "00:60", "1-00:00:60"])
def test_what_is_not_a_duration_is_refused(text):
    with pytest.raises(ValueError):
        parse_walltime(text)


def test_hms():
    assert hms(3600) == "01:00:00" and hms(129600.9) == "36:00:00" and hms(59) == "00:00:59"


@pytest.mark.parametrize("scheduler", ["slurm", "pbs"])
@pytest.mark.parametrize("given", ["3600", "60m", "1h", "01:00:00"])
def test_a_bare_number_means_the_same_in_search_and_submit(given, scheduler, tmp_path):
    """The scheduler's limit and the search's own clock agree whatever the form:
    the job gets one hour, the search that hour minus the warning."""
    spec = JobSpec(scheduler=scheduler, problem="problems.ackley", run_dir=tmp_path / "run", workdir=tmp_path,
                   nodes=1, ranks_per_node=2, walltime=given, method="random", max_evals=10, warning=120)
    script = render(spec)
    limit = "#SBATCH --time=01:00:00" if scheduler == "slurm" else "#PBS -l walltime=01:00:00"
    assert limit in script
    assert "--walltime 3480 " in script


@pytest.mark.parametrize("scheduler", ["slurm", "pbs"])
@pytest.mark.parametrize("given", ["3600", "90m", "01:30:00"])
@pytest.mark.parametrize("warning", [120, 300])
def test_search_walltime_plus_warning_is_the_limit(given, scheduler, warning, tmp_path):
    """The margin is explicit: the scheduler's limit is the search's own
    --walltime plus --warning, and the script's comment says so."""
    import re

    from ambs.walltime import hms

    spec = JobSpec(scheduler=scheduler, problem="problems.ackley", run_dir=tmp_path / "run", workdir=tmp_path,
                   nodes=1, ranks_per_node=2, walltime=given, method="random", max_evals=10, warning=warning)
    script = render(spec)
    flag = r"#SBATCH --time=(\S+)" if scheduler == "slurm" else r"#PBS -l walltime=(\S+)"
    limit = parse_walltime(re.search(flag, script).group(1))
    search = int(re.search(r"--walltime (\d+) ", script).group(1))
    assert limit == parse_walltime(given)
    assert search + warning == limit
    assert f"Time limit {hms(limit)} = the search's own --walltime ({search} s) + --warning ({warning} s)" in script
