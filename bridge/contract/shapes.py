"""Typed shapes: frozen dataclasses whose type hints are the one source for three things —
checking what the LMS sends (`load`), writing what it receives (`dump`), and the JSON Schema
of both in the OpenAPI document (`schema_of`).

A field's type says what it holds (`str`, `int`, `bool`, `datetime`, `bytes` for a file,
`Literal[...]`, `X | None`, `list[X]`, `dict[str, X]`, another shape); `Annotated[..., Rule(...)]`
adds limits, a description, a wire name, or a check. A field whose type includes `Omitted` may
be left out: it is not required in the schema and not written when it holds `OMITTED`. A
shape's docstring is its description; `__schema__` adds keywords (conditions between fields);
a shape with a `__component__` name is referred to by `$ref` wherever it is used.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import re
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Literal, TypeVar, get_args, get_origin, get_type_hints

from bridge.domain.text import has_lone_surrogate

T = TypeVar("T")


class FieldError(ValueError):
    """A request field that is missing or wrong; `field` is its dotted path."""

    def __init__(self, field_path: str, message: str) -> None:
        super().__init__(f"{field_path}: {message}")
        self.field = field_path
        self.message = message


class ParameterError(FieldError):
    """A query-string parameter that is wrong."""


class Omitted:
    """The type of `OMITTED`: a field left out of a body (not the same as null)."""

    def __repr__(self) -> str:
        return "OMITTED"

    def __bool__(self) -> bool:
        return False


OMITTED = Omitted()


@dataclass(frozen=True, eq=False)  # compared by identity: hashable, as Annotated needs
class Rule:
    """What a type alone can't say about a field: limits, words for the reader, a check."""

    description: str = ""
    name: str | None = None  # the name on the wire, when it can't be a Python name ("as")
    min_length: int | None = None
    max_length: int | None = None
    minimum: int | None = None
    maximum: int | None = None
    pattern: str | None = None
    min_items: int | None = None
    max_items: int | None = None
    example: Any = None
    # More JSON Schema keywords, for what has no attribute above (minItems, format, …).
    schema: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    # Called with (field path, value) after the type checks; returns the value to keep (may
    # clean it) or raises FieldError.
    check: Callable[[str, Any], Any] | None = None

    def merged(self, other: Rule) -> Rule:
        """This rule with `other`'s settings on top (nested Annotated aliases stack)."""
        values = {
            f.name: getattr(other, f.name)
            for f in dataclasses.fields(other)
            if getattr(other, f.name) not in (None, "", {})
        }
        if self.schema and other.schema:
            values["schema"] = {**self.schema, **other.schema}
        return dataclasses.replace(self, **values)


@dataclass(frozen=True)
class _Field:
    name: str  # on the wire
    attribute: str
    hint: Any
    rule: Rule
    omittable: bool
    has_default: bool


def _split(hint: Any) -> tuple[Any, Rule]:
    """A hint without its Annotated layer, and the rule that layer held."""
    rule = Rule()
    if get_origin(hint) is Annotated:
        base, *extras = get_args(hint)
        for extra in extras:
            if isinstance(extra, Rule):
                rule = rule.merged(extra)
        return base, rule
    return hint, rule


def _members(hint: Any) -> tuple[Any, ...] | None:
    """The members of a union (`X | None`), or None for any other hint."""
    if get_origin(hint) in (typing.Union, types.UnionType):
        return get_args(hint)
    return None


@functools.cache
def _fields(shape: type) -> tuple[_Field, ...]:
    hints = get_type_hints(shape, include_extras=True)
    found = []
    for f in dataclasses.fields(shape):
        base, rule = _split(hints[f.name])
        members = _members(base)
        omittable = members is not None and Omitted in members
        if omittable:
            kept = tuple(m for m in members if m is not Omitted)
            base = kept[0] if len(kept) == 1 else typing.Union[kept]  # noqa: UP007
        has_default = (
            f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING
        )
        found.append(_Field(rule.name or f.name, f.name, base, rule, omittable, has_default))
    return tuple(found)


def is_shape(hint: Any) -> bool:
    """Whether a hint is a shape (a dataclass)."""
    return isinstance(hint, type) and dataclasses.is_dataclass(hint)


def wire_names(shape: type) -> tuple[str, ...]:
    """The names of a shape's fields as they are sent."""
    return tuple(f.name for f in _fields(shape))


# --- writing ---


