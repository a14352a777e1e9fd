"""A throw-away `floor serve` for tests and benchmarks.

    with LiveServer(bench_endpoints=True, debounce_ms=0) as server:
        token = server.token("device", "sim")
        requests.get(server.url + "/healthz")

It makes a temporary instance folder (SQLite database, secret key), runs `floor db upgrade`,
starts `floor serve` on a free port of 127.0.0.1 in its own process session, waits for
``/healthz``, and on exit stops the whole session and removes the folder. The server's
output goes to ``server.log`` in the instance folder; `log_tail()` shows its end.

No ``FLOOR_*`` variable is inherited from the environment (one could point the server at a
real database or message queue); pass `database_url` or `env` to set them on purpose.
"""
from __future__ import annotations

import contextlib
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

import requests



class ServerError(RuntimeError):
    pass


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def floor_command() -> list[str]:
    """The `floor` console script next to this interpreter, else the one on PATH."""
    here = Path(sys.executable).with_name("floor")
    if here.exists():
        return [str(here)]
    found = shutil.which("floor")
    if found:
        return [found]
    raise ServerError("the `floor` command is not installed (pip install -e .)")


def session_pids(leader: int) -> list[int]:
    """Every process of the session `leader` started (a pre-forking server has several)."""
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                stat = fh.read()
        except OSError:
            continue
        if int(stat[stat.rindex(")") + 2:].split()[3]) == leader:  # field 6: the session id
            out.append(int(entry))
    return out


def cpu_of(pids: Sequence[int]) -> float:
    """User + system CPU seconds used so far by these processes (Linux)."""
    ticks, total = os.sysconf("SC_CLK_TCK"), 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as fh:
                stat = fh.read()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / ticks


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def simulator_serial_globs(*folders: str | os.PathLike[str]) -> str:
    """FLOOR_SERIAL_PORT_GLOBS for a server the simulator's serial scanners talk to: the
    default device paths, ptys, and the links `run_shift` makes (floor-sim-serial-* in the
    temporary folder) or in `folders`."""
    from floor.devices.domain import DEFAULT_SERIAL_PORT_GLOBS
    links = [f"{tempfile.gettempdir()}/floor-sim-serial-*/*", *(f"{f}/*" for f in folders)]
    return ",".join([*DEFAULT_SERIAL_PORT_GLOBS, "/dev/pts/*", *links])


