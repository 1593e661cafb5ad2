"""``ambs simulate``: the real search and driver against simulated workers."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest

from ambs import AMBS, RandomSearch
from ambs.comm import POLL_MAX
from ambs.errors import AmbsError
from ambs.problem import load_problem
from ambs.recorder import Recorder, RunInfo, columns_for
from ambs.simfit import SimulatedFitter
from ambs.simtime import SLEEP_OVERSHOOT, noticed_after
from ambs.simulate import (
    Duration,
    MasterCost,
    MasterSpeed,
    VirtualClock,
    parse_duration,
    parse_master_cost,
    simulate,
)
from ambs.surrogate import SURROGATES


@pytest.mark.parametrize("text, kind, params", [
    ("5", "const", (5.0,)),
    ("const:2.5", "const", (2.5,)),
    ("uniform:1,3", "uniform", (1.0, 3.0)),
    ("lognormal:60,0.5", "lognormal", (60.0, 0.5)),
    ("exponential:10", "exponential", (10.0,)),
])
def test_parse_duration(text, kind, params):
    d = parse_duration(text)
    assert (d.kind, d.params) == (kind, params)


@pytest.mark.parametrize("text", ["gamma:1,2", "uniform:3,1", "lognormal:60", "const:-1", "const:x", "0"])
def test_bad_duration_is_one_line_error(text):
    with pytest.raises(AmbsError) as err:
        parse_duration(text)
    assert "\n" not in str(err.value) and text in str(err.value)


def test_lognormal_median():
    rng = np.random.default_rng(0)
    d = Duration("lognormal", (60.0, 0.5))
    assert np.median([d.sample(rng) for _ in range(4000)]) == pytest.approx(60.0, rel=0.05)


def test_a_slower_master_counts_its_measured_time_and_fits_that_many_times_over():
    """``--master-cost measured:3``: three times the measured compute, what the
    master's node charges (a model received) included, and each fit three
    times as long on the virtual clock (the fitting process is on that node too)."""
    assert parse_master_cost("measured:3") == MasterSpeed(3.0) and parse_master_cost("Measured") is None
    clock = VirtualClock(100.0, MasterSpeed(3.0))
    clock.resume()
    time.sleep(0.02)
    clock.pause()
    assert 100.06 <= clock.now < 103.0 and clock.master_seconds == pytest.approx(clock.now - 100.0)
    before = clock.now
    clock.charge(0.5)
    assert clock.now == pytest.approx(before + 1.5)
    loaded = load_problem("problems.branin")
    search = AMBS(loaded.problem, random_state=0)
    fitter = SimulatedFitter(search, clock)
    try:
        fitter._start(True, 10.0, 0.25)  # a fit measured at 0.25 s, in the master's process
    finally:
        fitter.close()
    assert fitter.fit_seconds == pytest.approx(0.75) and fitter._ready_at == pytest.approx(10.75)


def test_clock_counts_master_time_but_not_excluded_time():
    clock = VirtualClock(100.0)
    clock.resume()
    time.sleep(0.02)  # the master computing
    clock.pause()
    assert 100.02 <= clock.now < 101.0 and clock.master_seconds == pytest.approx(clock.now - 100.0)
    before = clock.now
    clock.resume()
    time.sleep(0.02)  # a simulated background fit: on a core of its own
    clock.exclude(0.02)
    clock.pause()
    assert clock.now - before < 0.01


def _recorder(tmp_path, loaded, method):
    info = RunInfo(problem="problems.branin", problem_name=loaded.name,
                   fingerprint=loaded.problem.fingerprint(), method=method,
                   columns=columns_for(loaded.problem.hyperparameter_names, loaded.problem.metadata),
                   settings={})
    return Recorder(tmp_path / method, info)


@pytest.mark.parametrize("method", ["random", "ambs"])
@pytest.mark.parametrize("polling", [False, True])
def test_constant_durations_give_the_exact_schedule(tmp_path, method, polling, rows):
    """8 workers, 1 s each, 40 evaluations: five waves of eight, makespan 5 s plus
    master time, plus, when messages are seen at the next probe, at most a
    probe's period on each side of every wave."""
    loaded = load_problem("problems.branin")
    search = (AMBS if method == "ambs" else RandomSearch)(loaded.problem, random_state=0)
    rec = _recorder(tmp_path, loaded, method)
    try:
        rep = simulate(search, loaded.run, rec, workers=8, duration=parse_duration("const:1"), max_evals=40,
                       polling=polling)
    finally:
        rec.close()
    assert rep.evaluations == 40 and rep.stop_reason == "max-evals"
    probes = 5 * 2 * (POLL_MAX + SLEEP_OVERSHOOT) if polling else 0.0
    assert 5.0 <= rep.makespan < 5.0 + rep.master_seconds + probes + 1e-9
    assert 0.0 < rep.utilization <= 1.0 and 0.0 < rep.utilization_total <= 1.0
    # Every worker-second is either busy or waiting on the master.
    assert rep.utilization_total == pytest.approx(40.0 / (8 * rep.makespan))
    table = rows(tmp_path / method / "results.csv")
    assert len(table) == 40
    assert {int(r["worker"]) for r in table} == set(range(1, 9))
    for r in table:  # virtual times: one second each
        assert float(r["finished"]) - float(r["started"]) == pytest.approx(1.0)
    assert rep.best_objective == max(float(r["objective"]) for r in table)
    if method == "ambs":
        assert rep.fits >= 1


