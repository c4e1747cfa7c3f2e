"""The exception tree. Retryable and permanent failures are types, not strings.

    OtelLabelStudioError
    ├── ConfigurationError             bad settings; raised at start-up, never at export time
    └── LabelStudioError               anything that went wrong talking to Label Studio
        ├── LabelStudioUnavailable     retryable: connection refused/reset, timeout, 5xx, 429
        └── LabelStudioRejected        permanent for this request: 4xx
            ├── AuthenticationFailed   401/403: wrong or expired token, or legacy tokens disabled
            ├── ProjectNotFound        a configured project id does not exist
            └── TasksRejected          400 on import: at least one task in the batch is invalid

Messages never contain the API key: they are built from the status code and the response body
that Label Studio returned, never from request headers.
"""

from __future__ import annotations

__all__ = [
    "AuthenticationFailed",
    "ConfigurationError",
    "LabelStudioError",
    "LabelStudioRejected",
    "LabelStudioUnavailable",
    "OtelLabelStudioError",
    "ProjectNotFound",
    "TasksRejected",
]


class OtelLabelStudioError(Exception):
    """Base of every error this package raises on purpose."""


class ConfigurationError(OtelLabelStudioError):
    """Settings are invalid; the message names the field and the source."""


class LabelStudioError(OtelLabelStudioError):
    def __init__(self, message: str, *, status_code: int | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code


class LabelStudioUnavailable(LabelStudioError):
    """Worth retrying later: the request may not have reached Label Studio, or it was overloaded.

    `outcome_unknown` is True when the request may have been applied (the response was lost),
    so a retry must first check whether the work is already there.
    """

    def __init__(
        self, message: str, *, status_code: int | None = None, outcome_unknown: bool = False
    ) -> None:
        super().__init__(message, status_code=status_code)
        self.outcome_unknown = outcome_unknown


class LabelStudioRejected(LabelStudioError):
    """Label Studio understood the request and refused it; repeating it unchanged will not help."""


class AuthenticationFailed(LabelStudioRejected):
    pass


class ProjectNotFound(LabelStudioRejected):
    pass


class TasksRejected(LabelStudioRejected):
    pass
