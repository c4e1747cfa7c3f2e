"""The embedded Label Studio the other integration tests stand on: both token kinds work through
the SDK, a wrong one is refused, the server listens where it says and nowhere else, and a second
server from the same template is independent and stops cleanly."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Literal

import httpx
import jwt
import pytest
from label_studio_sdk import LabelStudio
from label_studio_sdk.core.api_error import ApiError

from otel_labelstudio.embedded import EmbeddedLabelStudio, RunningLabelStudio

TokenKind = Literal["personal_access_token", "legacy_token"]
ClientFactory = Callable[..., LabelStudio]

pytestmark = pytest.mark.labelstudio


@pytest.mark.parametrize("token_kind", ["personal_access_token", "legacy_token"])
def test_both_token_kinds_authenticate_through_the_sdk(
    label_studio: RunningLabelStudio, ls_client_factory: ClientFactory, token_kind: TokenKind
) -> None:
    client = ls_client_factory(token_kind)

    assert client.users.whoami().email == label_studio.username
    assert isinstance(list(client.projects.list()), list)


def test_the_personal_access_token_is_a_jwt_refresh_token(
    label_studio: RunningLabelStudio,
) -> None:
    claims = jwt.decode(label_studio.personal_access_token, options={"verify_signature": False})

    assert claims["token_type"] == "refresh"
    assert claims["exp"] > time.time() + 86_400
    assert label_studio.legacy_token.count(".") == 0  # a legacy token is an opaque key


def test_a_wrong_legacy_token_is_refused_with_401(ls_client_factory: ClientFactory) -> None:
    client = ls_client_factory(api_key="0123456789abcdef0123456789abcdef01234567", max_retries=0)

    with pytest.raises(ApiError) as refused:
        client.users.whoami()

    assert refused.value.status_code == 401


def test_a_personal_access_token_signed_elsewhere_is_refused_with_401(
    ls_client_factory: ClientFactory,
) -> None:
    forged = jwt.encode(
        {"token_type": "refresh", "exp": int(time.time()) + 3600, "jti": "x", "user_id": "1"},
        "not-this-servers-secret-key-0123456789",
        algorithm="HS256",
    )
    client = ls_client_factory(api_key=forged, max_retries=0)

    with pytest.raises(ApiError) as refused:
        client.users.whoami()

    assert refused.value.status_code == 401


def test_the_server_listens_on_loopback_on_the_port_it_reports(
    label_studio: RunningLabelStudio,
) -> None:
    assert label_studio.url == f"http://127.0.0.1:{label_studio.port}"
    answer = httpx.get(f"{label_studio.url}/health", trust_env=False, timeout=5)
    assert answer.json() == {"status": "UP"}
    assert _listening_addresses(label_studio.pid) == {("127.0.0.1", label_studio.port)}


def test_a_second_server_is_independent_and_stops_cleanly(
    label_studio: RunningLabelStudio,
) -> None:
    started = time.monotonic()
    second = EmbeddedLabelStudio().start(username="second@example.com")
    try:
        assert time.monotonic() - started < 60, "a server from the template starts in seconds"
        assert second.port != label_studio.port
        assert second.is_running()
        # Each copy of the template generates its own SECRET_KEY: PATs do not cross servers.
        with httpx.Client(trust_env=False) as http:
            crossed = LabelStudio(
                base_url=label_studio.url,
                api_key=second.personal_access_token,
                max_retries=0,
                httpx_client=http,
            )
            with pytest.raises(ApiError) as refused:
                crossed.users.whoami()
        assert refused.value.status_code == 401
        assert "password" not in repr(second) and second.password not in repr(second)
    finally:
        second.stop()

    assert not second.is_running()
    assert not Path(second.data_dir).exists()
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", second.port), timeout=1):
        pass
    second.stop()  # idempotent


def _listening_addresses(pid: int) -> set[tuple[str, int]]:
    """(ip, port) of every TCP socket the process listens on, from /proc (Linux)."""
    fd_dir = Path(f"/proc/{pid}/fd")
    if not fd_dir.is_dir():
        pytest.fail("this check reads /proc: run the integration tests on Linux")
    inodes = set()
    for fd in fd_dir.iterdir():
        try:
            target = fd.readlink().as_posix()
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[len("socket:[") : -1])
    addresses = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if state == "0A" and inode in inodes:  # 0A: LISTEN
                ip_hex, port_hex = local.split(":")
                if len(ip_hex) == 8:
                    ip = socket.inet_ntoa(bytes.fromhex(ip_hex)[::-1])
                else:
                    ip = f"ipv6:{ip_hex}"
                addresses.add((ip, int(port_hex, 16)))
    return addresses


def test_a_taken_port_is_refused_not_trusted(monkeypatch: pytest.MonkeyPatch) -> None:
    # Label Studio silently moves to the next port when the asked one is taken. Even when the
    # port was free at our check and taken just after, the server must not be handed out.
    import otel_labelstudio.embedded as embedded

    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        taken = squatter.getsockname()[1]
        monkeypatch.setattr(embedded, "_port_is_free", lambda port: True)

        with pytest.raises(embedded.EmbeddedLabelStudioError, match=f"port {taken} .* taken"):
            EmbeddedLabelStudio().start(port=taken, startup_timeout_s=60)
