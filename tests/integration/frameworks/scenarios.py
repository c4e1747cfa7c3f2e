"""The scenarios every framework is driven through, and their texts (shared by the drivers and
the tests). Standard library only: the legacy venvs import it too."""

from __future__ import annotations

SINGLE = "What is the capital of France?"
SYSTEM = "You answer in one short sentence."
SYSTEM_USER = "Name a primary colour."
TURNS = ("Hi, I am Ada.", "Hello Ada! How can I help?", "What is my name?")
TOOL_QUESTION = "What is the weather in Paris?"
TOOL_RESULT = "sunny, 21 °C"
STREAM = "Count to three."
FAIL = "This call fails."
N2 = "Pick a number."
NON_ASCII = "Grüße aus München — 東京は晴れですか？ 🌸 «ça va» ñ"  # noqa: RUF001
# 20 KB, deterministic, with a marker at each end so a cut is visible.
BIG = (
    "BEGIN "
    + "".join(f"line {i:04d}: the quick brown fox jumps. " for i in range(600))[: 20 * 1024 - 10]
    + " END"
)

SCENARIOS = (
    "single",
    "system_user",
    "multi_turn",
    "tool_round_trip",
    "streaming",
    "failed",
    "n2",
    "non_ascii",
    "big_prompt",
)
