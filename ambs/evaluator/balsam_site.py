"""Balsam 1 on a machine that is not an ALCF system: its site settings and a database directory.

Balsam 1 (``balsam-flow``) reads its site settings from ``~/.balsam/settings.json``,
which it fills on first use with defaults for ALCF's Theta (``aprun``, Cobalt
node lists), and finds its database through ``$BALSAM_DB_PATH/server-info``.
Its own ``balsam init`` starts a private PostgreSQL that listens on every address
with trust authentication; this module instead points a database directory at
an existing server (``scripts/postgres-local-up.sh``, or a site's) with a
password, and writes settings under which the launcher runs jobs on this host
with the ``mpirun`` found on ``PATH``.

    python -m ambs.evaluator.balsam_site DB_DIR --connection balsam.json [--local-site]

prints the environment to export (``BALSAM_DB_PATH``, ``BALSAM_USER``).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

__all__ = ["balsam_home", "init_db_dir", "local_site_settings", "migrate", "write_local_site"]

SERVER_INFO = "server-info"


def balsam_home(home: str | Path | None = None) -> Path:
    """Balsam 1's per-user configuration directory (``~/.balsam``, from ``$HOME``)."""
    return Path(home if home is not None else os.path.expanduser("~")) / ".balsam"


def local_site_settings(cores: int | None = None) -> dict[str, Any]:
    """The settings that differ from Balsam's Theta defaults on a single Linux host.

    One worker node, this host (``DEFAULT`` detection); MPI jobs started with
    MPICH's ``mpirun -n N --ppn R``; serial jobs packed on this host's cores.
    """
    return {
        "WORKER_DETECTION_TYPE": "DEFAULT",
        "MPI_RUN_TEMPLATE": "MPICHCommand",
        "SERIAL_CORES_PER_NODE": int(cores or os.cpu_count() or 1),
        "SERIAL_HYPERTHREAD_STRIDE": 1,
    }


def write_local_site(home: str | Path | None = None, cores: int | None = None) -> Path:
    """Write (or update) ``settings.json`` in Balsam's configuration directory
    for this host, keeping every other key Balsam expects; returns its path."""
    # Found, not imported: importing balsam changes sys.excepthook and the root logger.
    spec = importlib.util.find_spec("balsam")
    if spec is None or spec.origin is None:
        raise RuntimeError("Balsam is not installed: pip install -e '.[balsam]' (balsam-flow)")
    defaults_path = Path(spec.origin).parent / "django_config" / "default_settings.json"
    settings = json.loads(defaults_path.read_text())
    directory = balsam_home(home)
    path = directory / "settings.json"
    if path.exists():
        try:
            settings.update(json.loads(path.read_text()))
        except json.JSONDecodeError:
            pass  # Balsam would replace it with its defaults; so do we
    settings.update(local_site_settings(cores))
    directory.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(settings, indent=1) + "\n")
    os.replace(tmp, path)
    return path


def init_db_dir(db_dir: str | Path, host: str, port: int, password: str = "") -> Path:
    """Make ``db_dir`` a Balsam database directory that uses the server at
    ``host:port`` (database ``balsam``); the password is stored in its
    ``server-info``, readable by the owner only."""
    db_dir = Path(db_dir).resolve()
    db_dir.mkdir(parents=True, exist_ok=True)
    info = db_dir / SERVER_INFO
    fd = os.open(info, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump({"host": host, "port": int(port), "password": password}, fh)
    os.chmod(info, 0o600)
    return db_dir


def balsam_env(db_dir: str | Path, user: str, base: dict[str, str] | None = None) -> dict[str, str]:
    """An environment in which Balsam uses ``db_dir`` as database role ``user``."""
    env = dict(os.environ if base is None else base)
    env["BALSAM_DB_PATH"] = str(Path(db_dir).resolve())
    env["BALSAM_USER"] = user
    return env


_MIGRATE = """
import balsam
balsam.setup()
from django.core.management import call_command
call_command("makemigrations", "core", verbosity=0)
call_command("migrate", verbosity=0)
"""


def migrate(env: dict[str, str], timeout: float = 300) -> None:
    """Create or update Balsam's tables in the database ``env`` points at.

    Runs in a child process, because Balsam reads its settings once, at import.
    Raises RuntimeError with Balsam's last output line on failure.
    """
    proc = subprocess.run([sys.executable, "-c", _MIGRATE], env=env, capture_output=True,
                          text=True, timeout=timeout)
    if proc.returncode != 0:
        lines = (proc.stderr or proc.stdout).strip().splitlines()
        raise RuntimeError(f"Balsam's migrations failed: {lines[-1] if lines else proc.returncode}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m ambs.evaluator.balsam_site",
        description="Point a Balsam 1 database directory at a running PostgreSQL server, "
                    "create Balsam's tables, and optionally configure Balsam for this host.")
    parser.add_argument("db_dir", help="the Balsam database directory (BALSAM_DB_PATH)")
    parser.add_argument("--connection", required=True,
                        help="JSON file with host, port, user, password (as written by "
                             "scripts/postgres-local-up.sh)")
    parser.add_argument("--local-site", action="store_true",
                        help="write ~/.balsam/settings.json for running jobs on this host")
    args = parser.parse_args(argv)
    conn = json.loads(Path(args.connection).read_text())
    db_dir = init_db_dir(args.db_dir, conn.get("host", "localhost"), conn["port"],
                         conn.get("password", ""))
    if args.local_site:
        print(f"# site settings: {write_local_site()}", file=sys.stderr)
    env = balsam_env(db_dir, conn.get("user", "balsam"))
    migrate(env)
    print(export_lines(db_dir, env["BALSAM_USER"]), end="")
    return 0


def export_lines(db_dir: str | Path, user: str) -> str:
    """The shell lines that point Balsam at ``db_dir`` as ``user``, for ``eval``:
    each value shell-quoted, so a path with a space or a ``$`` stays what it is."""
    return (f"export BALSAM_DB_PATH={shlex.quote(str(db_dir))}\n"
            f"export BALSAM_USER={shlex.quote(user)}\n")


if __name__ == "__main__":
    sys.exit(main())
