"""Errors of the HTTP layer: one root under the project's, small leaves."""

from __future__ import annotations

from cartwatch.models.errors import CartwatchError


class ApiError(CartwatchError):
    """Root of the errors the HTTP layer raises on purpose."""


class NotAuthenticated(ApiError):
    """The request carries no usable identity; the message says why (a 401)."""


class IdentityUnavailable(ApiError):
    """The identity provider or the account store cannot answer right now (a 503)."""


class ExposedWithoutIdentity(ApiError):
    """The API would listen beyond loopback with no identity source: the worker refuses."""
