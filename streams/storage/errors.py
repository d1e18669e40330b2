"""Errors of the storage adapter: one root under the project's, small leaves."""

from __future__ import annotations

from cartwatch.models.errors import CartwatchError


class StorageError(CartwatchError):
    """Root of the errors the storage layer raises on purpose."""


class DeadLetterNotFound(StorageError, LookupError):
    """No dead letter has that id."""


class AlreadyRedriven(StorageError):
    """The dead letter was re-driven before; a second re-drive is refused."""


class InvalidCorrection(StorageError, ValueError):
    """The message to re-drive still breaks the contract; carries its reasons."""

    def __init__(self, reasons: list[str]) -> None:
        super().__init__("; ".join(reasons))
        self.reasons = reasons


class AlertNotFound(StorageError, LookupError):
    """No alert has that id."""


class AlertAlreadyAcknowledged(StorageError):
    """The alert was acknowledged before; carries who did and when (RFC 3339, UTC)."""

    def __init__(self, by: str, at: str) -> None:
        super().__init__(f"already acknowledged by {by} at {at}")
        self.by, self.at = by, at


class UserExists(StorageError):
    """A local account of that name exists (or existed: revoked names are not reused)."""


class UserNotFound(StorageError, LookupError):
    """No local account has that name."""


class InvalidUser(StorageError, ValueError):
    """A local account's name or roles cannot be stored."""


class WriterClosed(StorageError, RuntimeError):
    """`put` on a writer that was closed."""
