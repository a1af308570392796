"""Domain errors, each carrying the HTTP status the API answers with.

Raised before anything is written (or inside the transaction, which then rolls back), so an
error never leaves a half-done change behind.
"""

from __future__ import annotations


class CrmError(Exception):
    status = 400

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field

    def as_dict(self) -> dict[str, str]:
        body = {"error": self.message, "kind": type(self).__name__}
        if self.field:
            body["field"] = self.field
        return body


class ValidationError(CrmError):
    """The request itself is wrong (missing/invalid field, unknown reference)."""

    status = 400


class NotFound(CrmError):
    status = 404


class Conflict(CrmError):
    """The request is well-formed but the current state forbids it (e.g. assign a closed ticket)."""

    status = 409
