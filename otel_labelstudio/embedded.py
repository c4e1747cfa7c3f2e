"""A real Label Studio on loopback, for the test suite and for `otel-labelstudio demo`.

Label Studio pins Django and ~160 other packages that must not meet ours, so it lives in its own
virtualenv, installed once per machine from `requirements/label-studio.lock.txt` with uv:

    <cache>/label-studio-1.23.2/      the venv; `.otel-labelstudio-installed` (the lock's sha256)
                                      is written last, so an interrupted install is redone
    <cache>/ls-template-1.23.2/       a data dir with every migration applied and no user yet,
                                      made in a temp dir and renamed into place when complete
    <cache>/tools/bin/uv              uv, when none is on PATH
    <cache>/.install.lock             flock: one process installs, the others wait

`<cache>` is `$OTEL_LABELSTUDIO_CACHE`, else `~/.cache/otel-labelstudio`.

Migrating a fresh database takes ~40 s; starting from a copy of the template takes ~4 s. So every
server gets its own copy of the template. The template holds no user, no organization and no
SECRET_KEY (the `.env` file is removed): on its first start each server creates the user from
*our* username, password and legacy token (passed through the environment, not argv, so they do
not show in `ps`), creates the organization with legacy tokens enabled, and generates its own
SECRET_KEY, which signs its JWTs. The Personal Access Token is then created through the API with
the legacy token. Label Studio shows a PAT only once, so the credentials are kept in
`<data dir>/otel-labelstudio-credentials.json` (mode 0600, like Label Studio's own `.env`), which
is how a persistent data dir (the demo's) is started again with the same logins.

    python -m otel_labelstudio.embedded --install     # install + migrate now; prints the paths
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import json
import logging
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import weakref
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import httpx

from otel_labelstudio.errors import OtelLabelStudioError

__all__ = [
    "LABEL_STUDIO_VERSION",
    "EmbeddedLabelStudio",
    "EmbeddedLabelStudioError",
    "RunningLabelStudio",
    "default_cache_dir",
    "port_is_free",
]

logger = logging.getLogger(__name__)

LABEL_STUDIO_VERSION = "1.23.2"
UV_VERSION = "0.13.8"
HOST = "127.0.0.1"

_LOCK_FILE = Path(__file__).resolve().parent.parent / "requirements" / "label-studio.lock.txt"
_INSTALLED_MARKER = ".otel-labelstudio-installed"
_TEMPLATE_MARKER = ".otel-labelstudio-template"
_CREDENTIALS_FILE = "otel-labelstudio-credentials.json"
_LOG_FILE = "label-studio.log"
_DATABASE_FILE = "label_studio.sqlite3"

# The child sees only these from our environment, plus what _server_env sets. A whitelist,
# because Label Studio reads any X, LABEL_STUDIO_X or HEARTEX_X for its settings (USERNAME,
# PORT, HOST, DJANGO_DB, POSTGRE_*, ...) and proxies must not catch its loopback traffic.
_INHERITED_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "TMPDIR", "SYSTEMROOT")
# Django's runserver says so just before it binds.
_SERVING_AT = re.compile(r"Starting development server at (http://\S+/)")
_START_ATTEMPTS = 3  # only when we chose the port: another process may take it in between


class EmbeddedLabelStudioError(OtelLabelStudioError):
    """Installing, migrating or starting the embedded Label Studio failed. The message ends
    with the tail of Label Studio's log when there is one."""


def default_cache_dir() -> Path:
    configured = os.environ.get("OTEL_LABELSTUDIO_CACHE")
    if configured:
        return Path(configured).expanduser()
    return Path.home() / ".cache" / "otel-labelstudio"