@pytest.mark.parametrize("surrogate", sorted(SURROGATES))
def test_every_surrogate_proposes_from_a_lagging_model(tmp_path, surrogate, rows):
    """The path users run: a background fit, results told while it runs (evaluations
    shorter than a fit, 8 workers) and folded into the last model with the lies of the
    pending evaluations. Each surrogate of the registry proposes that way."""
    loaded = load_problem("problems.branin")
    search = AMBS(loaded.problem, random_state=0, surrogate=surrogate, n_initial_points=8)
    rec = _recorder(tmp_path, loaded, surrogate)
    try:
        rep = simulate(search, loaded.run, rec, workers=8, duration=parse_duration("lognormal:0.01,0.5"),
                       max_evals=48)
    finally:
        rec.close()
    assert rep.evaluations == 48 and len(rows(tmp_path / surrogate / "results.csv")) == 48
    assert 1 <= rep.fits < 48 - 8  # fewer fits than model-based proposals: some came from a lagging model
    assert len({tuple(sorted(r.items())) for r in rows(tmp_path / surrogate / "results.csv")}) == 48


@pytest.mark.parametrize("problem", ["problems.branin", "problems.zdt1"])  # one objective, and a front
def test_simulate_command_prints_json(ambs_main, capfd, problem):
    code = ambs_main("simulate", problem, "--workers", "16", "--duration", "lognormal:10,0.5",
                     "--max-evals", "60", "--seed", "1", "--json")
    out, err = capfd.readouterr()
    assert code == 0, err
    data = json.loads(out)
    assert data["evaluations"] == 60
    assert 0.5 < data["utilization"] <= 1.0
    assert data["master_seconds_per_result"] > 0
    assert data["workers"] == 16
    # Where the master's time went: each phase measured, together its whole time.
    parts = data["master_breakdown"]
    assert set(parts) == {"record", "tell", "fold", "acquisition", "submit", "messages", "other"}
    assert all(v >= 0 for v in parts.values())
    assert parts["record"] > 0 and parts["fold"] > 0 and parts["acquisition"] > 0
    assert sum(parts.values()) == pytest.approx(data["master_seconds"], rel=0.05)


@pytest.mark.parametrize("problem, says", [("problems.branin", "best objective: -"),
                                           ("problems.zdt1", "Pareto front: ")])
def test_simulate_command_ends_with_the_best_or_the_front(ambs_main, capfd, problem, says):
    """One objective: its best value; several: the front's size and objectives, not a 'best objective'."""
    code = ambs_main("simulate", problem, "--workers", "8", "--duration", "const:10",
                     "--max-evals", "40", "--seed", "1", "--quiet")
    out, err = capfd.readouterr()
    assert code == 0, err
    last = out.strip().splitlines()[-1]
    assert last.startswith(says), out
    if problem == "problems.zdt1":
        assert "f1 (min), f2 (min)" in last and "best objective" not in out


