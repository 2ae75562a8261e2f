"""Tools: the ``@tool`` decorator, tool specs from signatures, argument checking, results.

``@tool`` turns a function into an :class:`AgentTool`. The tool's
:class:`~trio_bidi.types.ToolSpec` comes from the function: its name, the first paragraph
of its docstring as the description, and a JSON schema of its parameters built from the
type annotations, with each parameter's description taken from the Google-style ``Args:``
section::

    @tool
    async def get_weather(city: str, unit: Literal["C", "F"] = "C") -> str:
        \"\"\"Get the current weather.

Args:
            city: The city's name.
            unit: Temperature unit.
        \"\"\"

A parameter named ``tool_context`` (or annotated :class:`ToolContext`, or named by
``@tool(context="name")``), ``agent``, ``invocation_state`` or ``request_state`` is filled in
by the agent and left out of the schema. Setting ``request_state["stop_event_loop"] = True``
(the same dict as ``tool_context.invocation_state["request_state"]``, as in Strands) ends
the conversation after the call.

``async def`` tools run in the agent's nursery; plain functions run in a worker thread
(Trio cannot interrupt a thread: cancelling or timing out a sync tool takes effect when
the function returns).
"""

from __future__ import annotations

import abc
import enum
import functools
import inspect
import json
import logging
import re
import sys
import types
import typing
import warnings
from collections.abc import Awaitable, Callable, Generator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal, Union, overload

import attrs
import trio

from ..errors import BidiConfigurationError
from ..types import ToolResult, ToolResultContent, ToolSpec, ToolUse

if TYPE_CHECKING:
    from ._agent import BidiAgent

__all__ = [
    "AgentTool",
    "ConcurrentToolExecutor",
    "DirectToolCall",
    "FunctionTool",
    "SequentialToolExecutor",
    "ToolArgumentError",
    "ToolContext",
    "ToolRegistry",
    "stop_conversation",
    "tool",
]

logger = logging.getLogger(__name__)

_INJECTED = frozenset({"tool_context", "agent", "invocation_state", "request_state"})
_SECTION = re.compile(
    r"^(Args|Arguments|Parameters|Returns|Return|Raises|Yields|Examples?|Notes?|"
    r"Attributes|Warnings?|See Also|Todo)\s*:\s*$"
)
_ARG_LINE = re.compile(r"^(\*{0,2}\w+)\s*(?:\(([^)]*)\))?\s*:\s*(.*)$")
_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")


class ToolArgumentError(ValueError):
    """The model called a tool with arguments that do not fit its schema."""


@attrs.define(kw_only=True)
class ToolContext:
    """What a tool may receive about its call (``@tool(context=True)``: ``tool_context``).

    Attributes:
        tool_use: The call: ``{"toolUseId", "name", "input"}``.
        agent: The agent running the tool (None for a bare ``tool.invoke``).
        invocation_state: As in Strands: the state given to
            ``agent.run(invocation_state=...)`` (or :meth:`BidiAgent.session`), plus
            ``"request_state"``, ``"agent"``, ``"model"``, ``"messages"`` and
            ``"system_prompt"``. A per-call copy: adding keys does not change the agent's.
        request_state: Per-call flags (``invocation_state["request_state"]`` is this same
            dict); set ``"stop_event_loop"`` to True to end the conversation.
    """

    tool_use: ToolUse
    agent: BidiAgent | None = None
    invocation_state: dict[str, Any] = attrs.Factory(dict)
    request_state: dict[str, Any] = attrs.Factory(dict)
    _caller_state: dict[str, Any] = attrs.field(init=False, repr=False)

    def __attrs_post_init__(self) -> None:
        caller_state = self.invocation_state
        self._caller_state = caller_state
        given = caller_state.get("request_state")
        if isinstance(given, dict) and given is not self.request_state:
            # Flags the caller put in its own request_state still count.
            for key, value in given.items():
                self.request_state.setdefault(key, value)
        view = {**caller_state, "request_state": self.request_state}
        agent = self.agent
        if agent is not None:
            view.setdefault("agent", agent)
            view.setdefault("model", agent.model)
            view.setdefault("messages", agent.messages)
            view.setdefault("system_prompt", agent.system_prompt)
        self.invocation_state = view

    @property
    def caller_invocation_state(self) -> dict[str, Any]:
        """The caller's invocation state itself (without the keys added per call)."""
        return self._caller_state