class EmbeddedLabelStudio:
    """Installs Label Studio once per machine and starts servers from a migrated template.

    Thread- and process-safe: installation and migration run under a file lock.
    """

    version = LABEL_STUDIO_VERSION

    def __init__(self, cache_dir: Path | None = None, *, lock_file: Path | None = None) -> None:
        self.cache_dir = (cache_dir or default_cache_dir()).resolve()
        self.lock_file = lock_file or _LOCK_FILE
        self.venv_dir = self.cache_dir / f"label-studio-{self.version}"
        self.template_dir = self.cache_dir / f"ls-template-{self.version}"

    def __repr__(self) -> str:
        return f"EmbeddedLabelStudio(cache_dir={str(self.cache_dir)!r})"

    @property
    def label_studio_executable(self) -> Path:
        return self.venv_dir / "bin" / "label-studio"

    # -- installation -----------------------------------------------------------------------

    def ensure_installed(self) -> Path:
        """The Label Studio venv, installed from the lock file if missing or incomplete."""
        lock_text = self._lock_text()
        digest = hashlib.sha256(lock_text.encode()).hexdigest()
        marker = self.venv_dir / _INSTALLED_MARKER
        if _read(marker) == digest:
            return self.venv_dir
        with self._install_lock():
            if _read(marker) == digest:  # another process finished while we waited
                return self.venv_dir
            self._install(lock_text, digest)
        return self.venv_dir

    def ensure_template(self) -> Path:
        """The migrated data-dir template, made (once per cache) if missing."""
        self.ensure_installed()
        if (self.template_dir / _TEMPLATE_MARKER).is_file():
            return self.template_dir
        with self._install_lock():
            if not (self.template_dir / _TEMPLATE_MARKER).is_file():
                self._migrate_template()
        return self.template_dir

    def _lock_text(self) -> str:
        try:
            return self.lock_file.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise EmbeddedLabelStudioError(
                f"{self.lock_file} not found: the embedded Label Studio is installed from the"
                " lock file in a source checkout of otel-labelstudio"
            ) from None

    @contextlib.contextmanager
    def _install_lock(self) -> Iterator[None]:
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        with (self.cache_dir / ".install.lock").open("a") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                logger.info("waiting for another process to finish installing Label Studio")
                fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _install(self, lock_text: str, digest: str) -> None:
        uv = self._uv()
        python = self.venv_dir / "bin" / "python"
        started = time.monotonic()
        logger.info("installing Label Studio %s into %s", self.version, self.venv_dir)
        (self.venv_dir / _INSTALLED_MARKER).unlink(missing_ok=True)
        if not _runs(python, "-c", "import sys"):
            # Missing, or a half-made venv from an interrupted run: start over.
            shutil.rmtree(self.venv_dir, ignore_errors=True)
            _run([uv, "venv", "--quiet", "--python", "3.11", str(self.venv_dir)], "uv venv")
        # `pip sync` makes the venv match the lock exactly, so it also repairs an interrupted
        # install without throwing away a venv that a running server may be using.
        with tempfile.NamedTemporaryFile("w", suffix=".txt", encoding="utf-8") as lock_copy:
            lock_copy.write(lock_text)  # the digest in the marker is of exactly this text
            lock_copy.flush()
            _run(
                [uv, "pip", "sync", "--quiet", "--python", str(python), lock_copy.name],
                "uv pip sync",
            )
        if not _runs(
            python,
            "-c",
            f"import label_studio; assert label_studio.__version__ == {self.version!r}",
        ):
            raise EmbeddedLabelStudioError(
                f"Label Studio {self.version} is not importable in {self.venv_dir} after install"
            )
        _write_atomically(self.venv_dir / _INSTALLED_MARKER, digest)
        logger.info("installed Label Studio in %.1f s", time.monotonic() - started)

    def _uv(self) -> str:
        on_path = shutil.which("uv")
        if on_path:
            return on_path
        tools = self.cache_dir / "tools"
        uv = tools / "bin" / "uv"
        if _runs(uv, "--version"):
            return str(uv)
        logger.info("installing uv %s into %s", UV_VERSION, tools)
        staging = Path(tempfile.mkdtemp(prefix="tools.tmp-", dir=self.cache_dir))
        try:
            _run([sys.executable, "-m", "venv", str(staging)], "python -m venv")
            pip = [str(staging / "bin" / "python"), "-m", "pip", "install", "--quiet"]
            _run([*pip, f"uv=={UV_VERSION}"], "pip install uv")
            # uv is a standalone binary, so the venv may be moved into place.
            shutil.rmtree(tools, ignore_errors=True)
            staging.rename(tools)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return str(uv)

    def _migrate_template(self) -> None:
        for stale in self.cache_dir.glob(f"{self.template_dir.name}.tmp-*"):
            shutil.rmtree(stale, ignore_errors=True)
        staging = Path(
            tempfile.mkdtemp(prefix=f"{self.template_dir.name}.tmp-", dir=self.cache_dir)
        )
        started = time.monotonic()
        logger.info("migrating a Label Studio database template (takes ~40 s, once)")
        try:
            # `label-studio version` applies the migrations and exits without serving: no port,
            # no user, no organization.
            log_path = staging / _LOG_FILE
            with log_path.open("wb") as log:
                completed = subprocess.run(
                    [str(self.label_studio_executable), "version", "--data-dir", str(staging)],
                    env=_server_env(staging),
                    cwd=staging,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    timeout=900,
                    check=False,
                )
            if completed.returncode != 0 or not (staging / _DATABASE_FILE).is_file():
                raise EmbeddedLabelStudioError(
                    f"migrating the Label Studio template failed (exit {completed.returncode})\n"
                    + _tail(log_path)
                )
            # Each server must generate its own SECRET_KEY: it signs that server's JWTs.
            (staging / ".env").unlink(missing_ok=True)
            log_path.unlink()
            (staging / _TEMPLATE_MARKER).write_text(self.version, encoding="utf-8")
            shutil.rmtree(self.template_dir, ignore_errors=True)
            staging.rename(self.template_dir)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        logger.info("migrated the template in %.1f s", time.monotonic() - started)

    # -- servers ----------------------------------------------------------------------------

    def start(
        self,
        data_dir: Path | None = None,
        port: int | None = None,
        *,
        username: str | None = None,
        password: str | None = None,
        legacy_token: str | None = None,
        startup_timeout_s: float = 120.0,
    ) -> RunningLabelStudio:
        """Start a server on 127.0.0.1 and return once it is healthy and both tokens work.

        `data_dir=None`: a fresh temporary copy of the template, deleted by `stop()`. An empty
        or missing `data_dir` gets a copy of the template and is kept; one that already holds a
        database is started as it is, with the credentials stored in it unless given here.
        `port=None`: a free port (retried if another process takes it first). A given port
        must be free: Label Studio would silently move to the next one.
        Credentials not given are generated (username `admin@example.com`).
        """
        template = self.ensure_template()
        owns_data_dir = data_dir is None
        directory = (
            Path(tempfile.mkdtemp(prefix="otel-labelstudio-")) if data_dir is None else data_dir
        ).resolve()
        try:
            fresh = not (directory / _DATABASE_FILE).is_file()
            if fresh:
                directory.mkdir(mode=0o700, parents=True, exist_ok=True)
                shutil.copytree(
                    template,
                    directory,
                    dirs_exist_ok=True,
                    ignore=shutil.ignore_patterns(_TEMPLATE_MARKER),
                )
            stored = _load_credentials(directory)
            if username is not None and username != stored.get("username"):
                stored = {}
            credentials = _Credentials(
                username=username or stored.get("username") or "admin@example.com",
                password=password or stored.get("password") or secrets.token_urlsafe(12),
                legacy_token=legacy_token or stored.get("legacy_token") or secrets.token_hex(20),
            )
            if not 5 < len(credentials.legacy_token) <= 40:
                # Label Studio ignores a shorter one; its token column holds 40 characters.
                raise EmbeddedLabelStudioError("legacy_token must have 6 to 40 characters")
            if fresh:
                # The server creates its user from these: keep them before it does.
                _store_credentials(directory, credentials, None)
            for attempt in range(1, _START_ATTEMPTS + 1):
                chosen = port if port is not None else _free_port()
                try:
                    server = self._start_once(directory, chosen, credentials, startup_timeout_s)
                except _PortTaken:
                    if port is not None or attempt == _START_ATTEMPTS:
                        raise EmbeddedLabelStudioError(
                            f"port {chosen} on {HOST} is taken by another process"
                        ) from None
                    logger.info("port %d was taken before Label Studio bound it; retrying", chosen)
                    continue
                server._owns_data_dir = owns_data_dir
                return server
        except BaseException:
            if owns_data_dir:
                shutil.rmtree(directory, ignore_errors=True)
            raise
        raise AssertionError("unreachable")  # pragma: no cover

    def _start_once(
        self, data_dir: Path, port: int, credentials: _Credentials, timeout_s: float
    ) -> RunningLabelStudio:
        if not _port_is_free(port):
            raise _PortTaken
        log_path = data_dir / _LOG_FILE
        env = _server_env(data_dir)
        env["LABEL_STUDIO_USERNAME"] = credentials.username
        env["LABEL_STUDIO_PASSWORD"] = credentials.password
        env["LABEL_STUDIO_USER_TOKEN"] = credentials.legacy_token
        command = [
            str(self.label_studio_executable),
            "start",
            "--no-browser",
            "--internal-host",
            HOST,
            "--port",
            str(port),
            "--enable-legacy-api-token",
            "--data-dir",
            str(data_dir),
        ]
        started = time.monotonic()
        with log_path.open("ab") as log:
            log_offset = log.tell()  # a reused data dir's log holds earlier runs
            process = subprocess.Popen(
                command,
                env=env,
                cwd=data_dir,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group, which stop() kills whole
            )
        server = RunningLabelStudio(
            process=process,
            port=port,
            username=credentials.username,
            password=credentials.password,
            legacy_token=credentials.legacy_token,
            data_dir=data_dir,
            log_path=log_path,
        )
        try:
            _wait_healthy(server, process, timeout_s, log_offset)
            server.personal_access_token = _personal_access_token(server)
            _store_credentials(data_dir, credentials, server.personal_access_token)
        except BaseException:
            server.stop()
            raise
        logger.info(
            "Label Studio %s is up at %s (pid %d) in %.1f s",
            self.version,
            server.url,
            process.pid,
            time.monotonic() - started,
        )
        return server


