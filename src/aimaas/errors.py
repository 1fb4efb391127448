"""One exception tree for the whole platform.

Every error a user can see is an :class:`AimaasError` with a stable ``code`` (machine readable),
a ``type`` (the OpenAI-style error family), an ``http_status`` and an optional ``param`` naming the
field to fix. The API turns them into the one error envelope
``{"error": {"message", "type", "code", "param"}}`` and the SDK turns that envelope back into the
same classes, so a caller catches :class:`NotFound` whether it runs in-process or over HTTP.
"""

from __future__ import annotations

from typing import Any, ClassVar

__all__ = [
    "AimaasError",
    "Conflict",
    "Forbidden",
    "InvalidInput",
    "NotFound",
    "PayloadTooLarge",
    "QuotaExceeded",
    "RateLimited",
    "SchemaTooNew",
    "ServiceUnavailable",
    "StorageError",
    "Unauthorized",
    "UnsupportedMediaType",
    "error_class_for",
]


class AimaasError(Exception):
    """Base of every error the platform reports to a user.

    ``message`` says what went wrong *and what to do about it*; it never contains secrets.
    """

    http_status: ClassVar[int] = 500
    type: ClassVar[str] = "server_error"
    default_code: ClassVar[str] = "internal_error"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        param: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code or self.default_code
        self.param = param
        self.headers = headers or {}

    def to_body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.type, "code": self.code, "param": self.param}}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r}, code={self.code!r}, param={self.param!r})"


class InvalidInput(AimaasError):
    """The request is well-formed HTTP but its content is wrong (422 unless a subclass says otherwise)."""

    http_status = 422
    type = "invalid_request_error"
    default_code = "invalid_input"


class BadRequest(InvalidInput):
    http_status = 400
    default_code = "bad_request"


class UnsupportedMediaType(InvalidInput):
    http_status = 415
    default_code = "unsupported_media_type"


class PayloadTooLarge(InvalidInput):
    http_status = 413
    default_code = "payload_too_large"


class Unauthorized(AimaasError):
    http_status = 401
    type = "authentication_error"
    default_code = "invalid_api_key"


class Forbidden(AimaasError):
    http_status = 403
    type = "permission_error"
    default_code = "insufficient_scope"


class NotFound(AimaasError):
    http_status = 404
    type = "not_found_error"
    default_code = "not_found"


class Conflict(AimaasError):
    http_status = 409
    type = "conflict_error"
    default_code = "conflict"


class RateLimited(AimaasError):
    http_status = 429
    type = "rate_limit_error"
    default_code = "rate_limit_exceeded"


class QuotaExceeded(AimaasError):
    http_status = 429
    type = "insufficient_quota"
    default_code = "insufficient_quota"


class ServiceUnavailable(AimaasError):
    http_status = 503
    type = "server_error"
    default_code = "service_unavailable"


class StorageError(AimaasError):
    """A database or artifact-store failure, translated at the storage boundary."""

    http_status = 503
    type = "server_error"
    default_code = "storage_error"


class SchemaTooNew(StorageError):
    """The database was migrated by a newer aimaas; we refuse to run rather than downgrade it."""

    default_code = "schema_too_new"


__all__.append("BadRequest")

_BY_STATUS: dict[int, type[AimaasError]] = {
    400: BadRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    413: PayloadTooLarge,
    415: UnsupportedMediaType,
    422: InvalidInput,
    503: ServiceUnavailable,
}


def error_class_for(status: int, code: str | None = None) -> type[AimaasError]:
    """The exception class for an HTTP status (and code), used by the SDK to re-raise server errors."""
    if status == 429:
        return QuotaExceeded if code == "insufficient_quota" else RateLimited
    if code == "schema_too_new":
        return SchemaTooNew
    if status in _BY_STATUS:
        return _BY_STATUS[status]
    if 400 <= status < 500:
        return InvalidInput
    return AimaasError
