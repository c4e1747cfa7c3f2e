"""Redaction: secrets and personal data are replaced before an Interaction leaves the process.

A `Redactor` holds the built-in detectors it was asked for ("email", "api_key", "bearer_token",
"credit_card") and the user's `(pattern, replacement)` rules, and rewrites every free-text field
of an Interaction: message content and parts (tool call arguments, tool results), system
instructions, tool definitions, metadata values and the error text. Mapping keys are kept, so the
shape of tool arguments survives for the annotator. Built-in matches become `[REDACTED:<kind>]`.

Left alone on purpose: the resource attributes (service.name, host, SDK version...) describe the
process, are set by whoever deploys it rather than by users or the model, and routing matches on
them; and the ids, model, provider and operation names, which are identifiers, not content.

This runs on every interaction, and most text holds no secret, so the cost that matters is that
of finding nothing: the budget is a few µs for a 1 KB prompt (tests/bench/bench_redaction.py
times the service's benchmark load). What `re` does fast sets the plan.
It skips through the text in C to a literal first character (~0.3 ns a character); to a first
step that is a set of characters or a choice it tries a match at every position (~4 ns a
character: 5 µs for a 1 KB prompt, for each such pattern). A substring test (`in`) of one
character is a `memchr`; of a longer literal, about what the regex scan to it costs. So:
- A string of up to 128 characters (names, metadata values, system instructions) is first
  searched once for the characters of which every built-in match holds one ("@", ":", "=", "-",
  "_", "A", "J" or a digit): most hold none, and that search costs less than a test per detector.
- Each detector has screens: a literal that every match holds ("@", "bearer"), or a character
  with a small regex that starts at it and checks its neighbours with lookarounds ("-" after "sk"
  or "xoxb"; ":" or "=" after the end of a key name, a quote or a space). The character is looked
  for first, so the regex only runs on text that has it. A detector runs only where a screen
  finds something, and only if the text holds one of its longer literals too: "authorization"
  (after a "z"), or for an assignment a key name's word ("key", "token", "secret", "passw").
- A card number is a run of 13 or more digits, spaces and dashes: the text is mapped (one
  `bytes.translate`) to "0" for a digit, " " for a space or dash and "." for the rest, where a
  literal-prefix regex finds the "0000[0 ]0000" that every card number holds, and the count of
  "0" its 13 digits.
- Each detector is one precompiled regex whose first step is a literal or a small character set
  ("authorization", "bearer", "@", "sk-", "[2-6]"...). One alternation of every detector would be
  a single pass, but a choice as its first step makes `re` try every alternative at every
  position: about eight times slower on a 2 KB prompt. So the word-boundary lookbehinds come
  after the prefix, not before it. Where screens let a detector run, this is what it costs.
- The case-insensitive detectors match the lowercased text (ASCII text only, where lowering keeps
  every offset) with case-sensitive patterns: `re` cannot skip ahead for an IGNORECASE literal.
  Their screens look at the lowercased text too, which for any text holds every ASCII letter's
  lowercase in place.
- Every pattern is linear: no quantified group holds a quantifier that could match the same text
  two ways, and a token may only start where the run of its own characters starts (the
  lookbehind excludes them), so a long run is scanned once rather than once per position.
- Credit-card candidates must pass the Luhn check, so order numbers and timestamps survive.
- The walk over an Interaction gives back the very objects it was given where nothing changed,
  and copies only the path to a change (`dataclasses.replace` costs µs: it is never called for
  nothing).

User rules are the user's regexes: their cost and their backtracking are theirs. They run after
the built-ins, one `re.sub` each, in the order given (global rules first, then the route's).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from functools import lru_cache
from typing import Any, NamedTuple

from otel_labelstudio.model import Interaction, Message

__all__ = ["BUILTINS", "Redactor", "luhn_valid"]

BUILTINS = ("email", "api_key", "bearer_token", "credit_card")

# Nesting deeper than this in parts, tools or metadata is not real tool-call JSON (or is a
# cycle); the subtree is replaced whole rather than passed through unredacted.
_MAX_DEPTH = 64
_TOO_DEEP = "[REDACTED:too_deep]"
# The shortest string any built-in can match ("a@b.co").
_MIN_BUILTIN_LENGTH = 6
# Up to this length a string is first searched for any detector's `marks` at once: a search for
# a set of characters costs ~3 ns a character, the screens of every detector ~1 µs in all.
_MARKED_LENGTH = 128


def _marker(kind: str) -> str:
    return f"[REDACTED:{kind}]"


class _Screen(NamedTuple):
    """Where a detector could match: `literal` is in the text and, if set, `context` finds
    something there. A `context` starts with its `literal`, a single character, so `re` skips
    from one to the next at its fastest and checks the neighbours with lookarounds."""

    literal: str
    context: re.Pattern[str] | None = None


class _Detector(NamedTuple):
    kind: str
    pattern: re.Pattern[str]
    # Characters of which every match holds one.
    marks: str
    # Matched against the lowercased text; `pattern` and the screens are written in lowercase.
    folded: bool = False
    luhn: bool = False
    # The pattern starts at "@": the match is extended left over the e-mail local part.
    local_part: bool = False
    # The pattern is worth running on a text only where one of the screens finds something ...
    screens: tuple[_Screen, ...] = ()
    # ... and the text holds one of these literals ...
    needs: tuple[str, ...] = ()
    # ... and `digit_run` finds something in the text mapped by `_DIGIT_RUNS` ("0" for a digit,
    # " " for a space or a dash), which holds `min_digits` digits. Each test is left out if unset.
    digit_run: re.Pattern[bytes] | None = None
    min_digits: int = 0


# `[` never appears in the secret part of a pattern below, so a marker is never taken for a
# secret: redacting twice is redacting once.
_TOKEN68 = r"a-zA-Z0-9\-._~+/"  # RFC 6750 token68, less "=" (which may only end it)
# No ":" or "=" (base64 padding comes after): a header value never runs into the next header.
_HEADER_VALUE = r"""[^\s"'\\,;:=<>\[\]]"""
_SCHEMES = r"bearer|basic|digest|token|negotiate|apikey"
# Lowercase; `[_-]?` joins the words of api_key / apiKey / api-key.
_KEY_NAMES = (
    r"a(?:pi[_-]?key|ccess[_-]?(?:key(?:[_-]?id)?|token)|uth[_-]?token)|client[_-]?secret"
    r"|passw(?:or)?d|refresh[_-]?token|s(?:ecret(?:[_-]?(?:access[_-]?)?key)?|ession[_-]?token)"
    r"|token"
)
# The last three letters of every one of `_KEY_NAMES` (access_key_id, access-key-id, accesskeyid).
_KEY_NAME_ENDS = r"(?:key|[_y-]id|ken|ret|swd|ord)"
_ASSIGN = r"""\\?["']?[ \t]*[:=][ \t]*\\?["']?"""  # api_key=, "apiKey": ", \"token\": \"
_LOCAL_PART = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._%+-")


def _starts(prefix: str, width: int, run: str = "") -> str:
    """`prefix` (a pattern `width` characters wide) where a word starts.

    The lookbehind comes after the prefix, so that `re` can still skip ahead to the prefix. It
    also excludes the characters (`run`) of the token that follows: a token can then only start
    where the run of such characters does, and a long run is scanned once, not once per prefix.
    """
    return f"{prefix}(?<![A-Za-z0-9{run}].{{{width}}})"


def _assignment(sign: str) -> _Screen:
    """`sign` (":" or "=") where it could end an `_ASSIGN`: after the end of a key name
    (`_KEY_NAME_ENDS`), maybe a quote, a backslash or both, and up to two spaces; or after three
    spaces, which the screen does not look past. The lookbehinds go from the sign leftwards, one
    character class first at each step, so most signs (in a time of day, a URL, `x = 1`, prose)
    are turned down by the first one or two: a sign costs `re` some 10-50 ns."""
    name, quote, escaped = _KEY_NAME_ENDS, r"[\"'\\]", r"\\[\"']"
    last = r"[ydnt\"'\\ \t]"  # what can come right before the spaces: a name's end, a quote

    def spaced(spaces: str, more: str) -> str:
        """`sign` after `spaces` and a name, a quote or backslash; or after a space, then `more`."""
        at = f"{spaces}{sign}"
        return (
            rf"(?<={last}{at})(?:(?<={name}{at})"
            rf"|(?<={quote}{at})(?:(?<={name}{quote}{at})|(?<={name}{escaped}{at}))"
            rf"|(?<=[ \t]{at}){more})"
        )

    return _Screen(sign, re.compile(sign + spaced("", spaced(r"[ \t]", spaced(r"[ \t]{2}", "")))))


def _detector(kind: str, pattern: str, **options: Any) -> _Detector:
    return _Detector(kind, re.compile(pattern, re.ASCII), **options)


_DIGITS = "0123456789"

# In the order they run: a header or an assignment is recognised whole before its value could be
# taken for a bare key shape.
_DETECTORS: tuple[_Detector, ...] = (
    # "Authorization: Basic dXNlcjpwYXNz", {"authorization": "Bearer ..."}: the whole value,
    # which without a scheme needs 8 characters and a digit ("Authorization: required" is prose).
    # The lookahead stops a bare scheme word being taken for the value (on a second pass the
    # value is a marker). "proxy-authorization" ends the same way.
    _detector(
        "bearer_token",
        rf"authorization(?<![a-z0-9]authorization){_ASSIGN}"
        rf"(?P<scheme>(?:{_SCHEMES})[ \t]+)?(?!(?:{_SCHEMES})(?:[ \t]|$))"
        rf"(?P<secret>(?(scheme){_HEADER_VALUE}+|(?={_HEADER_VALUE}*[0-9]){_HEADER_VALUE}{{8,}})"
        r"=*)",
        marks=":=",
        folded=True,
        # "z", the rarest letter of English, first: one `memchr` turns down about half of 1 KB
        # prompts, for less than the search for "authorization" costs.
        screens=(_Screen("z"),),
        needs=("authorization",),
    ),
    # "Bearer <token>" anywhere. The token must hold a digit, so "bearer instruments" is prose.
    _detector(
        "bearer_token",
        rf"bearer(?<![a-z0-9_-]bearer)[ \t]+"
        rf"(?P<secret>(?=[{_TOKEN68}]*[0-9])[{_TOKEN68}]{{16,}}=*)",
        marks=_DIGITS,
        folded=True,
        screens=(_Screen("bearer"),),
    ),
    # api_key=..., "apiKey": "...", AWS_SECRET_ACCESS_KEY=..., "apiToken": ...: the name may end
    # a longer one. The value is long and holds both digits and letters, so
    # "api_key: YOUR_KEY_HERE" and "max_tokens: 1024" stay.
    _detector(
        "api_key",
        rf"(?:{_KEY_NAMES}){_ASSIGN}"
        rf"(?P<secret>(?=[{_TOKEN68}]*[0-9])(?=[{_TOKEN68}]*[a-z])[{_TOKEN68}]{{16,}}=*)",
        marks=":=",
        folded=True,
        screens=(_assignment(":"), _assignment("=")),
        needs=("key", "token", "secret", "passw"),
    ),
    _detector(
        "api_key",
        # OpenAI sk-, sk-proj-, sk-svcacct-; Anthropic sk-ant-api03-. A digit somewhere, so a
        # hyphenated slug ("sk-learn-the-basics-of-...") is not a key.
        rf"{_starts('sk-', 3, '_-')}(?=[A-Za-z0-9_-]*[0-9])[A-Za-z0-9_-]{{20,}}"
        rf"|{_starts('A[KS]IA', 4)}[0-9A-Z]{{16}}(?![0-9A-Za-z])"  # AWS access key id
        rf"|{_starts('gh[pousr]_', 4)}[A-Za-z0-9]{{36,}}"  # GitHub
        rf"|{_starts('github_pat_', 11, '_')}[A-Za-z0-9_]{{22,}}"
        rf"|{_starts('xox[abeprs]-', 5, '-')}[A-Za-z0-9-]{{10,}}"  # Slack
        rf"|{_starts('AIza', 4, '_-')}[0-9A-Za-z_-]{{35,}}"  # Google API key
        # JWT: header and payload are base64 JSON objects; with "alg": "none" it is unsigned.
        rf"|{_starts('eyJ', 3, '_-')}[A-Za-z0-9_-]{{4,}}\.eyJ[A-Za-z0-9_-]{{4,}}\.[A-Za-z0-9_-]*",
        marks="-_AJ",
        # Each alternative's prefix holds one of these characters. Not "gh" or "sk": English is
        # full of them.
        screens=(
            _Screen("-", re.compile(r"-(?:(?<=sk-)|(?<=xox[abeprs]-))")),
            _Screen("_", re.compile(r"_(?:(?<=gh[pousr]_)|(?<=github_pat_))")),
            _Screen("A", re.compile(r"A(?:[KS]IA|Iza)")),
            _Screen("J", re.compile(r"J(?<=eyJ)")),
        ),
    ),
    # From the "@": the local part is found by walking left. "icon@2x.png" is a file name.
    _detector(
        "email",
        r"@(?![0-9]x\.)(?:[A-Za-z0-9-]{1,63}\.){1,16}[A-Za-z]{2,63}(?![A-Za-z0-9-])",
        marks="@",
        local_part=True,
        screens=(_Screen("@"),),
    ),
    # 13-19 digits starting 2-6 (Mastercard 2-series, Amex/Diners/JCB, Visa, Mastercard,
    # Discover/UnionPay/Maestro; the airline-only UATP "1" is left out so that 13-digit
    # millisecond and 19-digit nanosecond timestamps are not candidates), contiguous or in the
    # printed groupings with one consistent separator; then Luhn. Not glued to a word, a decimal
    # point, a sign or a further group.
    _detector(
        "credit_card",
        r"[2-6](?<![A-Za-z0-9_.+/-].)(?:"
        r"[0-9]{12,18}"
        r"|[0-9]{3}(?P<sep>[ -])[0-9]{4}(?P=sep)[0-9]{4}(?P=sep)[0-9]{4}(?:(?P=sep)[0-9]{1,3})?"
        r"(?!(?P=sep)[0-9])"
        r"|(?<=3)[0-9]{3}(?P<amex_sep>[ -])[0-9]{6}(?P=amex_sep)[0-9]{4,5}(?!(?P=amex_sep)[0-9])"
        r")(?![A-Za-z0-9_/-]|\.[0-9])",
        marks=_DIGITS,
        luhn=True,
        # Every form starts with four digits, then a fifth or a separator, then four digits.
        digit_run=re.compile(rb"0000[0 ]0000"),
        min_digits=13,
    ),
)
# For text that is not ASCII (lowering may change its length): the folded patterns, ignoring case.
_UNFOLDED = {
    detector.pattern: re.compile(detector.pattern.pattern, re.ASCII | re.IGNORECASE)
    for detector in _DETECTORS
    if detector.folded
}
# For `_Detector.digit_run`: UTF-8 bytes to "0" (a digit), " " (a separator) or "." (the rest).
# No byte of a multi-byte character is an ASCII digit, space or dash.
_DIGIT_RUNS = bytes(
    0x30 if 0x30 <= byte <= 0x39 else 0x20 if byte in b" -" else 0x2E for byte in range(256)
)

# Attribute values that hold no text.
_ATOMS = (int, float, type(None))

# Mapping keys naming a credential (see `Redactor._item`), lowercased: OpenTelemetry records
# captured headers as `http.request.header.authorization`. Matched at the end of the key, so
# `gen_ai.usage.input_tokens` and `max_tokens` are not "token" while `apiToken` is.
_SENSITIVE_KEY = re.compile(
    rf"(?P<bearer_token>authorization|cookie)$|(?P<api_key>{_KEY_NAMES})$", re.ASCII
)


def luhn_valid(digits: str) -> bool:
    """The Luhn checksum of a string of ASCII digits (separators already removed)."""
    total = 0
    for position, char in enumerate(reversed(digits)):
        digit = ord(char) - 48
        if position % 2:
            digit *= 2
            if digit > 9:
                digit -= 9
        total += digit
    return total % 10 == 0


class Redactor:
    """Built-in detectors plus user rules, applied to every string of an Interaction.

    Immutable, hashable and compared by configuration, so callers can cache one per route:
    `global_redactor.combined(route_rules)`. Raises ValueError for an unknown built-in name, and
    for a rule whose pattern does not compile or matches the empty string, or whose replacement
    names a group the pattern does not have. Messages name the rule by index, never its text.
    """

    __slots__ = ("_builtins", "_compiled_rules", "_detectors", "_key_kinds", "_marks", "_rules")

    _builtins: tuple[str, ...]
    _rules: tuple[tuple[str, str], ...]
    _detectors: tuple[_Detector, ...]
    # Any character of which a built-in match holds one; None without built-ins.
    _marks: re.Pattern[str] | None
    _compiled_rules: tuple[tuple[re.Pattern[str], str], ...]
    _key_kinds: frozenset[str]

    def __init__(self, builtins: Iterable[str] = (), rules: Sequence[tuple[str, str]] = ()) -> None:
        if isinstance(builtins, str):
            raise TypeError("builtins is a collection of names, not one string")
        wanted = set(builtins)
        unknown = sorted(wanted.difference(BUILTINS))
        if unknown:
            raise ValueError(
                f"unknown built-in redaction {unknown[0]!r}; expected one of {', '.join(BUILTINS)}"
            )
        compiled_rules = tuple(_compile_rule(index, rule) for index, rule in enumerate(rules))
        detectors = tuple(d for d in _DETECTORS if d.kind in wanted)
        marks = sorted({mark for detector in detectors for mark in detector.marks})
        setattr_ = object.__setattr__
        setattr_(self, "_builtins", tuple(kind for kind in BUILTINS if kind in wanted))
        setattr_(self, "_rules", tuple((pattern, repl) for pattern, repl in rules))
        setattr_(self, "_detectors", detectors)
        setattr_(self, "_marks", re.compile(f"[{re.escape(''.join(marks))}]") if marks else None)
        setattr_(self, "_compiled_rules", compiled_rules)
        setattr_(self, "_key_kinds", frozenset(wanted & {"api_key", "bearer_token"}))

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable")

    @property
    def builtins(self) -> tuple[str, ...]:
        return self._builtins

    @property
    def rules(self) -> tuple[tuple[str, str], ...]:
        return self._rules

    @property
    def active(self) -> bool:
        """False when there is nothing to redact: `redact` then returns its argument."""
        return bool(self._detectors or self._compiled_rules)

    def combined(
        self, rules: Sequence[tuple[str, str]] = (), builtins: Iterable[str] = ()
    ) -> Redactor:
        """This redactor with more rules (run after its own) and more built-ins: a route's."""
        if not rules and not builtins:
            return self
        return Redactor((*self._builtins, *builtins), (*self._rules, *rules))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Redactor):
            return NotImplemented
        return self._builtins == other._builtins and self._rules == other._rules

    def __hash__(self) -> int:
        return hash((self._builtins, self._rules))

    def __repr__(self) -> str:
        # Rules are not shown: a user pattern may spell out the very thing it hides.
        return f"Redactor(builtins={self._builtins!r}, rules=<{len(self._rules)}>)"

    # --- redaction ----------------------------------------------------------------------------

    def redact_text(self, text: str) -> str:
        """`text` with built-in matches replaced by `[REDACTED:<kind>]`, then the user rules."""
        if not isinstance(text, str) or not text:
            return text
        marks = self._marks
        if (
            marks is not None
            and len(text) >= _MIN_BUILTIN_LENGTH
            and (len(text) > _MARKED_LENGTH or marks.search(text) is not None)
        ):
            text = self._builtin_text(text)
        for pattern, replacement in self._compiled_rules:
            text = pattern.sub(replacement, text)
        return text

    def _builtin_text(self, text: str) -> str:
        """`text` through the built-in detectors in order, each where its screens let it run."""
        lowered: str | None = None
        for detector in self._detectors:
            pattern, haystack = detector.pattern, text
            if detector.folded:
                if lowered is None:
                    lowered = text.lower()
                haystack = lowered
            if detector.screens:
                for literal, context in detector.screens:
                    if literal in haystack and (context is None or context.search(haystack)):
                        break
                else:  # no screen found anything
                    continue
            if detector.needs and not any(literal in haystack for literal in detector.needs):
                continue
            if detector.digit_run is not None:
                runs = text.encode("utf-8", "surrogatepass").translate(_DIGIT_RUNS)
                if not detector.digit_run.search(runs) or runs.count(b"0") < detector.min_digits:
                    continue
            if detector.folded and not text.isascii():
                pattern, haystack = _UNFOLDED[pattern], text
            redacted = _apply(detector, pattern, text, haystack)
            if redacted is not text:
                text, lowered = redacted, None
        return text

    def redact(self, interaction: Interaction) -> Interaction:
        """`interaction` with every free-text field redacted (see the module doc): the same
        object when nothing needed redacting, which is the common case and spares the copies
        (`dataclasses.replace` costs several µs a call, measured on the worker)."""
        if not self.active:
            return interaction
        changes: dict[str, Any] = {}
        if interaction.input:
            messages = self._messages(interaction.input)
            if messages is not interaction.input:
                changes["input"] = messages
        if interaction.output:
            messages = self._messages(interaction.output)
            if messages is not interaction.output:
                changes["output"] = messages
        text = interaction.system_instructions
        if text is not None and (redacted := self.redact_text(text)) != text:
            changes["system_instructions"] = redacted
        text = interaction.error
        if text is not None and (redacted := self.redact_text(text)) != text:
            changes["error"] = redacted
        if interaction.tools:
            tools = self._mappings(interaction.tools)
            if tools is not interaction.tools:
                changes["tools"] = tools
        if interaction.metadata:
            metadata = self._value(interaction.metadata, 0)
            if metadata is not interaction.metadata:
                changes["metadata"] = metadata
        return replace(interaction, **changes) if changes else interaction

    def _messages(self, messages: tuple[Message, ...]) -> tuple[Message, ...]:
        """`messages` itself when no message changed."""
        redacted: list[Message] | None = None
        for index, message in enumerate(messages):
            new = self._message(message)
            if new is not message:
                if redacted is None:
                    redacted = list(messages)
                redacted[index] = new
        return messages if redacted is None else tuple(redacted)

    def _message(self, message: Message) -> Message:
        content = self.redact_text(message.content)
        parts = message.parts
        if parts:
            parts = self._mappings(parts)
        name = message.name
        if name is not None:
            name = self.redact_text(name)
        if content == message.content and parts is message.parts and name == message.name:
            return message
        return replace(message, content=content, parts=parts, name=name)

    def _mappings(self, items: tuple[Mapping[str, Any], ...]) -> tuple[Mapping[str, Any], ...]:
        """Message parts or tool definitions, each walked from depth 0: `items` itself when none
        changed."""
        redacted: list[Any] | None = None
        for index, item in enumerate(items):
            new = self._value(item, 0)
            if new is not item:
                if redacted is None:
                    redacted = list(items)
                redacted[index] = new
        return items if redacted is None else tuple(redacted)

    def _value(self, value: Any, depth: int) -> Any:
        """Strings redacted anywhere in nested mappings, lists and tuples; other values kept.

        `value` itself when nothing in it changed; else a copy (a dict for any mapping) of the
        containers on the way to a change, sharing the rest."""
        if isinstance(value, str):
            redacted = self.redact_text(value)
            return value if redacted == value else redacted
        if isinstance(value, _ATOMS):  # before the Mapping test, which is slow to say no
            return value
        if isinstance(value, (dict, Mapping)):  # a dict is told at once
            if depth >= _MAX_DEPTH:
                return _TOO_DEEP
            mapping: dict[Any, Any] | None = None
            for key, item in value.items():
                if isinstance(item, _ATOMS):  # no text, even under a credential's name
                    continue
                new = self._item(key, item, depth + 1)
                if new is not item:
                    if mapping is None:
                        mapping = dict(value)
                    mapping[key] = new
            return value if mapping is None else mapping
        if isinstance(value, list | tuple):
            if depth >= _MAX_DEPTH:
                return _TOO_DEEP
            items: list[Any] | None = None
            for index, item in enumerate(value):
                new = self._value(item, depth + 1)
                if new is not item:
                    if items is None:
                        items = list(value)
                    items[index] = new
            if items is None:
                return value
            return items if isinstance(value, list) else tuple(items)
        return value

    def _item(self, key: Any, value: Any, depth: int) -> Any:
        """A mapping value. Under a credential's name (a captured `authorization` header, a
        `password` argument) a string, or a header's list of strings, is replaced whole. Any
        other value is walked as usual: in a tool's JSON schema `"api_key": {"type": "string"}`
        describes an argument and holds no secret."""
        if self._key_kinds and isinstance(key, str) and isinstance(value, (str, list, tuple)):
            kind = _sensitive_kind(key)
            if kind is not None and kind in self._key_kinds:
                marker = _marker(kind)
                if isinstance(value, str):
                    return marker if value and value != marker else value
                if all(isinstance(item, str) for item in value):
                    masked = [marker if item else item for item in value]
                    redacted = masked if isinstance(value, list) else tuple(masked)
                    return value if redacted == value else redacted
        return self._value(value, depth)