class RunningLabelStudio:
    """One Label Studio server process; `stop()` it, or use it as a context manager."""

    personal_access_token: str

    def __init__(
        self,
        *,
        process: subprocess.Popen[bytes],
        port: int,
        username: str,
        password: str,
        legacy_token: str,
        data_dir: Path,
        log_path: Path,
    ) -> None:
        self.host = HOST
        self.port = port
        self.url = f"http://{HOST}:{port}"
        self.username = username
        self.password = password
        self.legacy_token = legacy_token
        self.personal_access_token = ""
        self.data_dir = data_dir
        self.log_path = log_path
        self._process = process
        self._owns_data_dir = False
        # Also stop it if the caller forgets, or at interpreter exit (the server is in its own
        # session, so Ctrl-C never reaches it).
        self._finalizer = weakref.finalize(self, _kill_process_group, process, 10.0)

    def __repr__(self) -> str:  # never show the password or the tokens
        return (
            f"RunningLabelStudio(url={self.url!r}, pid={self.pid}, data_dir={str(self.data_dir)!r})"
        )

    def __enter__(self) -> RunningLabelStudio:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def pid(self) -> int:
        return self._process.pid

    def is_running(self) -> bool:
        return self._process.poll() is None

    def stop(self, timeout_s: float = 10.0) -> None:
        """SIGTERM the process group, SIGKILL it after `timeout_s`. Deletes the data dir if
        start() created it. Idempotent."""
        if self._finalizer.detach() is not None:
            _kill_process_group(self._process, timeout_s)
            logger.info("Label Studio at %s stopped", self.url)
        if self._owns_data_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)
            self._owns_data_dir = False

    def log_tail(self, lines: int = 40) -> str:
        return _tail(self.log_path, lines)

    def rss_bytes(self) -> int:
        """Resident memory of the server's whole process group (Linux only; 0 elsewhere)."""
        total = 0
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[2]) == self.pid:  # fields[2] is the process group id
                total += int(fields[21]) * os.sysconf("SC_PAGE_SIZE")  # fields[21]: rss pages
        return total