def test_messages_cost_their_latency_both_ways(tmp_path, rows):
    """With a message cost, a job starts its latency (and size over the
    bandwidth) after it is handed out and its result reaches the master that
    much after it ends: one worker, const:5 evaluations, 1 s latency, two
    evaluations end no sooner than 1 + 5 + 1 + 1 + 5 + 1 = 14 s."""
    from ambs.simulate import MessageCost, parse_message_cost

    loaded = load_problem("problems.branin")
    rec = _recorder(tmp_path, loaded, "random")
    try:
        rep = simulate(RandomSearch(loaded.problem, random_state=0), loaded.run, rec, workers=1,
                       duration=parse_duration("const:5"), max_evals=2, message_cost=MessageCost(1.0, 1e12),
                       polling=False)
    finally:
        rec.close()
    assert 14.0 <= rep.makespan < 14.0 + rep.master_seconds + 1e-6
    table = rows(tmp_path / "random" / "results.csv")
    for r in table:
        # The latency, plus the master's own compute between stamping the job
        # submitted and handing it over (measured, on the virtual clock: a few
        # milliseconds on a busy machine).
        assert 1.0 - 1e-9 <= float(r["started"]) - float(r["submitted"]) < 1.0 + rep.master_seconds + 1e-6
    assert float(table[1]["submitted"]) >= float(table[0]["finished"]) + 1.0
    assert rep.master_breakdown["messages"] > 0  # pickling and unpickling, measured
    assert parse_message_cost("slingshot") == MessageCost(2e-6, 25e9)
    assert parse_message_cost("none") is None


@pytest.mark.parametrize("text", ["fast", "1", "a,b", "inf,5", "1,0", "nan,1"])
def test_bad_message_cost_is_one_line_error(ambs_main, capfd, text):
    assert ambs_main("simulate", "problems.branin", "--workers", "4", "--duration", "60",
                     "--message-cost", text) == 2
    err = capfd.readouterr().err
    assert err.startswith("ambs: error: message cost") and err.count("\n") == 1


def test_simulate_command_errors_are_one_line(ambs_main, capfd):
    assert ambs_main("simulate", "problems.branin", "--workers", "4", "--duration", "weibull:3") == 2
    err = capfd.readouterr().err
    assert err.startswith("ambs: error: unknown duration") and err.count("\n") == 1


def test_a_simulation_stopped_early_says_so(ambs_main, capfd):
    """A virtual walltime (or a signal) ends the simulation early: its report says
    so before the figures, which are then of the evaluations up to there."""
    assert ambs_main("simulate", "problems.branin", "--workers", "4", "--duration", "const:10", "--max-evals", "100",
                     "--walltime", "60", "--master-cost", "0.01,0.1", "-q") == 0
    out = capfd.readouterr().out
    assert out.startswith("stopped by walltime after ") and " of 100 evaluations" in out.splitlines()[0]


def test_a_stop_rule_is_refused_not_ignored(ambs_main, capfd):
    """Simulated workers make no in-training reports: ``--stop-rule`` is refused
    in one line, as the README says (it was accepted and did nothing)."""
    assert ambs_main("simulate", "problems.branin", "--workers", "4", "--duration", "const:1", "--max-evals", "4",
                     "--stop-rule", "median") == 2
    err = capfd.readouterr().err
    assert err.startswith("ambs: error: --stop-rule needs in-training reports") and err.count("\n") == 1


@pytest.mark.parametrize("text", ["0.5", "a,b", "1,-1", "1,nan", "1,2,3", "measured:0", "measured:x",
                                  "measured:-2", "measured:inf", "fixed:2"])
def test_bad_master_cost_is_one_line_error(ambs_main, capfd, text):
    assert ambs_main("simulate", "problems.branin", "--workers", "4", "--duration", "60",
                     "--master-cost", text) == 2
    err = capfd.readouterr().err
    assert err.startswith("ambs: error: master cost") and err.count("\n") == 1


