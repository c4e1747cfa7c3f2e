"""Redaction: secrets and personal data are replaced before an Interaction leaves the process.

A `Redactor` holds the built-in detectors it was asked for ("email", "api_key", "bearer_token",
"credit_card") and the user's `(pattern, replacement)` rules, and rewrites every free-text field
of an Interaction: message content and parts (tool call arguments, tool results), system
instructions, tool definitions, metadata values and the error text. Mapping keys are kept, so the
shape of tool arguments survives for the annotator. Built-in matches become `[REDACTED:<kind>]`.

Left alone on purpose: the resource attributes (service.name, host, SDK version...) describe the
process, are set by whoever deploys it rather than by users or the model, and routing matches on
them; and the ids, model, provider and operation names, which are identifiers, not content.

This runs on every interaction on the delivery worker, and most text holds no secret, so the
cost that matters is that of finding nothing:
- A detector is skipped when its text lacks every literal it needs ("@" for e-mail; "key",
  "token", "secret" or "passw" for a key assignment): a substring test costs less than any scan.
- Each detector is one precompiled regex whose first step is a literal or a small character set
  ("authorization", "bearer", "@", "sk-", "[2-6]"...), so `re` skips through the text in C and
  only tries a match where one can start. One alternation of every detector would be a single
  pass, but a choice as its first step makes `re` try every alternative at every position:
  about eight times slower on a 2 KB prompt. So the word-boundary lookbehinds come after the
  prefix, not before it.
- The case-insensitive detectors match the lowercased text (ASCII text only, where lowering keeps
  every offset) with case-sensitive patterns: `re` cannot skip ahead for an IGNORECASE literal.
- Every pattern is linear: no quantified group holds a quantifier that could match the same text
  two ways, and a token may only start where the run of its own characters starts (the
  lookbehind excludes them), so a long run is scanned once rather than once per position.
- Credit-card candidates must pass the Luhn check, so order numbers and timestamps survive.

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


def _marker(kind: str) -> str:
    return f"[REDACTED:{kind}]"


class _Detector(NamedTuple):
    kind: str
    pattern: re.Pattern[str]
    # Matched against the lowercased text; `pattern` is written in lowercase.
    folded: bool = False
    luhn: bool = False
    # The pattern starts at "@": the match is extended left over the e-mail local part.
    local_part: bool = False
    # Literals of which the text (lowercased if `folded`) must hold one for the pattern to be
    # worth running: a substring test is cheaper than even a fast regex scan.
    needs: tuple[str, ...] = ()
    # The fewest digits a match holds: the text must have as many to be worth a scan.
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
_ASSIGN = r"""\\?["']?[ \t]*[:=][ \t]*\\?["']?"""  # api_key=, "apiKey": ", \"token\": \"
_LOCAL_PART = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._%+-")


def _starts(prefix: str, width: int, run: str = "") -> str:
    """`prefix` (a pattern `width` characters wide) where a word starts.

    The lookbehind comes after the prefix, so that `re` can still skip ahead to the prefix. It
    also excludes the characters (`run`) of the token that follows: a token can then only start
    where the run of such characters does, and a long run is scanned once, not once per prefix.
    """
    return f"{prefix}(?<![A-Za-z0-9{run}].{{{width}}})"


def _detector(kind: str, pattern: str, **options: Any) -> _Detector:
    return _Detector(kind, re.compile(pattern, re.ASCII), **options)


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
        folded=True,
        needs=("authorization",),
    ),
    # "Bearer <token>" anywhere. The token must hold a digit, so "bearer instruments" is prose.
    _detector(
        "bearer_token",
        rf"bearer(?<![a-z0-9_-]bearer)[ \t]+"
        rf"(?P<secret>(?=[{_TOKEN68}]*[0-9])[{_TOKEN68}]{{16,}}=*)",
        folded=True,
        needs=("bearer",),
    ),
    # api_key=..., "apiKey": "...", AWS_SECRET_ACCESS_KEY=..., "apiToken": ...: the name may end
    # a longer one. The value is long and holds both digits and letters, so
    # "api_key: YOUR_KEY_HERE" and "max_tokens: 1024" stay.
    _detector(
        "api_key",
        rf"(?:{_KEY_NAMES}){_ASSIGN}"
        rf"(?P<secret>(?=[{_TOKEN68}]*[0-9])(?=[{_TOKEN68}]*[a-z])[{_TOKEN68}]{{16,}}=*)",
        folded=True,
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
        # Each alternative starts with one of these literals.
        needs=(
            *("sk-", "AKIA", "ASIA", "github_pat_", "xox", "AIza", "eyJ"),
            *(f"gh{kind}_" for kind in "pousr"),  # not "gh": English is full of it
        ),
    ),
    # From the "@": the local part is found by walking left. "icon@2x.png" is a file name.
    _detector(
        "email",
        r"@(?![0-9]x\.)(?:[A-Za-z0-9-]{1,63}\.){1,16}[A-Za-z]{2,63}(?![A-Za-z0-9-])",
        local_part=True,
        needs=("@",),
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
        luhn=True,
        min_digits=13,
    ),
)
# For text that is not ASCII (lowering may change its length): the folded patterns, ignoring case.
_UNFOLDED = {
    detector.pattern: re.compile(detector.pattern.pattern, re.ASCII | re.IGNORECASE)
    for detector in _DETECTORS
    if detector.folded
}

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

    __slots__ = ("_builtins", "_compiled_rules", "_detectors", "_key_kinds", "_rules")

    _builtins: tuple[str, ...]
    _rules: tuple[tuple[str, str], ...]
    _detectors: tuple[_Detector, ...]
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
        setattr_ = object.__setattr__
        setattr_(self, "_builtins", tuple(kind for kind in BUILTINS if kind in wanted))
        setattr_(self, "_rules", tuple((pattern, repl) for pattern, repl in rules))
        setattr_(self, "_detectors", tuple(d for d in _DETECTORS if d.kind in wanted))
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
        if len(text) >= _MIN_BUILTIN_LENGTH:
            lowered: str | None = None
            for detector in self._detectors:
                pattern, haystack = detector.pattern, text
                if detector.folded:
                    if lowered is None:
                        lowered = text.lower()
                    haystack = lowered
                if detector.needs and not any(literal in haystack for literal in detector.needs):
                    continue
                if detector.min_digits and _digits(text) < detector.min_digits:
                    continue
                if detector.folded and not text.isascii():
                    pattern, haystack = _UNFOLDED[pattern], text
                redacted = _apply(detector, pattern, text, haystack)
                if redacted is not text:
                    text, lowered = redacted, None
        for pattern, replacement in self._compiled_rules:
            text = pattern.sub(replacement, text)
        return text

    def redact(self, interaction: Interaction) -> Interaction:
        """`interaction` with every free-text field redacted (see the module doc): the same
        object when nothing needed redacting, which is the common case and spares the copies
        (`dataclasses.replace` costs several µs a call, measured on the worker)."""
        if not self.active:
            return interaction
        text = self.redact_text
        changes: dict[str, Any] = {}
        for field in ("input", "output"):
            messages: tuple[Message, ...] = getattr(interaction, field)
            redacted = tuple(self._message(message) for message in messages)
            if any(new is not old for new, old in zip(redacted, messages, strict=True)):
                changes[field] = redacted
        for field in ("system_instructions", "error"):
            value = getattr(interaction, field)
            if value is not None and (new_value := text(value)) != value:
                changes[field] = new_value
        tools = tuple(self._value(tool, 0) for tool in interaction.tools)
        if tools != interaction.tools:
            changes["tools"] = tools
        metadata = self._value(interaction.metadata, 0)
        if metadata != interaction.metadata:
            changes["metadata"] = metadata
        return replace(interaction, **changes) if changes else interaction

    def _message(self, message: Message) -> Message:
        content = self.redact_text(message.content)
        parts = tuple(self._value(part, 0) for part in message.parts)
        name = None if message.name is None else self.redact_text(message.name)
        if content == message.content and parts == message.parts and name == message.name:
            return message
        return replace(message, content=content, parts=parts, name=name)

    def _value(self, value: Any, depth: int) -> Any:
        """Strings redacted anywhere in nested mappings, lists and tuples; other values kept."""
        if isinstance(value, str):
            return self.redact_text(value)
        if isinstance(value, Mapping | list | tuple) and depth >= _MAX_DEPTH:
            return _TOO_DEEP
        if isinstance(value, Mapping):
            return {key: self._item(key, item, depth + 1) for key, item in value.items()}
        if isinstance(value, list):
            return [self._value(item, depth + 1) for item in value]
        if isinstance(value, tuple):
            return tuple(self._value(item, depth + 1) for item in value)
        return value

    def _item(self, key: Any, value: Any, depth: int) -> Any:
        """A mapping value. Under a credential's name (a captured `authorization` header, a
        `password` argument) a string, or a header's list of strings, is replaced whole. Any
        other value is walked as usual: in a tool's JSON schema `"api_key": {"type": "string"}`
        describes an argument and holds no secret."""
        if self._key_kinds and isinstance(key, str) and isinstance(value, str | list | tuple):
            kind = _sensitive_kind(key)
            if kind is not None and kind in self._key_kinds:
                marker = _marker(kind)
                if isinstance(value, str):
                    return marker if value else value
                if all(isinstance(item, str) for item in value):
                    masked = [marker if item else item for item in value]
                    return masked if isinstance(value, list) else tuple(masked)
        return self._value(value, depth)


@lru_cache(maxsize=4096)  # the same few attribute and argument names, over and over
def _sensitive_kind(key: str) -> str | None:
    found = _SENSITIVE_KEY.search(key.lower())
    return None if found is None else found.lastgroup


_NOT_DIGITS = bytes(b for b in range(256) if not 0x30 <= b <= 0x39)


def _digits(text: str) -> int:
    # bytes.translate with a deletion table is one pass in C (~1 µs for 1 KB, measured), where
    # ten str.count calls or a regex scan cost ~9 µs.
    return len(text.encode("utf-8", "surrogatepass").translate(None, _NOT_DIGITS))


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