@dataclass(frozen=True)
class _Credentials:
    username: str
    password: str
    legacy_token: str


class _PortTaken(Exception):
    pass


def _server_env(data_dir: Path) -> dict[str, str]:
    env = {key: os.environ[key] for key in _INHERITED_ENV if key in os.environ}
    env.update(
        {
            "PYTHONUNBUFFERED": "1",  # the log must show the bound address as it happens
            "LATEST_VERSION_CHECK": "false",  # no call to PyPI
            "COLLECT_ANALYTICS": "false",
            "SENTRY_DSN": "",  # Label Studio reports errors to its Sentry by default
            "FRONTEND_SENTRY_DSN": "",
            "LABEL_STUDIO_BASE_DATA_DIR": str(data_dir),
            "DJANGO_DB": "sqlite",  # "default" means PostgreSQL to Label Studio
        }
    )
    return env


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        port: int = probe.getsockname()[1]
        return port


def _port_is_free(port: int) -> bool:
    # SO_REUSEADDR as Django's server sets it, so a port in TIME_WAIT counts as free.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((HOST, port))
        except OSError:
            return False
    # Label Studio's own check connects to localhost, which may be ::1.
    with contextlib.suppress(OSError), socket.create_connection(("localhost", port), timeout=1):
        return False
    return True