def dump(value: Any) -> Any:
    """A shape (or anything it holds) as JSON values; omitted fields are left out."""
    if is_shape(type(value)):
        out = {}
        for f in _fields(type(value)):
            item = getattr(value, f.attribute)
            if item is not OMITTED:
                out[f.name] = dump(item)
        return out
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, (list, tuple)):
        return [dump(item) for item in value]
    if isinstance(value, dict):
        return {key: dump(item) for key, item in value.items()}
    return value


# --- reading ---


def load(shape: type[T], value: Any, prefix: str = "") -> T:
    """Check a JSON value against a shape; the shape holding it, or FieldError naming the
    first field at fault (unknown fields are refused)."""
    return typing.cast(T, _load(shape, value, prefix.rstrip(".") or "body", top=True))


def load_query(shape: type[T], query: Mapping[str, str]) -> T:
    """A shape from query-string parameters (every value a string; numbers are parsed).

    Parameters the shape doesn't name are ignored: proxies and browsers add their own.
    """
    values: dict[str, Any] = {}
    for f in _fields(shape):
        if f.name not in query:
            continue
        raw = query[f.name]
        base = _without_none(f.hint)
        if base is int:
            try:
                values[f.name] = int(raw)
            except ValueError:
                raise ParameterError(f.name, "expected a whole number") from None
        else:
            values[f.name] = raw
    try:
        return typing.cast(T, _load(shape, values, "", top=True))
    except FieldError as exc:
        raise ParameterError(exc.field, exc.message) from None


def _without_none(hint: Any) -> Any:
    members = _members(hint)
    if members is None:
        return _split(hint)[0]
    kept = [m for m in members if m is not type(None)]
    return _split(kept[0])[0] if len(kept) == 1 else hint


def _join(prefix: str, name: str, top: bool) -> str:
    return name if top and prefix in ("", "body") else f"{prefix}.{name}"


def _load(shape: type, value: Any, path: str, top: bool = False) -> Any:
    if not isinstance(value, dict):
        raise FieldError(path, "expected a JSON object")
    fields = _fields(shape)
    known = {f.name for f in fields}
    for key in value:
        if key not in known:
            raise FieldError(_join(path, str(key), top), "unknown field")
    kwargs: dict[str, Any] = {}
    for f in fields:
        where = _join(path, f.name, top)
        if f.name not in value:
            if not (f.has_default or f.omittable):
                raise FieldError(where, "required")
            continue
        kwargs[f.attribute] = _value(f.hint, value[f.name], where, f.rule)
    return shape(**kwargs)


def _value(hint: Any, value: Any, path: str, rule: Rule) -> Any:
    base, own = _split(hint)
    rule = own.merged(rule)
    members = _members(base)
    if members is not None:
        if value is None:
            if type(None) in members:
                return None
            raise FieldError(path, "must not be null")
        kept = [m for m in members if m is not type(None)]
        if len(kept) != 1:
            raise TypeError(f"unions of several types are not supported: {base}")
        return _value(kept[0], value, path, rule)
    if value is None:
        raise FieldError(path, "must not be null")
    checked = _typed(base, value, path, rule)
    if rule.check is not None:
        checked = rule.check(path, checked)
    return checked


def _typed(base: Any, value: Any, path: str, rule: Rule) -> Any:
    origin = get_origin(base)
    if origin is Literal:
        choices = get_args(base)
        if value not in choices or isinstance(value, bool) != isinstance(choices[0], bool):
            raise FieldError(path, f"expected one of {', '.join(map(str, choices))}")
        return value
    if base is str:
        if not isinstance(value, str):
            raise FieldError(path, "expected a string")
        if "\x00" in value:
            raise FieldError(path, "must not contain NUL characters")
        if has_lone_surrogate(value):
            raise FieldError(path, "contains a lone surrogate, which is not valid Unicode")
        if rule.min_length is not None and len(value) < rule.min_length:
            raise FieldError(path, "expected a non-empty string")
        if rule.max_length is not None and len(value) > rule.max_length:
            raise FieldError(path, f"longer than {rule.max_length} characters")
        if rule.pattern is not None and not re.search(rule.pattern, value):
            like = rule.example if rule.example is not None else rule.pattern
            raise FieldError(path, f"expected a value like {like}")
        return value
    if base is bool:
        if not isinstance(value, bool):
            raise FieldError(path, "expected true or false")
        return value
    if base is int:
        if not isinstance(value, int) or isinstance(value, bool):
            raise FieldError(path, "expected a whole number")
        low, high = rule.minimum, rule.maximum
        if (low is not None and value < low) or (high is not None and value > high):
            raise FieldError(path, f"expected {low} to {high}")
        return value
    if base is bytes:
        if not isinstance(value, bytes):
            raise FieldError(path, "expected a file")
        return value
    if origin is list:
        if not isinstance(value, list):
            raise FieldError(path, "expected a list")
        if rule.min_items is not None and len(value) < rule.min_items:
            raise FieldError(path, f"expected at least {rule.min_items} items")
        if rule.max_items is not None and len(value) > rule.max_items:
            raise FieldError(path, f"expected at most {rule.max_items} items")
        (item,) = get_args(base)
        return [_value(item, v, f"{path}[{n}]", Rule()) for n, v in enumerate(value)]
    if is_shape(base):
        return _load(base, value, path)
    raise TypeError(f"no reader for {base!r}")


