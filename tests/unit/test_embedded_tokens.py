"""How the embedded Label Studio's stored Personal Access Token is checked after a restart."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest
from label_studio_sdk.core.api_error import ApiError

from otel_labelstudio import embedded


def answers(*outcomes: Exception | None) -> tuple[Callable[[], object], list[int]]:
    """A whoami that fails with each exception in turn (None: succeeds), and its call count."""
    calls = [0]

    def whoami() -> object:
        outcome = outcomes[min(calls[0], len(outcomes) - 1)]
        calls[0] += 1
        if outcome is not None:
            raise outcome
        return object()

    return whoami, calls


@pytest.fixture(autouse=True)
def no_waiting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(embedded.time, "sleep", lambda _s: None)


def test_a_401_says_no_at_once() -> None:
    whoami, calls = answers(ApiError(status_code=401), None)
    assert not embedded._still_valid(whoami)
    assert calls == [1]


def test_a_starting_server_is_asked_again() -> None:
    refused = httpx.ConnectError("refused")
    whoami, calls = answers(refused, ApiError(status_code=502), None)
    assert embedded._still_valid(whoami)
    assert calls == [3]
    whoami, calls = answers(refused)
    assert not embedded._still_valid(whoami, attempts=4)
    assert calls == [4]


def test_when_a_pat_exists_already_a_401_is_asked_again_too() -> None:
    # The second, longer check made when Label Studio says our user has a PAT already.
    whoami, calls = answers(ApiError(status_code=401), ApiError(status_code=401), None)
    assert embedded._still_valid(whoami, attempts=15, unauthorized_is_final=False)
    assert calls == [3]
