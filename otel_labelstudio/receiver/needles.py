"""Whether bytes hold any of a few needles, at memory speed: the receivers' first filter.

`bytes.__contains__` scans at ~2 GB/s, a byte at a time, and `serve` asks it three times of every
span (~1 µs a span, a tenth of a span's whole budget). Every needle holds a '.', so numpy finds
every '.' of the bytes (one pass in C), keeps those with a needle's bytes around them (a few
comparisons of gathered bytes), and only there is the needle looked for exactly. A candidate
only narrows the search, never decides it. Below `VECTOR_FROM` spans, or `VECTOR_FROM_BYTES` of
one buffer, the fixed cost of the numpy calls (~40 µs) is not worth it and `in` searches alone.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from itertools import accumulate
from typing import Any

import numpy as np

__all__ = ["Needles"]

VECTOR_FROM = 48  # spans (of ~600 bytes: the crossover measured ~30)
VECTOR_FROM_BYTES = 32 << 10
_HEAD = 4 << 10  # a buffer's first bytes, searched plainly first: a GenAI request shows one early
_CHUNK = 1 << 20  # bytes per numpy pass, which bounds its temporaries
_MAX_CHECKS = 256  # candidates `anywhere` checks one by one before it searches plainly
_DOT = ord(".")
_PAD = b"\0\0"  # so that the bytes around any '.' found are inside the buffer


class Needles:
    """A search for any of `needles`, each of which must hold a '.'."""

    def __init__(self, needles: Sequence[bytes]) -> None:
        self.needles = tuple(needles)
        # Each needle with where its first '.' is, and the bytes around that '.' as
        # (offset from the '.', byte).
        self._dots = [needle.index(b".") for needle in self.needles]  # ValueError if none
        self._around = [
            [
                (j - at, needle[j])
                for j in range(max(0, at - len(_PAD)), min(len(needle), at + len(_PAD)))
                if j != at
            ]
            for needle, at in zip(self.needles, self._dots, strict=True)
        ]
        # By value: whether a byte comes before a needle's '.' (all do, for a needle that
        # starts with its '.').
        self._before = np.zeros(256, dtype=bool)
        for needle, at in zip(self.needles, self._dots, strict=True):
            self._before[needle[at - 1] if at else slice(None)] = True

    def in_one(self, data: bytes) -> bool:
        for needle in self.needles:  # noqa: SIM110 (a plain loop: no generator per call)
            if needle in data:
                return True
        return False

    def anywhere(self, data: bytes) -> bool:
        """`in_one` for one large buffer (a whole request)."""
        if len(data) < VECTOR_FROM_BYTES:
            return self.in_one(data)
        if self.in_one(data[:_HEAD]):
            return True
        checks = _MAX_CHECKS
        for found in self._candidates(np.frombuffer(b"".join((_PAD, data, _PAD)), np.uint8)):
            checks -= len(found)
            if checks < 0:  # bytes made to look like needles: the plain search, linear
                return self.in_one(data)
            for at in found.tolist():
                dot = at - len(_PAD)
                for needle, offset in zip(self.needles, self._dots, strict=True):
                    if dot >= offset and data.startswith(needle, dot - offset):
                        return True
        return False

    def holding(self, items: Sequence[bytes]) -> list[int]:
        """The indices, in order, of the items that hold a needle."""
        if len(items) < VECTOR_FROM:
            return [n for n, item in enumerate(items) if self.in_one(item)]
        padded = np.frombuffer(b"".join((_PAD, *items, _PAD)), np.uint8)
        # Item n is [ends[n-1], ends[n]) of the joined bytes.
        ends = np.fromiter(accumulate(map(len, items), initial=len(_PAD)), np.int64)[1:]
        holding: list[int] = []
        for found in self._candidates(padded):
            for n in np.unique(np.searchsorted(ends, found, side="right")).tolist():
                if (not holding or n > holding[-1]) and self.in_one(items[n]):
                    holding.append(n)
        return holding

    def _candidates(self, padded: np.ndarray[Any, np.dtype[np.uint8]]) -> Iterator[Any]:
        """Where in `padded` (bytes between two _PADs) a '.' has a needle's bytes around it, in
        order, `_CHUNK` bytes at a time (a '.' found takes 8 bytes: a buffer of nothing else
        must not take eight times its size)."""
        end = len(padded) - len(_PAD)
        for low in range(len(_PAD), end, _CHUNK):
            dots = (padded[low : min(low + _CHUNK, end)] == _DOT).nonzero()[0] + low
            # The byte before each '.' first (~9,000 dots in 500 spans become ~1,500), then
            # each needle's bytes around it, on those.
            dots = dots[self._before[padded[dots - 1]]]
            found = np.zeros(len(dots), dtype=bool)
            for around in self._around:
                alike = np.ones(len(dots), dtype=bool)
                for offset, byte in around:
                    alike &= padded[dots + offset] == byte
                found |= alike
            yield dots[found]
