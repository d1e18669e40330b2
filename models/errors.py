"""The domain's errors: one root, small leaves named for the condition."""

from __future__ import annotations


class CartwatchError(Exception):
    """Root of every error cartwatch raises on purpose."""


class InvalidUnit(CartwatchError, ValueError):
    """A lab unit that is neither canonical nor a documented equivalent."""


class InvalidEvent(CartwatchError, ValueError):
    """A message that breaks the contract; carries every reason it failed."""

    def __init__(self, reasons: list[str]) -> None:
        super().__init__("; ".join(reasons))
        self.reasons = reasons