def test_a_fixed_master_cost_repeats_the_run_row_for_row(ambs_main, capfd, tmp_path):
    """Measured master seconds change the order results arrive in from run to
    run; fixed ones make the same seed give the same rows, times included, so
    that a benchmark's asynchronous traces can be checked against committed ones."""
    runs = []
    # The model a fitting process sends back pickled proposes as the one fitted in place.
    for name, fit in (("one", "process"), ("two", "process"), ("three", "background")):
        out = tmp_path / name
        code = ambs_main("simulate", "problems.branin", "--workers", "4", "--duration", "lognormal:60,0.5",
                         "--max-evals", "30", "--seed", "3", "--n-initial-points", "5",
                         "--master-cost", "0.05,20", "-o", str(out), "-q", "--fit", fit)
        assert code == 0, capfd.readouterr().err
        runs.append([line for line in (out / "results.csv").read_text().splitlines() if not line.startswith("#")])
    assert len(runs[0]) == 31 and runs[0] == runs[1] == runs[2]
    capfd.readouterr()
    # A fit of 20 virtual seconds against evaluations of about 60 on 4 workers:
    # results arrive while a model is being fitted, so some asks use a model
    # that lags, as on a machine, and there are fewer fits than results.
    code = ambs_main("simulate", "problems.branin", "--workers", "4", "--duration", "lognormal:60,0.5",
                     "--max-evals", "30", "--seed", "3", "--n-initial-points", "5",
                     "--master-cost", "0.05,20", "--json")
    data = json.loads(capfd.readouterr().out)
    # fit_seconds counts a fit still running at the end, which ``fits`` (installed) does not.
    assert code == 0 and data["fit_seconds"] in (20.0 * data["fits"], 20.0 * (data["fits"] + 1))
    assert data["fits"] < 30 - 5  # fewer fits than results after the initial design: fits lagged


class _SlowToLoad:
    """A fit task whose model takes 50 ms to unpickle, as a large forest does."""

    def __init__(self) -> None:
        self.model = None

    def run(self, threads: int | None = None) -> None:
        self.model = "fitted"

    def __setstate__(self, state: dict) -> None:
        if state.get("model") is not None:
            time.sleep(0.05)
        self.__dict__.update(state)


class _OneFit:
    background_fit = False

    def __init__(self) -> None:
        self.handed, self.installed = False, []

    def fit_task(self):
        if self.handed:
            return None
        self.handed = True
        return _SlowToLoad()

    def install(self, task) -> None:
        self.installed.append(task)


@pytest.mark.parametrize("transfer", [True, False])
def test_a_fitting_process_costs_the_master_the_models_it_receives(transfer):
    """--fit process (the simulator's default, as under MPI): the model comes
    back pickled and the master's unpickling is on its clock; fitted in place
    (--fit background) nothing is."""
    from ambs.simulate import SimulatedFitter, VirtualClock

    clock = VirtualClock(0.0)
    search = _OneFit()
    fitter = SimulatedFitter(search, clock, transfer=transfer)
    clock.resume()
    fitter.poll()  # the fit runs at once, set aside; its model is due after its time
    assert not search.installed and fitter.fit_seconds > 0
    clock.now = fitter._ready_at  # the virtual clock reaches its end
    clock.resume()
    fitter.poll()
    assert len(search.installed) == 1 and search.installed[0].model == "fitted"
    loaded = clock.master_elapsed()
    assert (loaded >= 0.05) if transfer else (loaded < 0.05)
    fitter.close()


def test_the_simulator_fits_as_an_mpi_master_does():
    from ambs.evaluator.mpi import MPIEvaluator
    from ambs.simulate import SimulatedEvaluator

    assert SimulatedEvaluator.default_fit == MPIEvaluator.default_fit == "process"


def test_idle_sleep_sleeps_the_masters_waits_off_its_clock(tmp_path, rows):
    """``idle_sleep``: where the virtual master waits for a result, it sleeps
    that wait in real time up to the cap, so its next step starts as a real
    master's does after idling; the sleep is not the master's compute."""
    from ambs.runner import run_search

    t = time.perf_counter()
    run_search("problems/branin.py", "random", "simulated", max_evals=4, workers=1, seed=0, quiet=True,
               output=tmp_path / "run", evaluator_options={"duration": "const:1", "idle_sleep": 0.25})
    real = time.perf_counter() - t
    table = rows(tmp_path / "run" / "results.csv")
    assert len(table) == 4
    assert real >= 4 * 0.25  # four waits of about 1 s, each slept for 0.25 s
    # On the virtual clock the four evaluations end after 4 s and the master's
    # milliseconds; the real second slept is not there.
    assert 4.0 <= max(float(r["finished"]) for r in table) < 4.5