@lru_cache(maxsize=4096)  # the same few attribute and argument names, over and over
def _sensitive_kind(key: str) -> str | None:
    found = _SENSITIVE_KEY.search(key.lower())
    return None if found is None else found.lastgroup


def _apply(detector: _Detector, pattern: re.Pattern[str], text: str, haystack: str) -> str:
    """`text` with `detector`'s matches in `haystack` (`text`, or `text` lowercased) replaced.

    Returns `text` itself when nothing matched.
    """
    pieces: list[str] = []
    done = 0  # text[:done] is in pieces
    for match in pattern.finditer(haystack):
        start, end = match.span("secret") if "secret" in pattern.groupindex else match.span()
        if detector.luhn and not luhn_valid(re.sub("[ -]", "", match.group())):
            continue
        if detector.local_part:
            while start > done and text[start - 1] in _LOCAL_PART:
                start -= 1
            if start == match.start():
                continue
        pieces.append(text[done:start])
        pieces.append(_marker(detector.kind))
        done = end
    if not pieces:
        return text
    pieces.append(text[done:])
    return "".join(pieces)


def _compile_rule(index: int, rule: tuple[str, str]) -> tuple[re.Pattern[str], str]:
    pattern, replacement = rule
    try:
        compiled = re.compile(pattern)
        # Compiles the replacement template too: a bad group reference fails here, at start-up,
        # not on the first interaction that matches.
        compiled.sub(replacement, "")
    except (re.error, IndexError) as exc:
        raise ValueError(f"redaction rules[{index}]: {exc}") from None
    if compiled.search("") is not None:
        raise ValueError(f"redaction rules[{index}]: the pattern matches the empty string")
    return compiled, replacement