def port_is_free(port: int) -> bool:
    """Whether Label Studio could listen on this port of 127.0.0.1 without moving away."""
    return _port_is_free(port)


def _wait_healthy(
    server: RunningLabelStudio,
    process: subprocess.Popen[bytes],
    timeout_s: float,
    log_offset: int,
) -> None:
    """Until our process serves /health at our address. Health alone does not prove the server
    is ours: Label Studio moves to the next port when ours is taken, and whatever took it may
    answer. So our process must also say, in its log, that it listens at our address (and
    later, only our server knows our freshly generated legacy token)."""
    deadline = time.monotonic() + timeout_s
    # trust_env=False: a proxy from the environment must not intercept loopback traffic.
    with httpx.Client(timeout=2.0, trust_env=False) as http:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise EmbeddedLabelStudioError(
                    f"Label Studio exited with code {process.returncode} while starting\n"
                    + server.log_tail()
                )
            announced = _SERVING_AT.findall(_read(server.log_path, log_offset))
            if any(address != f"{server.url}/" for address in announced):
                raise _PortTaken
            with contextlib.suppress(httpx.HTTPError, ValueError):
                answer = http.get(f"{server.url}/health")
                healthy = answer.status_code == 200 and answer.json().get("status") == "UP"
                if healthy and announced:
                    return
            time.sleep(0.1)
    raise EmbeddedLabelStudioError(
        f"Label Studio did not become healthy at {server.url} within {timeout_s:.0f} s\n"
        + server.log_tail()
    )


def _personal_access_token(server: RunningLabelStudio) -> str:
    """Check that the legacy token logs in as our user, and return its PAT: the stored one if
    it still works, else a new one."""
    from label_studio_sdk import LabelStudio
    from label_studio_sdk.core.api_error import ApiError

    # trust_env=False: no proxy for loopback. max_retries=0: the SDK also retries on 409,
    # which is an answer here.
    with httpx.Client(timeout=30, trust_env=False) as http:

        def client(api_key: str) -> LabelStudio:
            return LabelStudio(  # type: ignore[no-untyped-call]
                base_url=server.url, api_key=api_key, max_retries=0, httpx_client=http
            )

        legacy = client(server.legacy_token)
        try:
            whoami = legacy.users.whoami()
        except ApiError as exc:
            if exc.status_code == 401:
                raise EmbeddedLabelStudioError(
                    f"the legacy token is not accepted by the Label Studio at {server.url}: its"
                    f" data dir {server.data_dir} was made with other credentials"
                ) from None
            raise
        if whoami.email != server.username:
            raise EmbeddedLabelStudioError(f"the server at {server.url} is not ours")
        stored = _load_credentials(server.data_dir).get("personal_access_token")
        # A new client each time: the SDK checks an expired JWT in its constructor.
        if stored and _still_valid(lambda: client(stored).users.whoami()):  # noqa: PLW0108
            return stored
        try:
            created = legacy.tokens.create()
        except ApiError as exc:
            # Our user has a PAT already: the stored one, unless that check was misled while
            # the server finished starting (seen once in a test that restarts it: the check
            # failed, the PAT was fine). Asked again, longer, and a 401 too this time.
            if exc.status_code == 409 and (
                stored
                and _still_valid(
                    lambda: client(stored).users.whoami(),  # noqa: PLW0108
                    attempts=15,
                    unauthorized_is_final=False,
                )
            ):
                return stored
            if exc.status_code == 409:
                # Label Studio never shows a PAT twice, and we did not keep it.
                raise EmbeddedLabelStudioError(
                    f"{server.username} already has a Personal Access Token in {server.data_dir},"
                    f" and it is not in {_CREDENTIALS_FILE}: revoke it in Label Studio"
                    " (Account & Settings) and start again"
                ) from None
            raise
    token = str(created.token or "")
    if not token:
        raise EmbeddedLabelStudioError("Label Studio returned an empty Personal Access Token")
    return token