def test_simulate_command_takes_idle_sleep(ambs_main, capfd, tmp_path):
    """``ambs simulate --idle-sleep``: run.json records it; a negative one is a one-line error."""
    code = ambs_main("simulate", "problems.branin", "--workers", "2", "--duration", "const:0.05",
                     "--max-evals", "6", "--method", "random", "--idle-sleep", "0.01", "-o", str(tmp_path / "run"),
                     "--json")
    assert code == 0 and json.loads(capfd.readouterr().out)["evaluations"] == 6
    assert json.loads((tmp_path / "run" / "run.json").read_text())["settings"]["idle_sleep"] == 0.01
    assert ambs_main("simulate", "problems.branin", "--workers", "2", "--duration", "60", "--idle-sleep", "-1") == 2
    err = capfd.readouterr().err
    assert err.startswith("ambs simulate: error: argument --idle-sleep") and err.count("\n") == 1


def test_a_live_fit_is_installed_at_its_real_duration_on_the_virtual_clock():
    """--live-fits: the fit really runs in a fitting process; its model is
    installed once the virtual clock has passed the fit's start plus the real
    seconds it took, and where the virtual clock runs ahead, the simulation
    waits for the fit off the master's clock."""
    from ambs import AMBS, Problem
    from ambs.simulate import LiveFitter, VirtualClock

    p = Problem()
    p.add_hyperparameter((-5.0, 5.0), "x")
    p.add_hyperparameter((-5.0, 5.0), "y")
    search = AMBS(p, random_state=0, n_initial_points=5)
    search.tell([(c, -c["x"] ** 2 - c["y"] ** 2) for c in search.ask(5)])
    clock = VirtualClock(0.0)
    fitter = LiveFitter(search, clock)
    try:
        clock.resume()
        fitter.poll()  # the first fit goes to the fitting process
        assert fitter._future is not None and search.n_fits == 0
        t = time.perf_counter()
        assert fitter._done.wait(60), "the fit did not end"
        clock.exclude(time.perf_counter() - t)  # the fit ended in real time, not yet in virtual time
        fitter.poll()
        assert fitter.fits == 0, "installed before the virtual clock reached its end"
        clock.now += fitter._took  # now it has
        fitter.poll()
        assert fitter.fits == 1 and fitter.fit_seconds == fitter._took > 0 and search._fitted_on == 5
        # A second fit, with the virtual clock far ahead of the real one: the
        # poll waits for the fit, and the wait is not the master's compute.
        search.tell([(c, -c["x"] ** 2 - c["y"] ** 2) for c in search.ask(3)])
        fitter.poll()
        assert fitter._future is not None
        clock.now += 1000.0
        clock.resume()
        fitter.poll()
        assert fitter.fits == 2 and search._fitted_on == 8 and fitter.waited > 0
        assert clock.master_elapsed() < fitter.waited
    finally:
        fitter.close()


def test_live_fits_with_a_fixed_master_cost_is_a_one_line_error(ambs_main, capfd):
    code = ambs_main("simulate", "problems.branin", "--workers", "4", "--duration", "const:1",
                     "--max-evals", "8", "--live-fits", "--master-cost", "0.1,1")
    err = capfd.readouterr().err
    assert code == 2 and "--live-fits" in err and "Traceback" not in err


def test_simulate_with_live_fits_runs_a_search(ambs_main, capfd):
    code = ambs_main("simulate", "problems.branin", "--workers", "4", "--duration", "lognormal:0.05,0.5",
                     "--max-evals", "40", "--n-initial-points", "5", "--live-fits", "--json")
    data = json.loads(capfd.readouterr().out)
    assert code == 0 and data["evaluations"] == 40 and data["fits"] >= 1


def test_the_simulators_fits_go_on_in_its_process_if_the_fitting_process_dies(capfd):
    import os
    import signal

    from ambs import AMBS, Problem
    from ambs.simulate import SimulatedFitter, VirtualClock

    p = Problem()
    p.add_hyperparameter((-5.0, 5.0), "x")
    search = AMBS(p, random_state=0, n_initial_points=4)
    search.tell([(c, -c["x"] ** 2) for c in search.ask(4)])
    clock = VirtualClock(0.0)
    fitter = SimulatedFitter(search, clock, transfer=True)
    try:
        clock.resume()
        for pid in list(fitter._pool._processes):  # type: ignore[union-attr]
            os.kill(pid, signal.SIGKILL)
        time.sleep(0.5)
        fitter.poll()  # the fit cannot go to the dead process: it runs here
        clock.now = fitter._ready_at
        fitter.poll()
        assert fitter._pool is None and fitter.fits == 1 and search._fitted_on == 4
        assert "fitting process died" in capfd.readouterr().err
    finally:
        fitter.close()