# --- describing ---


def schema_of(hint: Any, *, request: bool = False) -> dict[str, Any]:
    """The JSON Schema (2020-12, as OpenAPI 3.1 has it) of a shape or field type.

    In a request, a field with a default may be left out; in a response every field is always
    there unless its type includes `Omitted`.
    """
    base, rule = _split(hint)
    members = _members(base)
    if members is not None:
        kept = [m for m in members if m is not type(None)]
        if len(kept) != 1:
            raise TypeError(f"unions of several types are not supported: {base}")
        schema = _nullable(schema_of(kept[0], request=request))
    else:
        schema = _schema(base, request)
    return _with_rule(schema, rule)


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    kind = schema.get("type")
    if isinstance(kind, str):
        schema = {**schema, "type": [kind, "null"]}
        if "enum" in schema:
            schema["enum"] = [*schema["enum"], None]
        return schema
    return {"anyOf": [schema, {"type": "null"}]}


def _with_rule(schema: dict[str, Any], rule: Rule) -> dict[str, Any]:
    keywords = {
        "description": rule.description or None,
        "minLength": rule.min_length,
        "maxLength": rule.max_length,
        "minimum": rule.minimum,
        "maximum": rule.maximum,
        "pattern": rule.pattern,
        "minItems": rule.min_items,
        "maxItems": rule.max_items,
        "example": rule.example,
    }
    return {**schema, **{k: v for k, v in keywords.items() if v is not None}, **rule.schema}


def _schema(base: Any, request: bool) -> dict[str, Any]:
    origin = get_origin(base)
    if origin is Literal:
        choices = list(get_args(base))
        kind = "boolean" if isinstance(choices[0], bool) else "string"
        return {"type": kind, "enum": choices}
    simple = {str: "string", bool: "boolean", int: "integer", float: "number"}
    if base in simple:
        return {"type": simple[base]}
    if base is datetime:
        return {"type": "string", "format": "date-time"}
    if base is bytes:
        return {"type": "string", "format": "binary"}
    if base is Any:
        return {}
    if origin is list:
        (item,) = get_args(base)
        return {"type": "array", "items": schema_of(item, request=request)}
    if origin is dict:
        _key, item = get_args(base)
        if item is Any:
            return {"type": "object"}
        return {"type": "object", "additionalProperties": schema_of(item, request=request)}
    if is_shape(base):
        if "__component__" in base.__dict__:
            return {"$ref": f"#/components/schemas/{base.__component__}"}
        return _object_schema(base, request)
    raise TypeError(f"no schema for {base!r}")


def component_schema(shape: type) -> dict[str, Any]:
    """The schema of a shape that others refer to by `$ref` (its `__component__` name)."""
    return _object_schema(shape, request=False)


def _object_schema(shape: type, request: bool) -> dict[str, Any]:
    properties: dict[str, Any] = {}
    required: list[str] = []
    for f in _fields(shape):
        properties[f.name] = _with_rule(schema_of(f.hint, request=request), f.rule)
        default = next(x.default for x in dataclasses.fields(shape) if x.name == f.attribute)
        if request and isinstance(default, (str, int, bool)) and not isinstance(default, Omitted):
            properties[f.name]["default"] = default
        if not f.omittable and not (request and f.has_default):
            required.append(f.name)
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        schema["required"] = required
    schema["additionalProperties"] = False
    doc = shape.__dict__.get("__doc__") or ""
    if doc and not doc.startswith(f"{shape.__name__}("):  # not dataclass's generated one
        schema["description"] = " ".join(inspect.cleandoc(doc).split())
    return {**schema, **getattr(shape, "__schema__", {})}