# --------------------------------------------------------------------------- docstrings


def _parse_docstring(doc: str | None) -> tuple[str, dict[str, str]]:
    """Split a Google-style docstring into a description and ``{arg: description}``."""
    if not doc:
        return "", {}
    lines = inspect.cleandoc(doc).splitlines()
    description: list[str] = []
    args: dict[str, str] = {}
    section: str | None = None
    current: str | None = None
    base_indent: int | None = None
    for line in lines:
        stripped = line.strip()
        header = _SECTION.match(stripped)
        if header and (len(line) - len(line.lstrip())) == 0:
            section = header.group(1)
            current = None
            base_indent = None
            continue
        if section is None:
            description.append(line)
            continue
        if section not in ("Args", "Arguments", "Parameters") or not stripped:
            continue
        indent = len(line) - len(line.lstrip())
        if base_indent is None:
            base_indent = indent
        match = _ARG_LINE.match(stripped)
        if indent <= base_indent and match:
            current = match.group(1).lstrip("*")
            args[current] = match.group(3).strip()
        elif current is not None:
            args[current] = f"{args[current]} {stripped}".strip()
    text = "\n".join(description).strip()
    return text, args


# --------------------------------------------------------------------------- schemas

_NONE = type(None)
_SCALARS: dict[type, str] = {str: "string", bool: "boolean", int: "integer", float: "number"}


def _json_type_of(value: Any) -> str:
    if value is None:
        return "null"
    for kind, name in _SCALARS.items():
        if type(value) is kind:
            return name
    raise TypeError(f"literal value {value!r} is not a JSON scalar")


def _is_typeddict(annotation: Any) -> bool:
    return isinstance(annotation, type) and typing.is_typeddict(annotation)


def _is_fixed_tuple(origin: Any, args: tuple[Any, ...]) -> bool:
    """True for ``tuple[X, Y, ...]`` with fixed positions (not ``tuple[X, ...]``)."""
    return origin is tuple and bool(args) and not (len(args) == 2 and args[1] is Ellipsis)


def _enum_schema(values: Sequence[Any]) -> dict[str, Any]:
    kinds = sorted({_json_type_of(v) for v in values})
    schema: dict[str, Any] = {"enum": list(values)}
    schema["type"] = kinds[0] if len(kinds) == 1 else kinds
    return schema


def schema_for(annotation: Any, where: str) -> dict[str, Any]:
    """Return the JSON schema of a type annotation.

    Args:
        annotation: A resolved annotation.
        where: Names the parameter, for error messages.

    Raises:
        BidiConfigurationError: The type has no JSON schema here.
    """
    if annotation is Any or annotation is inspect.Parameter.empty:
        return {}
    if annotation is None or annotation is _NONE:
        return {"type": "null"}
    if annotation in _SCALARS:
        return {"type": _SCALARS[annotation]}
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in (Union, types.UnionType):
        options = [schema_for(a, where) for a in args]
        return options[0] if len(options) == 1 else {"anyOf": options}
    if origin is Literal:
        return _enum_schema(args)
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return _enum_schema([m.value for m in annotation])
    if annotation in (list, tuple, set, frozenset) or origin in (
        list,
        tuple,
        set,
        frozenset,
        Sequence,
    ):
        schema: dict[str, Any] = {"type": "array"}
        if _is_fixed_tuple(origin, args):
            schema["prefixItems"] = [schema_for(a, where) for a in args]
            schema["minItems"] = schema["maxItems"] = len(args)
        elif args:
            schema["items"] = schema_for(args[0], where)
        return schema
    if annotation is dict or origin in (dict, Mapping):
        schema = {"type": "object"}
        if len(args) == 2:
            schema["additionalProperties"] = schema_for(args[1], where)
        return schema
    if attrs.has(annotation):
        attrs.resolve_types(annotation)
        props: dict[str, Any] = {}
        required: list[str] = []
        for field in attrs.fields(annotation):
            if not field.init:
                continue
            name = field.alias or field.name
            props[name] = schema_for(field.type, f"{where}.{name}")
            if field.default is attrs.NOTHING:
                required.append(name)
        return _object_schema(props, required)
    if _is_typeddict(annotation):
        hints = typing.get_type_hints(annotation)
        props = {k: schema_for(v, f"{where}.{k}") for k, v in hints.items()}
        required_keys = getattr(annotation, "__required_keys__", frozenset(hints))
        return _object_schema(props, [k for k in hints if k in required_keys])
    raise BidiConfigurationError(f"{where}: type {annotation!r} has no JSON schema for a tool")