def _load_credentials(data_dir: Path) -> dict[str, str]:
    try:
        loaded = json.loads((data_dir / _CREDENTIALS_FILE).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except ValueError:
        raise EmbeddedLabelStudioError(f"{data_dir / _CREDENTIALS_FILE} is not JSON") from None
    if not isinstance(loaded, Mapping):
        raise EmbeddedLabelStudioError(f"{data_dir / _CREDENTIALS_FILE} is not a JSON object")
    return {str(key): str(value) for key, value in loaded.items() if value}


def _store_credentials(data_dir: Path, credentials: _Credentials, pat: str | None) -> None:
    document = {
        "username": credentials.username,
        "password": credentials.password,
        "legacy_token": credentials.legacy_token,
        "personal_access_token": pat or "",
    }
    _write_atomically(data_dir / _CREDENTIALS_FILE, json.dumps(document, indent=2) + "\n")


def _write_atomically(path: Path, text: str) -> None:
    staging = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    descriptor = os.open(staging, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    staging.replace(path)


def _kill_process_group(process: subprocess.Popen[bytes], timeout_s: float) -> None:
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            logger.warning("Label Studio (pid %d) ignored SIGTERM; killing it", process.pid)
    # Whatever is left of the group, the leader included.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(5)


def _run(command: list[str], what: str) -> None:
    completed = subprocess.run(
        command, stdin=subprocess.DEVNULL, capture_output=True, text=True, check=False
    )
    if completed.returncode != 0:
        output = (completed.stdout + completed.stderr).strip()[-4000:]
        raise EmbeddedLabelStudioError(f"{what} failed (exit {completed.returncode}):\n{output}")


def _runs(executable: Path, *args: str) -> bool:
    if not executable.is_file():
        return False
    completed = subprocess.run(
        [str(executable), *args], stdin=subprocess.DEVNULL, capture_output=True, check=False
    )
    return completed.returncode == 0


def _read(path: Path, offset: int = 0) -> str:
    try:
        with path.open("rb") as handle:
            handle.seek(offset)
            return handle.read().decode("utf-8", errors="replace").strip()
    except FileNotFoundError:
        return ""


def _tail(path: Path, lines: int = 40) -> str:
    text = _read(path)
    if not text:
        return f"(no log at {path})"
    return f"--- last {lines} lines of Label Studio's log ---\n" + "\n".join(
        text.splitlines()[-lines:]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m otel_labelstudio.embedded",
        description=f"Install the embedded Label Studio {LABEL_STUDIO_VERSION}.",
    )
    parser.add_argument(
        "--install",
        action="store_true",
        help="install the Label Studio venv and migrate the data-dir template, if missing",
    )
    args = parser.parse_args(argv)
    if not args.install:
        parser.print_help()
        return 2
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    embedded = EmbeddedLabelStudio()
    try:
        embedded.ensure_template()
    except EmbeddedLabelStudioError as exc:
        logger.error("%s", exc)
        return 1
    print(embedded.venv_dir)
    print(embedded.template_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())


def _still_valid(
    whoami: Callable[[], object], attempts: int = 5, *, unauthorized_is_final: bool = True
) -> bool:
    """Whether a stored Personal Access Token still works. Only a 401 says no (expired, or
    signed by another server's key), unless `unauthorized_is_final` is False; anything else
    right after a restart (a 5xx, a refused connection while Label Studio finishes starting) is
    asked again: measured once in CI, a restarted server failed the check of its own token, and
    creating a second one is refused."""
    from label_studio_sdk.core.api_error import ApiError

    for attempt in range(attempts):
        try:
            whoami()
        except ApiError as exc:
            if exc.status_code == 401 and unauthorized_is_final:
                return False
        except httpx.TransportError:
            pass
        else:
            return True
        if attempt + 1 < attempts:
            time.sleep(1.0)
    return False