class LiveServer:
    def __init__(self, *, host: str = "127.0.0.1", port: int | None = None,
                 instance_path: str | os.PathLike[str] | None = None,
                 bench_endpoints: bool = False, debounce_ms: int | None = None,
                 database_url: str | None = None, env: Mapping[str, str] | None = None,
                 serve_args: Sequence[str] = (), command: Sequence[str] | None = None,
                 startup_timeout: float = 60.0) -> None:
        self.host = host
        self.port = port
        self._given_instance = instance_path
        self.instance_path: Path | None = None
        self.bench_endpoints = bench_endpoints
        self.debounce_ms = debounce_ms
        self.database_url = database_url
        self.extra_env = dict(env or {})
        self.serve_args = list(serve_args)
        # Another server command instead of `floor serve` (e.g. gunicorn with another worker
        # class); "{host}" and "{port}" in its arguments are filled in.
        self.command = list(command) if command else None
        self.startup_timeout = startup_timeout
        self.proc: subprocess.Popen[bytes] | None = None
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._log: Any = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def log_path(self) -> Path:
        assert self.instance_path is not None
        return self.instance_path / "server.log"

    def environ(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("FLOOR_")}
        assert self.instance_path is not None
        env["FLOOR_INSTANCE_PATH"] = str(self.instance_path)
        if self.bench_endpoints:
            env["FLOOR_BENCH_ENDPOINTS"] = "1"
        if self.debounce_ms is not None:
            env["FLOOR_SCAN_DEBOUNCE_MS"] = str(self.debounce_ms)
        if self.database_url:
            env["FLOOR_DATABASE_URL"] = self.database_url
        env.setdefault("PYTHONUNBUFFERED", "1")
        env["FLOOR_SERIAL_PORT_GLOBS"] = simulator_serial_globs()
        # Every simulated handheld and board connects from 127.0.0.1: the per-address socket
        # cap (meant for one device or one NAT) is lifted unless a test sets it.
        env["FLOOR_SOCKET_MAX_PER_ADDRESS"] = "100000"
        env.update(self.extra_env)
        return env

    def floor(self, *args: str, check: bool = True, timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
        """Run a `floor` CLI command against this server's instance."""
        assert self.instance_path is not None
        done = subprocess.run(floor_command() + list(args), env=self.environ(),
                              cwd=self.instance_path, capture_output=True, text=True,
                              timeout=timeout)
        if check and done.returncode != 0:
            raise ServerError(f"floor {' '.join(args)} exited {done.returncode}:\n"
                              f"{done.stdout[-2000:]}\n{done.stderr[-4000:]}")
        return done

    def token(self, role: str, name: str, *extra: str) -> str:
        out = self.floor("token", "create", "--role", role, "--name", name, *extra).stdout
        lines = [line.strip() for line in out.splitlines() if line.strip()]
        if not lines:
            raise ServerError("floor token create printed nothing")
        return lines[-1]

    def start(self) -> "LiveServer":
        if self._given_instance is not None:
            self.instance_path = Path(self._given_instance).resolve()
            self.instance_path.mkdir(parents=True, exist_ok=True)
        else:
            self._tmp = tempfile.TemporaryDirectory(prefix="floor-live-")
            self.instance_path = Path(self._tmp.name)
        if self.port is None:
            self.port = free_port(self.host)
        try:
            self.floor("db", "upgrade")
            self._log = open(self.log_path, "ab")
            if self.command:
                argv = [a.format(host=self.host, port=self.port) for a in self.command]
            else:
                argv = floor_command() + ["serve", "--host", self.host, "--port", str(self.port),
                                          *self.serve_args]
            self.proc = subprocess.Popen(
                argv,
                env=self.environ(), cwd=self.instance_path, stdout=self._log,
                stderr=subprocess.STDOUT, start_new_session=True)
            self._wait_healthy()
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_healthy(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        last: object = None
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise ServerError(f"floor serve exited {self.proc.returncode}:\n{self.log_tail()}")
            try:
                resp = requests.get(self.url + "/healthz", timeout=2)
                if resp.status_code == 200:
                    return
                last = f"HTTP {resp.status_code}"
            except requests.RequestException as exc:
                last = exc
            time.sleep(0.1)
        raise ServerError(f"floor serve not healthy after {self.startup_timeout:.0f} s ({last}):\n"
                          f"{self.log_tail()}")

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            # The server runs in its own session (it may have worker processes): stop them all.
            for sig, wait in ((signal.SIGTERM, 15.0), (signal.SIGKILL, 5.0)):
                try:
                    os.killpg(proc.pid, sig)
                except ProcessLookupError:
                    break
                try:
                    proc.wait(wait)
                    break
                except subprocess.TimeoutExpired:
                    continue
        if self._log is not None:
            self._log.close()
            self._log = None
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> "LiveServer":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def log_tail(self, chars: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def pids(self) -> list[int]:
        """The server's processes (its session: gunicorn's master and worker)."""
        return [] if self.proc is None else session_pids(self.proc.pid)

    def cpu_seconds(self) -> float:
        """User + system CPU seconds used so far by the server's processes (Linux)."""
        return cpu_of(self.pids())


class RedisServer:
    """A private redis-server on a free port, so a test or a benchmark can stop and restart it."""

    def __init__(self) -> None:
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        import redis

        self.proc = subprocess.Popen(["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
                                      "--save", "", "--appendonly", "no"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                redis.Redis(port=self.port).ping()
                return
            except Exception:  # noqa: BLE001 - not up yet
                time.sleep(0.05)
        raise ServerError("redis-server did not start")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None


@contextlib.contextmanager
def postgres_schema(base_url: str, prefix: str = "floor") -> Iterator[str]:
    """A fresh, migrated schema on PostgreSQL for one test or run; yields a URL whose
    connections use it, and drops it afterwards."""
    from sqlalchemy import create_engine, text

    from floor.migrate import upgrade

    schema = f"{prefix}_{uuid.uuid4().hex[:8]}"
    admin = create_engine(base_url.replace("postgresql://", "postgresql+psycopg://"))
    try:
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        url = f"{base_url}{'&' if '?' in base_url else '?'}options=-csearch_path%3D{schema}"
        try:
            upgrade(url)
            yield url
        finally:
            with admin.begin() as conn:
                conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    finally:
        admin.dispose()
