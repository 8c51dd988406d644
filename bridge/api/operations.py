"""Operations: each route declared once — method, path, handler, what it takes and answers —
so the web application's routes and the OpenAPI document come from the same table."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from bridge.api.openapi_parts import errors, path_params
from bridge.contract.shapes import schema_of, wire_names

JSON = "application/json"


@dataclass(frozen=True)
class Reply:
    """One documented answer: a status, its words, and the shape of its body (None: no body;
    a schema for what no shape describes)."""

    status: int
    description: str
    shape: type | Mapping[str, Any] | None = None
    media: tuple[str, ...] = (JSON,)


@dataclass(frozen=True)
class Operation:
    """One route of the API."""

    method: str
    path: str
    handler: str  # the name of the route class's method that serves it
    tag: str
    summary: str
    replies: tuple[Reply, ...]
    errors: tuple[int, ...] = ()
    description: str = ""
    body: type | Mapping[str, Any] | None = None  # a JSON body: a shape, or a schema
    form: type | None = None  # a multipart/form-data body, as another way to send
    query: type | None = None
    public: bool = False  # no token at all: probes, and the page trading its link's code
    session: bool = False  # the embedded page's session token instead of the API token

    def document(self) -> dict[str, Any]:
        """The operation as the OpenAPI document has it."""
        operation: dict[str, Any] = {"tags": [self.tag], "summary": self.summary}
        if self.description:
            operation["description"] = self.description
        parameters = [*path_params(self.path), *_query_params(self.query)]
        if parameters:
            operation["parameters"] = parameters
        content: dict[str, Any] = {}
        if self.body is not None:
            content[JSON] = {"schema": _schema(self.body, request=True)}
        if self.form is not None:
            content["multipart/form-data"] = {"schema": _schema(self.form, request=True)}
        if content:
            operation["requestBody"] = {"required": True, "content": content}
        failures = errors(*self.errors)
        if self.public:  # no token to be refused
            failures = {k: v for k, v in failures.items() if k in map(str, self.errors)}
        operation["responses"] = {
            **{str(reply.status): _reply(reply) for reply in self.replies},
            **failures,
        }
        if self.public:
            operation["security"] = []
        elif self.session:
            operation["security"] = [{"embedSession": []}]
        return operation


def bind(owner: object, operations: tuple[Operation, ...]) -> list[web.RouteDef]:
    """The aiohttp routes of `operations`, served by `owner`'s methods."""
    return [web.route(op.method, op.path, getattr(owner, op.handler)) for op in operations]


def _schema(shape: type | Mapping[str, Any], request: bool) -> dict[str, Any]:
    return dict(shape) if isinstance(shape, Mapping) else schema_of(shape, request=request)


def _reply(reply: Reply) -> dict[str, Any]:
    answer: dict[str, Any] = {"description": reply.description}
    if reply.shape is not None:
        schema = _schema(reply.shape, request=False)
        answer["content"] = {media: {"schema": schema} for media in reply.media}
    return answer


def _query_params(shape: type | None) -> list[dict[str, Any]]:
    if shape is None:
        return []
    schema = schema_of(shape, request=True)
    required = set(schema.get("required", []))
    params = []
    for name in wire_names(shape):
        field_schema = dict(schema["properties"][name])
        param: dict[str, Any] = {"name": name, "in": "query"}
        if name in required:
            param["required"] = True
        if "description" in field_schema:
            param["description"] = field_schema.pop("description")
        param["schema"] = field_schema
        params.append(param)
    return params
