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


class WriterClosed(StorageError, RuntimeError):
    """`put` on a writer that was closed."""