def test_a_poller_sees_a_message_at_its_next_probe() -> None:
    """The backoff of the MPI evaluator's waits: a probe at once, then sleeps of
    20 us doubling up to the cap, each a little longer than asked."""
    o = SLEEP_OVERSHOOT
    probes = [0.0, 2e-5 + o, 6e-5 + 2 * o, 1.4e-4 + 3 * o]
    for before, at in zip(probes, probes[1:]):
        assert noticed_after(at, 1e-3) == pytest.approx(at)  # arrives at a probe: seen there
        assert noticed_after((before + at) / 2, 1e-3) == pytest.approx(at)  # between two: at the next
    assert noticed_after(0.0, 1e-3) == 0.0 and noticed_after(-1.0, 1e-3) == 0.0
    for waited in np.linspace(0.01, 5.0, 97):  # past the doubling: one probe a period
        seen = noticed_after(float(waited), 2e-3)
        assert waited <= seen < waited + 2e-3 + o + 1e-12


def test_polling_delays_a_job_by_less_than_a_probe_period(tmp_path, rows):
    """With polling, each job starts at its worker's next probe after it is
    handed out: never before, and less than one cap (2% of the evaluation,
    at most 2 ms) plus the overshoot after, on top of the master's compute."""
    loaded = load_problem("problems.branin")
    rec = _recorder(tmp_path, loaded, "random")
    try:
        rep = simulate(RandomSearch(loaded.problem, random_state=0), loaded.run, rec, workers=4,
                       duration=parse_duration("const:1"), max_evals=24)
    finally:
        rec.close()
    lags = [float(r["started"]) - float(r["submitted"]) for r in rows(tmp_path / "random" / "results.csv")]
    assert min(lags) >= 0.0
    assert max(lags) < POLL_MAX + SLEEP_OVERSHOOT + rep.master_seconds + 1e-9
    assert sum(lag > 1e-4 for lag in lags) >= 12  # most jobs waited for a probe


@pytest.mark.parametrize("method", ["random", "ambs"])
def test_asking_ahead_hands_out_each_proposal_once_within_max_evals(tmp_path, method, rows, monkeypatch):
    """From ``ASK_AHEAD_FROM`` free workers on, the driver asks for twice as many again
    and hands them out at the next dispatch before it asks: fewer asks, every
    job run once, never more evaluations than ``max_evals`` (here from 4 free
    workers on, results gathering while each master step of 50 ms runs)."""
    import ambs.driver

    def run_with(threshold: int, name: str) -> tuple[int, list[dict]]:
        monkeypatch.setattr(ambs.driver, "ASK_AHEAD_FROM", threshold)
        loaded = load_problem("problems.branin")
        search = (AMBS if method == "ambs" else RandomSearch)(loaded.problem, random_state=0)
        asks = []
        ask_jobs = search.ask_jobs
        monkeypatch.setattr(search, "ask_jobs", lambda n=1: asks.append(n) or ask_jobs(n))
        rec = _recorder(tmp_path / name, loaded, method)
        try:
            rep = simulate(search, loaded.run, rec, workers=32, duration=parse_duration("lognormal:1,0.5"),
                           max_evals=203, master_cost=MasterCost(0.05, 0.01))
        finally:
            rec.close()
        assert rep.evaluations == 203 and rep.stop_reason == "max-evals"
        return len(asks), rows(tmp_path / name / method / "results.csv")

    n_ahead, table = run_with(4, "ahead")
    n_plain, _ = run_with(10**9, "plain")
    assert len(table) == 203
    assert sorted(int(r["job_id"]) for r in table) == list(range(203))
    keys = [(r["p:x0"], r["p:x1"]) for r in table]
    assert len(set(keys)) == len(keys)  # no proposal handed out twice
    assert n_ahead < n_plain, (n_ahead, n_plain)