def _object_schema(props: dict[str, Any], required: list[str]) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object", "properties": props}
    if required:
        schema["required"] = required
    schema["additionalProperties"] = False
    return schema


# --------------------------------------------------------------------------- conversion


def _type_name(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def convert(value: Any, annotation: Any, path: str) -> Any:
    """Check a JSON value against an annotation and convert it (enums, attrs classes).

    Raises:
        ToolArgumentError: The value does not fit; the message names the argument path.
    """
    if annotation is Any or annotation is inspect.Parameter.empty:
        return value
    if annotation is None or annotation is _NONE:
        if value is None:
            return None
        raise ToolArgumentError(f"{path}: expected null, got {_type_name(value)}")
    if annotation is bool:
        if isinstance(value, bool):
            return value
        raise ToolArgumentError(f"{path}: expected boolean, got {_type_name(value)}")
    if annotation is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise ToolArgumentError(f"{path}: expected integer, got {value!r}")
    if annotation is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise ToolArgumentError(f"{path}: expected number, got {_type_name(value)}")
    if annotation is str:
        if isinstance(value, str):
            return value
        raise ToolArgumentError(f"{path}: expected string, got {_type_name(value)}")
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in (Union, types.UnionType):
        problems = []
        for option in sorted(args, key=lambda a: a is not _NONE):
            try:
                return convert(value, option, path)
            except ToolArgumentError as exc:
                problems.append(str(exc))
        raise ToolArgumentError(
            f"{path}: {value!r} fits none of the allowed types ({'; '.join(problems)})"
        )
    if origin is Literal:
        if any(value == a and type(value) is type(a) for a in args):
            return value
        raise ToolArgumentError(f"{path}: {value!r} is not one of {list(args)!r}")
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        try:
            return annotation(value)
        except ValueError:
            allowed = [m.value for m in annotation]
            raise ToolArgumentError(f"{path}: {value!r} is not one of {allowed!r}") from None
    if annotation in (list, tuple, set, frozenset) or origin in (
        list,
        tuple,
        set,
        frozenset,
        Sequence,
    ):
        if not isinstance(value, list):
            raise ToolArgumentError(f"{path}: expected array, got {_type_name(value)}")
        if _is_fixed_tuple(origin, args):
            if len(value) != len(args):
                raise ToolArgumentError(f"{path}: expected {len(args)} items, got {len(value)}")
            return tuple(
                convert(v, a, f"{path}[{i}]")
                for i, (v, a) in enumerate(zip(value, args, strict=True))
            )
        item_type = args[0] if args else Any
        items = [convert(v, item_type, f"{path}[{i}]") for i, v in enumerate(value)]
        kind = origin or annotation
        return items if kind in (list, Sequence) else kind(items)
    if annotation is dict or origin in (dict, Mapping):
        if not isinstance(value, dict):
            raise ToolArgumentError(f"{path}: expected object, got {_type_name(value)}")
        value_type = args[1] if len(args) == 2 else Any
        return {k: convert(v, value_type, f"{path}.{k}") for k, v in value.items()}
    if attrs.has(annotation):
        attrs.resolve_types(annotation)
        fields = {f.alias or f.name: f for f in attrs.fields(annotation) if f.init}
        kwargs = _convert_object(
            value,
            {n: f.type for n, f in fields.items()},
            path,
            {n for n, f in fields.items() if f.default is attrs.NOTHING},
        )
        try:
            return annotation(**kwargs)
        except (TypeError, ValueError) as exc:
            raise ToolArgumentError(f"{path}: {exc}") from exc
    if _is_typeddict(annotation):
        hints = typing.get_type_hints(annotation)
        required = set(getattr(annotation, "__required_keys__", hints))
        return _convert_object(value, hints, path, required)
    raise ToolArgumentError(f"{path}: cannot check values of type {annotation!r}")


def _convert_object(
    value: Any, hints: Mapping[str, Any], path: str, required: set[str]
) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ToolArgumentError(f"{path}: expected object, got {_type_name(value)}")
    unknown = sorted(set(value) - set(hints))
    if unknown:
        raise ToolArgumentError(f"{path}: unexpected key(s) {unknown!r}")
    missing = sorted(required - set(value))
    if missing:
        raise ToolArgumentError(f"{path}: missing required key(s) {missing!r}")
    return {k: convert(v, hints[k], f"{path}.{k}") for k, v in value.items()}


_JSON_TYPES: dict[str, Callable[[Any], bool]] = {
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: (
        (isinstance(v, int) and not isinstance(v, bool))
        or (isinstance(v, float) and v.is_integer())
    ),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
    "array": lambda v: isinstance(v, list),
    "object": lambda v: isinstance(v, dict),
}


def check_schema(value: Any, schema: Mapping[str, Any], path: str) -> None:
    """Check a value against the common subset of JSON schema a tool spec uses.

    Supports ``type``, ``enum``, ``properties``, ``required``, ``additionalProperties``,
    ``items``, ``prefixItems``, ``minItems``, ``maxItems`` and ``anyOf``; other keywords
    are not checked.

    Raises:
        ToolArgumentError: The value does not fit.
    """
    if "anyOf" in schema:
        for option in schema["anyOf"]:
            try:
                check_schema(value, option, path)
                return
            except ToolArgumentError:
                continue
        raise ToolArgumentError(f"{path}: {value!r} fits none of the allowed types")
    kind = schema.get("type")
    if kind is not None:
        kinds = [kind] if isinstance(kind, str) else list(kind)
        if not any(_JSON_TYPES.get(k, lambda _v: True)(value) for k in kinds):
            raise ToolArgumentError(f"{path}: expected {'/'.join(kinds)}, got {_type_name(value)}")
    if "enum" in schema and value not in schema["enum"]:
        raise ToolArgumentError(f"{path}: {value!r} is not one of {schema['enum']!r}")
    if isinstance(value, dict):
        props = schema.get("properties", {})
        missing = sorted(set(schema.get("required", ())) - set(value))
        if missing:
            raise ToolArgumentError(f"{path}: missing required key(s) {missing!r}")
        extra = schema.get("additionalProperties", True)
        for key, item in value.items():
            if key in props:
                check_schema(item, props[key], f"{path}.{key}")
            elif extra is False:
                raise ToolArgumentError(f"{path}: unexpected key {key!r}")
            elif isinstance(extra, Mapping):
                check_schema(item, extra, f"{path}.{key}")
    if isinstance(value, list):
        _check_array(value, schema, path)


def _check_array(value: list[Any], schema: Mapping[str, Any], path: str) -> None:
    low, high = schema.get("minItems"), schema.get("maxItems")
    if isinstance(low, int) and len(value) < low:
        raise ToolArgumentError(f"{path}: expected at least {low} items, got {len(value)}")
    if isinstance(high, int) and len(value) > high:
        raise ToolArgumentError(f"{path}: expected at most {high} items, got {len(value)}")
    positional = schema.get("prefixItems")
    start = 0
    if isinstance(positional, list):
        for index, (item, item_schema) in enumerate(zip(value, positional, strict=False)):
            check_schema(item, item_schema, f"{path}[{index}]")
        start = len(positional)
    if isinstance(schema.get("items"), Mapping):
        for index in range(start, len(value)):
            check_schema(value[index], schema["items"], f"{path}[{index}]")


# --------------------------------------------------------------------------- tools


def to_tool_result(tool_use_id: str, value: Any) -> ToolResult:
    """Turn what a tool returned into a :class:`~trio_bidi.types.ToolResult`.

    A ``str`` becomes a text block; a dict with ``status`` and ``content`` is taken as a
    result (its ``toolUseId`` replaced); other JSON-serialisable values become a json
    block; anything else becomes its ``str``.
    """
    if isinstance(value, Mapping) and {"status", "content"} <= set(value):
        status = value["status"]
        content = value["content"]
        if status in ("success", "error") and isinstance(content, list):
            return ToolResult(toolUseId=tool_use_id, status=status, content=list(content))
    if isinstance(value, str):
        block: ToolResultContent = {"text": value}
    else:
        try:
            json.dumps(value)
            block = {"json": value}
        except (TypeError, ValueError):
            block = {"text": str(value)}
    return ToolResult(toolUseId=tool_use_id, status="success", content=[block])


def error_result(tool_use_id: str, message: str) -> ToolResult:
    """Build an error result carrying ``message`` as its text."""
    return ToolResult(toolUseId=tool_use_id, status="error", content=[{"text": message}])


class AgentTool(abc.ABC):
    """A tool the agent can run: a spec plus an ``invoke`` coroutine.

    Attributes:
        cancellable: True when a barge-in (the user interrupting) cancels running calls.
        timeout_s: This tool's time limit in seconds (None: the agent's setting).
    """

    cancellable: bool = False
    timeout_s: float | None = None

    @property
    @abc.abstractmethod
    def spec(self) -> ToolSpec:
        """The spec the model sees."""

    @property
    def name(self) -> str:
        """The tool's name (``spec["name"]``)."""
        return self.spec["name"]

    @abc.abstractmethod
    async def invoke(self, tool_use: ToolUse, context: ToolContext) -> Any:
        """Run one call and return its raw value (see :func:`to_tool_result`).

        Raises:
            ToolArgumentError: The input does not fit the tool's schema.
        """


class FunctionTool(AgentTool):
    """A tool backed by a Python function (made by :func:`tool`).

    Calling the object calls the function directly, so decorated functions stay usable
    as functions.

    Args:
        func: The function (sync or ``async def``).
        spec: The spec (built from ``func`` when None).
        cancellable: See :class:`AgentTool`.
        timeout_s: See :class:`AgentTool`.
        name: Overrides the function's name in a built spec.
        description: Overrides the docstring's description in a built spec.
        context: The parameter that receives the :class:`ToolContext` (besides
            ``tool_context`` and parameters annotated ``ToolContext``).
        input_schema: Replaces the schema built from the signature (Strands'
            ``inputSchema``: ``{"json": <JSON schema>}``; a bare JSON schema is wrapped).
    """

    def __init__(
        self,
        func: Callable[..., Any],
        *,
        spec: ToolSpec | None = None,
        cancellable: bool = False,
        timeout_s: float | None = None,
        name: str | None = None,
        description: str | None = None,
        context: str | None = None,
        input_schema: Mapping[str, Any] | None = None,
    ) -> None:
        if inspect.isasyncgenfunction(func) or inspect.isgeneratorfunction(func):
            raise BidiConfigurationError(f"tool {func!r}: generator functions are not supported")
        if timeout_s is not None and not timeout_s > 0:
            raise BidiConfigurationError(f"tool {func!r}: timeout_s must be > 0, got {timeout_s}")
        self._func = func
        self._is_async = inspect.iscoroutinefunction(func)
        self.cancellable = cancellable
        self.timeout_s = timeout_s
        signature = inspect.signature(func)
        try:
            hints = typing.get_type_hints(func)
        except Exception as exc:
            raise BidiConfigurationError(
                f"tool {func!r}: cannot resolve annotations: {exc}"
            ) from exc
        self._params: dict[str, Any] = {}
        self._required: set[str] = set()
        self._injected: dict[str, str] = {}
        self._takes_kwargs = False
        if context is not None and context not in signature.parameters:
            raise BidiConfigurationError(
                f"tool {func!r}: context={context!r} names no parameter of the function"
            )
        for param in signature.parameters.values():
            annotation = hints.get(param.name, inspect.Parameter.empty)
            if param.name == context:
                self._injected[param.name] = "tool_context"
                continue
            if param.name in _INJECTED or annotation is ToolContext:
                self._injected[param.name] = (
                    "tool_context" if annotation is ToolContext else (param.name)
                )
                continue
            if param.kind is inspect.Parameter.VAR_KEYWORD:
                self._takes_kwargs = True
                continue
            if param.kind in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.POSITIONAL_ONLY):
                raise BidiConfigurationError(
                    f"tool {func!r}: parameter {param.name!r} cannot be passed by keyword"
                )
            self._params[param.name] = annotation
            if param.default is inspect.Parameter.empty:
                self._required.add(param.name)
        if spec is None:
            spec = self._build_spec(func, signature, name, description)
            if input_schema is not None:
                spec = ToolSpec(
                    name=spec["name"],
                    description=spec["description"],
                    inputSchema=_as_input_schema(input_schema, spec["name"]),
                )
        elif spec.get("name") is None or "inputSchema" not in spec:
            raise BidiConfigurationError(f"tool spec {spec!r} needs 'name' and 'inputSchema'")
        if not _NAME.match(spec["name"]):
            raise BidiConfigurationError(
                f"tool name {spec['name']!r} must be 1-64 letters, digits, '_' or '-'"
            )
        self._spec = spec
        functools.update_wrapper(self, func)

    def _build_spec(
        self,
        func: Callable[..., Any],
        signature: inspect.Signature,
        name: str | None,
        description: str | None,
    ) -> ToolSpec:
        tool_name = name or func.__name__
        doc_description, arg_docs = _parse_docstring(func.__doc__)
        props: dict[str, Any] = {}
        for param_name, annotation in self._params.items():
            prop = schema_for(annotation, f"tool {tool_name!r} parameter {param_name!r}")
            if arg_docs.get(param_name):
                prop = {**prop, "description": arg_docs[param_name]}
            default = signature.parameters[param_name].default
            if default is not inspect.Parameter.empty:
                if isinstance(default, enum.Enum):
                    default = default.value
                try:
                    json.dumps(default)
                    prop = {**prop, "default": default}
                except (TypeError, ValueError):
                    pass
            props[param_name] = prop
        schema: dict[str, Any] = {"type": "object", "properties": props}
        required = [p for p in self._params if p in self._required]
        if required:
            schema["required"] = required
        if not self._takes_kwargs:
            schema["additionalProperties"] = False
        return ToolSpec(
            name=tool_name,
            description=description or doc_description or tool_name,
            inputSchema={"json": schema},
        )

    @property
    def spec(self) -> ToolSpec:
        """The spec the model sees."""
        return self._spec

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Call the underlying function directly."""
        return self._func(*args, **kwargs)

    def __repr__(self) -> str:
        return f"<FunctionTool {self.name!r}>"

    def _bind(self, tool_input: Any) -> dict[str, Any]:
        if not isinstance(tool_input, dict):
            raise ToolArgumentError(f"input must be an object, got {_type_name(tool_input)}")
        check_schema(tool_input, self._spec["inputSchema"]["json"], "input")
        kwargs: dict[str, Any] = {}
        for key, value in tool_input.items():
            if key in self._params:
                kwargs[key] = convert(value, self._params[key], key)
            elif self._takes_kwargs:
                kwargs[key] = value
            else:
                raise ToolArgumentError(f"input: unexpected argument {key!r}")
        missing = sorted(self._required - set(kwargs))
        if missing:
            raise ToolArgumentError(f"input: missing required argument(s) {missing!r}")
        return kwargs

    async def invoke(self, tool_use: ToolUse, context: ToolContext) -> Any:
        """Check the input, call the function (sync functions in a worker thread)."""
        kwargs = self._bind(tool_use.get("input"))
        for param_name, kind in self._injected.items():
            if kind == "tool_context":
                kwargs[param_name] = context
            elif kind == "agent":
                kwargs[param_name] = context.agent
            elif kind == "invocation_state":
                kwargs[param_name] = context.caller_invocation_state
            else:
                kwargs[param_name] = context.request_state
        if self._is_async:
            return await self._func(**kwargs)
        value = await trio.to_thread.run_sync(functools.partial(self._func, **kwargs))
        # A timeout or cancellation that came while the thread ran takes effect here.
        await trio.lowlevel.checkpoint()
        return value


@overload
def tool(func: Callable[..., Any], /) -> FunctionTool: ...


@overload
def tool(spec: ToolSpec, func: Callable[..., Any], /) -> FunctionTool: ...


@overload
def tool(
    *,
    name: str | None = None,
    description: str | None = None,
    cancellable: bool = False,
    timeout_s: float | None = None,
    context: bool | str = False,
    inputSchema: Mapping[str, Any] | None = None,
) -> Callable[[Callable[..., Any]], FunctionTool]: ...


def tool(
    first: Callable[..., Any] | ToolSpec | None = None,
    second: Callable[..., Any] | None = None,
    /,
    *,
    name: str | None = None,
    description: str | None = None,
    cancellable: bool = False,
    timeout_s: float | None = None,
    context: bool | str = False,
    inputSchema: Mapping[str, Any] | None = None,
) -> FunctionTool | Callable[[Callable[..., Any]], FunctionTool]:
    """Make a tool from a function.

    Use it bare (``@tool``), with options (``@tool(name=..., cancellable=True)``), or with
    a ready spec: ``tool(spec, func)`` checks the model's input against
    ``spec["inputSchema"]["json"]`` and calls ``func(**input)``.

    Args:
        first: The function, or a :class:`~trio_bidi.types.ToolSpec`.
        second: The function, when ``first`` is a spec.
        name: The tool's name (default: the function's name).
        description: The description (default: the docstring's first part).
        cancellable: Cancel running calls when the user barges in.
        timeout_s: This tool's time limit in seconds.
        context: As in Strands: True passes the :class:`ToolContext` as the
            ``tool_context`` parameter; a string names another parameter for it.
        inputSchema: As in Strands: the schema the model sees instead of the one built
            from the signature (``{"json": {...}}``).

    Returns:
        A :class:`FunctionTool`, or a decorator making one.

    Raises:
        BidiConfigurationError: The function cannot be a tool (an argument type with no
            JSON schema, a bad name, positional-only parameters).
    """
    if isinstance(context, str):
        context_param: str | None = context.strip()
        if not context_param:
            raise BidiConfigurationError("tool(context=...): the parameter name is empty")
    else:
        context_param = "tool_context" if context else None
    if isinstance(first, Mapping):
        if second is None or not callable(second):
            raise BidiConfigurationError("tool(spec, func): func must be callable")
        return FunctionTool(
            second,
            spec=typing.cast(ToolSpec, dict(first)),
            cancellable=cancellable,
            timeout_s=timeout_s,
            context=context_param,
        )

    def decorate(func: Callable[..., Any]) -> FunctionTool:
        if not callable(func):
            raise BidiConfigurationError(f"tool(): {func!r} is not callable")
        return FunctionTool(
            func,
            cancellable=cancellable,
            timeout_s=timeout_s,
            name=name,
            description=description,
            # ``tool_context`` is always filled in; only another name needs passing on.
            context=None if context_param == "tool_context" else context_param,
            input_schema=inputSchema,
        )

    if first is not None:
        return decorate(first)
    return decorate


def _as_input_schema(schema: Mapping[str, Any], tool_name: str) -> Any:
    if not isinstance(schema, Mapping):
        raise BidiConfigurationError(f"tool {tool_name!r}: inputSchema must be a dict")
    if set(schema) == {"json"} and isinstance(schema["json"], Mapping):
        return {"json": dict(schema["json"])}
    return {"json": dict(schema)}


@tool(name="stop_conversation")
async def stop_conversation(request_state: dict[str, Any]) -> str:
    """End this live conversation and close the connection.

    Call it only when the user literally says "stop conversation". Any other farewell or
    request to stop ("bye", "goodbye", "stop", "quit", "exit", "that's all", ...) is
    not a reason to call it.
    """
    request_state["stop_event_loop"] = True
    return "Ending conversation"


class DirectToolCall:
    """What ``agent.tool.<name>(...)`` returns: await it to run the call.

    Trio has no event loop to run a call from synchronous code, so direct calls are
    awaitable (Strands runs them synchronously). A call that is never awaited never runs;
    it warns with :class:`RuntimeWarning` naming the line that made it, and using it as a
    result (``call["status"]``) raises :class:`TypeError` saying to await it.

    Args:
        name: The tool's name.
        run: Makes the coroutine that runs the call.
        stacklevel: Frames between the caller and this constructor.
    """

    __slots__ = ("_awaited", "_filename", "_lineno", "_name", "_run")

    def __init__(
        self, name: str, run: Callable[[], Awaitable[ToolResult]], *, stacklevel: int = 2
    ) -> None:
        self._name = name
        self._run = run
        self._awaited = False
        frame = sys._getframe(stacklevel)
        self._filename = frame.f_code.co_filename
        self._lineno = frame.f_lineno

    def __await__(self) -> Generator[Any, None, ToolResult]:
        if self._awaited:
            raise RuntimeError(f"agent.tool.{self._name}(...) was already awaited")
        self._awaited = True
        return self._run().__await__()

    def _not_awaited(self) -> TypeError:
        return TypeError(
            f"agent.tool.{self._name}(...) returns an awaitable: write "
            f"`result = await agent.tool.{self._name}(...)` "
            f"(called at {self._filename}:{self._lineno})"
        )

    def __getitem__(self, key: str) -> Any:
        raise self._not_awaited()

    def get(self, key: str, default: Any = None) -> Any:
        """Raise :class:`TypeError`: the call must be awaited first."""
        raise self._not_awaited()

    def __repr__(self) -> str:
        state = "awaited" if self._awaited else "not awaited"
        return f"<DirectToolCall {self._name!r} ({state})>"

    def __del__(self) -> None:
        if not getattr(self, "_awaited", True):
            warnings.warn_explicit(
                f"agent.tool.{self._name}(...) was never awaited, so the tool did not run; "
                f"write `await agent.tool.{self._name}(...)`",
                RuntimeWarning,
                self._filename,
                self._lineno,
            )


@attrs.frozen
class ConcurrentToolExecutor:
    """Run the model's tool calls concurrently (the default, as in Strands).

    Attributes:
        max_concurrency: Most calls at once (None: no limit); the agent's
            ``tool_concurrency`` setting.
    """

    max_concurrency: int | None = None


@attrs.frozen
class SequentialToolExecutor:
    """Run the model's tool calls one at a time, in the order the model asked."""

    max_concurrency: int | None = 1


ToolExecutor = ConcurrentToolExecutor | SequentialToolExecutor
"""``BidiAgent(tool_executor=...)``: how tool calls run."""


class ToolRegistry:
    """The agent's tools by name.

    Args:
        tools: Tools (:class:`AgentTool`), or plain functions (wrapped with :func:`tool`).

    Raises:
        BidiConfigurationError: Two tools share a name, or an entry is not a tool.
    """

    def __init__(self, tools: Sequence[AgentTool | Callable[..., Any]] = ()) -> None:
        self._tools: dict[str, AgentTool] = {}
        for entry in tools:
            self.add(entry)

    def add(self, entry: AgentTool | Callable[..., Any]) -> AgentTool:
        """Register a tool (a plain function is wrapped with :func:`tool`)."""
        if isinstance(entry, AgentTool):
            agent_tool = entry
        elif callable(entry):
            agent_tool = FunctionTool(entry)
        else:
            raise BidiConfigurationError(f"{entry!r} is not a tool")
        if agent_tool.name in self._tools:
            raise BidiConfigurationError(f"two tools are named {agent_tool.name!r}")
        self._tools[agent_tool.name] = agent_tool
        return agent_tool

    def replace(self, entry: AgentTool | Callable[..., Any]) -> AgentTool:
        """Register a tool, replacing any tool of the same name (tool reloading)."""
        agent_tool = entry if isinstance(entry, AgentTool) else FunctionTool(entry)
        self._tools[agent_tool.name] = agent_tool
        return agent_tool

    def remove(self, name: str) -> None:
        """Unregister the tool called ``name`` (nothing when there is none)."""
        self._tools.pop(name, None)

    def get(self, name: str) -> AgentTool | None:
        """Return the tool called ``name``, or None."""
        return self._tools.get(name)

    @property
    def names(self) -> list[str]:
        """Tool names, in registration order."""
        return list(self._tools)

    @property
    def specs(self) -> list[ToolSpec]:
        """Tool specs, in registration order."""
        return [t.spec for t in self._tools.values()]

    def __contains__(self, name: object) -> bool:
        return name in self._tools

    def __len__(self) -> int:
        return len(self._tools)
