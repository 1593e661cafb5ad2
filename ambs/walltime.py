"""One reading of a duration for every command: ``ambs search``, ``simulate`` and ``submit``.

Accepted: ``[D-]HH:MM:SS`` and ``MM:SS`` as schedulers write them, or a number
with a unit, ``90s``, ``45m``, ``2h``, ``1d``. A bare number is **seconds**,
in every command (Slurm reads a bare ``--time`` as minutes; ambs does not, so
that ``ambs search --walltime 3600`` and ``ambs submit --walltime 3600`` mean
the same hour). Job scripts get ``HH:MM:SS`` (:func:`hms`), which every
scheduler reads the same way.
"""

from __future__ import annotations

import math
import re

__all__ = ["HELP", "hms", "parse_walltime"]

HELP = "HH:MM:SS, MM:SS, or a number with a unit (90s, 45m, 2h); a bare number is seconds"

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_WITH_UNIT = re.compile(r"^(\d+(?:\.\d*)?|\.\d+)\s*([smhd]?)$", re.IGNORECASE)


def parse_walltime(text: str) -> float:
    """Seconds in ``text`` (see the module); ValueError with a one-line reason."""
    t = str(text).strip()
    if ":" in t:
        days = 0
        if "-" in t:
            d, t = t.split("-", 1)
            if not d.isdigit():
                raise ValueError(f"expected {HELP}, got {text!r}")
            days = int(d)
        parts = t.split(":")
        if len(parts) > 3 or not all(p.replace(".", "", 1).isdigit() for p in parts):
            raise ValueError(f"expected {HELP}, got {text!r}")
        if any(float(p) >= 60 for p in parts[1:]):  # 1:61:00 is a typo, not 2:01:00
            raise ValueError(f"minutes and seconds must be below 60, got {text!r}")
        seconds = 0.0
        for p in parts:
            seconds = seconds * 60 + float(p)
        value = days * 86400 + seconds
    else:
        m = _WITH_UNIT.match(t)
        if not m:
            raise ValueError(f"expected {HELP}, got {text!r}")
        value = float(m.group(1)) * _UNITS[(m.group(2) or "s").lower()]
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"must be more than 0 seconds, got {text!r}")
    return value


def hms(seconds: float) -> str:
    """``HH:MM:SS`` (hours past 24 as they are), rounded down to whole seconds."""
    s = int(seconds)
    return f"{s // 3600:02d}:{s % 3600 // 60:02d}:{s % 60:02d}"
