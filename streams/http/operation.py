"""One operation of the OpenAPI document, written as data: its parameters, its role, and
every answer the handler or the middleware can give (streams/http/openapi.py)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from pydantic import BaseModel

from cartwatch.streams.http.schemas import ErrorAnswer, Role, RoleMissing

JSON = "application/json"
HTML = "text/html"
Body = type[BaseModel] | str  # a JSON model, or a media type whose body is a plain string


@dataclass(frozen=True)
class Parameter:
    """A path or query parameter; `schema` a JSON Schema (strings unless said otherwise)."""

    name: str
    where: str  # "path" or "query"
    description: str
    schema: dict[str, Any] = field(default_factory=lambda: {"type": "string"})

    def to_openapi(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "in": self.where,
            "required": self.where == "path",
            "description": self.description,
            "schema": self.schema,
        }


@dataclass(frozen=True)
class Response:
    """One status of an operation: what it means and what its body holds."""

    description: str
    body: Body | None = ErrorAnswer
    headers: dict[str, str] = field(default_factory=dict)  # name -> description
    links: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Operation:
    """A method on a path; `role` None: open to anyone (no identity asked)."""

    method: str
    path: str
    operation_id: str
    summary: str
    tag: str
    responses: dict[int, Response]
    role: Role | None = "viewer"
    parameters: tuple[Parameter, ...] = ()
    body: type[BaseModel] | None = None  # a JSON request body (optional)
    form: dict[str, Any] | None = None  # an HTML form's fields, as a JSON Schema
    security: tuple[str, ...] = ("bearerAuth",)

    def models(self) -> list[type[BaseModel]]:
        """The pydantic models the operation's bodies use."""
        bodies = [r.body for r in self.all_responses().values()]
        found = [b for b in bodies if isinstance(b, type)]
        return found + ([self.body] if self.body is not None else [])

    def all_responses(self) -> dict[int, Response]:
        """Its own answers, and the identity middleware's when it needs a role."""
        if self.role is None or self.tag == "desk":  # the desk answers those as pages
            return self.responses
        merged = dict(IDENTITY_ANSWERS)
        for status, own in self.responses.items():
            if status in merged:  # both answer it: one description says either
                own = replace(
                    own, description=f"{own.description}; or: {merged[status].description}"
                )
            merged[status] = own
        return merged

    def to_openapi(self, refs: dict[type[BaseModel], dict]) -> dict[str, Any]:
        """The OpenAPI Operation Object; `refs` maps each model to its `$ref`."""
        out: dict[str, Any] = {
            "operationId": self.operation_id,
            "summary": self.summary,
            "tags": [self.tag],
            "security": [{name: []} for name in self.security] if self.role else [],
            "parameters": [p.to_openapi() for p in self.parameters],
            "responses": {
                str(status): _response(answer, refs)
                for status, answer in sorted(self.all_responses().items())
            },
        }
        if self.role:
            out["x-cartwatch-role"] = self.role
        if self.body is not None:
            content = {JSON: {"schema": refs[self.body]}}
            out["requestBody"] = {"required": False, "content": content}
        if self.form is not None:
            form = "application/x-www-form-urlencoded"
            out["requestBody"] = {"required": True, "content": {form: {"schema": self.form}}}
        return out


def _response(answer: Response, refs: dict[type[BaseModel], dict]) -> dict[str, Any]:
    out: dict[str, Any] = {"description": answer.description}
    if isinstance(answer.body, type):
        out["content"] = {JSON: {"schema": refs[answer.body]}}
    elif answer.body is not None:
        out["content"] = {answer.body: {"schema": {"type": "string"}}}
    if answer.headers:
        out["headers"] = {
            name: {"description": text, "schema": {"type": "string"}}
            for name, text in answer.headers.items()
        }
    if answer.links:
        out["links"] = answer.links
    return out


# What the identity middleware answers before a handler runs (streams/http/api.py).
IDENTITY_ANSWERS = {
    401: Response(
        "No usable bearer token (or, on an open API, an acknowledgement with nobody to name)",
        headers={"WWW-Authenticate": "Bearer"},
    ),
    403: Response(
        "The identity lacks the operation's role (`role` names it), or a request sent with "
        "the desk's cookie came from another site",
        RoleMissing,
    ),
    503: Response("The account store or the identity provider cannot answer right now"),
}
