"""What the simulated clock charges (:mod:`ambs.simulate`): the time an
evaluation takes, drawn from a distribution, and the master's time, measured
or fixed."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ambs.errors import AmbsError

__all__ = ["SLEEP_OVERSHOOT", "SLINGSHOT", "Duration", "MasterCost", "MasterSpeed", "MessageCost", "noticed_after",
           "parse_duration", "parse_master_cost", "parse_message_cost"]


@dataclass(frozen=True)
class Duration:
    """A distribution of evaluation times, in seconds.

    Kinds: ``const:S``; ``uniform:LO,HI``; ``lognormal:MEDIAN,SIGMA`` (the log
    of the time is normal with mean log(MEDIAN) and standard deviation SIGMA);
    ``exponential:MEAN``.
    """

    kind: str
    params: tuple[float, ...]

    def sample(self, rng: np.random.Generator) -> float:
        k, p = self.kind, self.params
        if k == "const":
            return p[0]
        if k == "uniform":
            return float(rng.uniform(p[0], p[1]))
        if k == "lognormal":
            return float(p[0] * math.exp(p[1] * rng.standard_normal()))
        return float(rng.exponential(p[0]))

    def __str__(self) -> str:
        return f"{self.kind}:{','.join(f'{v:g}' for v in self.params)}"


_ARITY = {"const": 1, "uniform": 2, "lognormal": 2, "exponential": 1}


def parse_duration(text: str) -> Duration:
    """Parse ``KIND:P1[,P2]`` (a bare number means ``const``); raises AmbsError with one line."""
    kind, _, rest = text.partition(":")
    if not rest:
        kind, rest = "const", text
    kind = kind.strip().lower()
    if kind not in _ARITY:
        raise AmbsError(f"unknown duration {text!r}: use const:S, uniform:LO,HI, lognormal:MEDIAN,SIGMA "
                        "or exponential:MEAN")
    try:
        params = tuple(float(v) for v in rest.split(","))
    except ValueError:
        raise AmbsError(f"duration {text!r}: the parameters must be numbers") from None
    if len(params) != _ARITY[kind]:
        raise AmbsError(f"duration {text!r}: {kind} takes {_ARITY[kind]} parameter(s)")
    if not all(math.isfinite(v) and v >= 0 for v in params):
        raise AmbsError(f"duration {text!r}: the parameters must be finite and >= 0")
    if kind == "uniform" and params[0] > params[1]:
        raise AmbsError(f"duration {text!r}: LO must not exceed HI")
    if kind in ("const", "lognormal", "exponential") and params[0] <= 0:
        raise AmbsError(f"duration {text!r}: the time must be > 0")
    return Duration(kind, params)


@dataclass(frozen=True)
class MasterCost:
    """Fixed virtual seconds for the master's work, instead of measured ones:
    ``step`` for each time the master hands over to the workers (recording,
    telling, asking and submitting since it last did), ``fit`` for each
    background fit."""

    step: float
    fit: float

    def __str__(self) -> str:
        return f"{self.step:g},{self.fit:g}"


def _two_numbers(text: str, what: str, usage: str) -> tuple[float, float]:
    """``A,B`` as two floats; an AmbsError naming ``what`` and its ``usage`` otherwise."""
    try:
        a, b = (float(v) for v in text.split(","))
    except ValueError:
        raise AmbsError(f"{what} {text!r}: {usage}") from None
    return a, b


@dataclass(frozen=True)
class MasterSpeed:
    """The master's compute as measured here, ``scale`` times as long: a master
    core (and its fitting process) slower than this machine's, such as a KNL
    core's, or a day when this machine is slower."""

    scale: float

    def __str__(self) -> str:
        return f"measured:{self.scale:g}"


def parse_master_cost(text: str) -> MasterCost | MasterSpeed | None:
    """Parse ``measured`` (None), ``measured:FACTOR`` or ``STEP,FIT`` seconds;
    raises AmbsError with one line."""
    word, _, factor = text.strip().lower().partition(":")
    if word == "measured" and not factor:
        return None
    if word == "measured":
        try:
            scale = float(factor)
        except ValueError:
            scale = math.nan
        if not (math.isfinite(scale) and scale > 0):
            raise AmbsError(f"master cost {text!r}: measured:FACTOR takes a number > 0, e.g. measured:2.5")
        return MasterSpeed(scale)
    step, fit = _two_numbers(text, "master cost", "use measured, measured:FACTOR, or STEP,FIT (seconds per master "
                                                   "step and per fit, e.g. 0.05,0.5)")
    if not all(math.isfinite(v) and v >= 0 for v in (step, fit)):
        raise AmbsError(f"master cost {text!r}: the seconds must be finite and >= 0")
    return MasterCost(step, fit)


@dataclass(frozen=True)
class MessageCost:
    """What a message between the master and a worker costs on the virtual
    clock: ``latency`` seconds plus its pickled size over ``bandwidth`` bytes
    per second, on the way to the worker (the job) and back (the result).
    Pickling and unpickling on the master are its compute, measured as such."""

    latency: float
    bandwidth: float

    def seconds(self, size: int) -> float:
        return self.latency + size / self.bandwidth

    def __str__(self) -> str:
        return f"{self.latency:g},{self.bandwidth:g}"


# How much longer than asked a short time.sleep lasts on Linux: its default timer
# slack (50 us) and the wake-up; measured here, 70 to 90 us for sleeps of 20 us to 2 ms.
SLEEP_OVERSHOOT = 8e-5


def noticed_after(waited: float, cap: float, overshoot: float = SLEEP_OVERSHOOT) -> float:
    """When a poller sees a message that arrived ``waited`` seconds after it
    began to wait, counted from then: the time of its first probe at or after
    the arrival. It probes at once, then sleeps 20 us, doubling up to ``cap``,
    between probes, each sleep ``overshoot`` longer than asked: the backoff of
    the MPI master's wait for results and of a worker rank's wait for a job
    (:mod:`ambs.comm`, :func:`ambs.comm.poll_cap`)."""
    if waited <= 0:
        return 0.0
    t, pause = 0.0, 0.0
    while pause < cap:  # the doubling part: a dozen probes at most
        pause = min(max(pause * 2, 2e-5), cap)
        t += pause + overshoot
        if t >= waited:
            return t
    period = cap + overshoot  # then a probe every period
    return t + math.ceil((waited - t) / period) * period


# HPE Slingshot-11 (Frontier, Aurora, Polaris): about 2 us MPI latency between
# nodes and 200 Gb/s (25 GB/s) per NIC (De Sensi et al., "An In-Depth Analysis
# of the Slingshot Interconnect", SC20; HPE's Slingshot-11 specifications).
SLINGSHOT = MessageCost(2e-6, 25e9)


def parse_message_cost(text: str) -> MessageCost | None:
    """Parse ``none``, ``slingshot`` or ``LATENCY,BANDWIDTH`` (seconds, bytes
    per second); raises AmbsError with one line."""
    word = text.strip().lower()
    if word == "none":
        return None
    if word == "slingshot":
        return SLINGSHOT
    latency, bandwidth = _two_numbers(text, "message cost", "use none, slingshot, or LATENCY,BANDWIDTH (seconds "
                                                             "and bytes per second, e.g. 2e-6,25e9)")
    if not (math.isfinite(latency) and latency >= 0 and bandwidth > 0):
        raise AmbsError(f"message cost {text!r}: the latency must be finite and >= 0, the bandwidth > 0")
    return MessageCost(latency, bandwidth)
