"""The service's exception tree, mapped to HTTP status codes once (in ``app.api.errors``).

Everything the service rejects on purpose raises a subclass of :class:`AppError`; the API
turns it into ``{"error": {"code": ..., "message": ...}}`` with the class's status code.
"""

from __future__ import annotations


class AppError(Exception):
    """Base class: a problem the caller can act on."""

    status_code: int = 400
    code: str = "bad_request"

    def __init__(
        self, message: str, *, code: str | None = None, details: dict[str, object] | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        # Facts a client acts on without parsing the message (who decided, the label made).
        self.details = details
        if code is not None:
            self.code = code


class NotFound(AppError):
    status_code = 404
    code = "not_found"


class Conflict(AppError):
    status_code = 409
    code = "conflict"


class InvalidInput(AppError):
    """Well-formed request whose content is unacceptable (bad image, bad mask, bad settings)."""

    status_code = 422
    code = "invalid_input"


class PayloadTooLarge(AppError):
    status_code = 413
    code = "payload_too_large"


class UnsupportedMediaType(AppError):
    status_code = 415
    code = "unsupported_media_type"


class ServiceUnavailable(AppError):
    """A dependency (database, broker, storage) cannot be reached."""

    status_code = 503
    code = "service_unavailable"


class JobFailed(AppError):
    """Background work whose result was asked for failed; the message carries its error."""

    status_code = 500
    code = "job_failed"


class Unauthorized(AppError):
    """No valid credentials: a missing, unknown, expired or revoked token."""

    status_code = 401
    code = "unauthorized"


class Forbidden(AppError):
    """Valid credentials whose role does not allow the action."""

    status_code = 403
    code = "forbidden"


class TooManyRequests(AppError):
    status_code = 429
    code = "too_many_requests"

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after
