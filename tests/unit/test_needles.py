"""The receivers' vectorised needle search answers exactly as `in` does, whatever the bytes."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from otel_labelstudio.receiver import needles as needles_module
from otel_labelstudio.receiver.needles import Needles
from otel_labelstudio.receiver.otlp import _NEEDLES

SEARCH = Needles((b"ai.", b"llm.", b"openinference.span.kind", b".x"))
# Bytes made of the needles' own pieces, so that near misses ("ai", "lm.", "span.kin") and
# needles split across items come up often.
PIECES = st.sampled_from(
    [
        b"ai.",
        b"a",
        b"i",
        b".",
        b"llm.",
        b"lm.",
        b"l",
        b"openinference.span.kind",
        b"span.kin",
        b"nce.",
        b".x",
        b"x",
        b"\0",
        b"gen_",
        b"zzzz",
        b"openai.com",
        b"\xff",
    ]
)
CHUNK = st.lists(PIECES, max_size=40).map(b"".join)


def expected(data: bytes) -> bool:
    return any(needle in data for needle in SEARCH.needles)


@pytest.fixture
def always_vectorised(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(needles_module, "VECTOR_FROM", 0)
    monkeypatch.setattr(needles_module, "VECTOR_FROM_BYTES", 0)
    monkeypatch.setattr(needles_module, "_HEAD", 0)


@settings(max_examples=300, deadline=None)
@given(items=st.lists(CHUNK, max_size=30), chunk=st.sampled_from([1, 7, 1 << 20]))
def test_holding_finds_exactly_the_items_that_hold_a_needle(items: list[bytes], chunk: int) -> None:
    # numpy's way, in passes of `chunk` bytes (needles across their edges), and the plain one.
    for vector_from in (0, 10**9):
        needles_module.VECTOR_FROM, needles_module._CHUNK = vector_from, chunk
        try:
            assert SEARCH.holding(items) == [n for n, x in enumerate(items) if expected(x)]
        finally:
            needles_module.VECTOR_FROM, needles_module._CHUNK = 48, 1 << 20


@settings(max_examples=300, deadline=None)
@given(data=CHUNK, chunk=st.sampled_from([1, 7, 1 << 20]), checks=st.sampled_from([0, 256]))
def test_anywhere_answers_as_in_does(data: bytes, chunk: int, checks: int) -> None:
    for threshold in (0, 10**9):
        needles_module.VECTOR_FROM_BYTES, needles_module._CHUNK = threshold, chunk
        needles_module._MAX_CHECKS = checks
        try:
            assert SEARCH.anywhere(data) is expected(data)
        finally:
            needles_module.VECTOR_FROM_BYTES, needles_module._CHUNK = 32 << 10, 1 << 20
            needles_module._MAX_CHECKS = 256


def test_a_needle_at_either_edge_or_past_the_head_is_found(always_vectorised: None) -> None:
    filler = b"x-" * 30_000
    for data in (b"llm." + filler, filler + b"llm.", filler + b"openinference.span.kind"):
        assert SEARCH.anywhere(data)
    assert not SEARCH.anywhere(filler + b"openinference.span.kin")
    assert SEARCH.holding([filler, b"ai.", filler, filler + b"a", b"i."]) == [1]


def test_large_inputs_take_the_vectorised_path_and_agree() -> None:
    # Past the thresholds, as the receivers' requests of hundreds of spans are.
    spans = [b"db.system.name postgresql " * 20] * 300
    spans[7] = spans[7] + b"gen_ai.operation.name"
    spans[299] = b"llm.request.type" + spans[299]
    assert len(spans) >= needles_module.VECTOR_FROM
    assert _NEEDLES.holding(spans) == [7, 299]
    body = b"".join(spans)
    assert len(body) >= needles_module.VECTOR_FROM_BYTES
    assert _NEEDLES.anywhere(body)
    assert not _NEEDLES.anywhere(b"".join(spans[8:299]))


def test_a_needle_needs_a_dot() -> None:
    with pytest.raises(ValueError):
        Needles((b"gen_ai",))


def test_bytes_made_of_near_needles_cost_no_more_than_a_plain_search() -> None:
    # Every '.' here is a candidate for "llm." and none is one: past _MAX_CHECKS candidates,
    # `anywhere` searches plainly rather than check them one by one; the passes of _CHUNK
    # bytes keep numpy's temporaries small whatever the body.
    body = b"xlm." * 1_000_000
    assert not _NEEDLES.anywhere(body)
    assert _NEEDLES.anywhere(body + b"llm.")
    assert _NEEDLES.holding([body[: 1 << 12]] * 100 + [b"llm."]) == [100]
