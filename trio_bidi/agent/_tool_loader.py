"""Tools given the Strands ways: module paths, files, modules, providers, ``./tools/``.

``BidiAgent(tools=[...])`` takes, besides tool objects and functions:

- ``"package.module"`` or ``"package.module:function"``: the ``@tool`` functions of an
  importable module (or one of them);
- ``"path/to/file.py"`` (or ``{"path": ..., "name": ...}``): the ``@tool`` functions of a
  Python file;
- a module object;
- a tool provider: an object with ``async load_tools()`` (and optionally
  ``add_consumer(id)`` / ``remove_consumer(id)``), loaded when the agent starts.

A module without ``@tool`` functions may define a Strands module tool: a ``TOOL_SPEC`` dict
and a function of the module's name taking ``(tool_use, **invocation_state)``.

``load_tools_from_directory=True`` loads every ``*.py`` in ``./tools/`` at construction and
:class:`ToolDirectoryWatcher` picks up added and changed files while the agent runs: it
polls modification times from a worker thread and loads changed files there, so the Trio
thread never waits on the file system or on a module's import. A broken file is reported
(the agent turns it into a :class:`~trio_bidi.events.BidiErrorEvent`) and the other tools
keep working. New or changed specs reach the model with the next connection (a model
learns its tools when it connects).
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import inspect
import logging
import os
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import trio

from ..errors import BidiConfigurationError
from ..types import ToolSpec, ToolUse
from ._hooks import BidiAfterInvocationEvent, BidiBeforeInvocationEvent, HookRegistry
from ._tools import AgentTool, FunctionTool, ToolContext, ToolRegistry

__all__ = [
    "ModuleTool",
    "ToolDirectoryWatcher",
    "ToolLoadError",
    "ToolProviders",
    "is_tool_provider",
    "load_tools_from_file",
    "load_tools_from_module",
    "load_tools_from_string",
    "resolve_tool_entries",
]

logger = logging.getLogger(__name__)

ReportError = Callable[[BaseException, dict[str, Any]], Awaitable[None]]
"""How the watcher reports a file it cannot load: ``await report(error, details)``."""


class ToolLoadError(BidiConfigurationError):
    """A tool file or module could not be loaded; the message names it."""


class ModuleTool(AgentTool):
    """A Strands module tool: a ``TOOL_SPEC`` and a function ``(tool_use, **state)``.

    Args:
        spec: The module's ``TOOL_SPEC``.
        func: The function (sync functions run in a worker thread).
    """

    def __init__(self, spec: ToolSpec, func: Callable[..., Any]) -> None:
        if not isinstance(spec, Mapping) or "name" not in spec or "inputSchema" not in spec:
            raise ToolLoadError(f"TOOL_SPEC {spec!r} needs 'name' and 'inputSchema'")
        self._spec = spec
        self._func = func

    @property
    def spec(self) -> ToolSpec:
        """The module's ``TOOL_SPEC``."""
        return self._spec

    async def invoke(self, tool_use: ToolUse, context: ToolContext) -> Any:
        """Call ``func(tool_use, **invocation_state)`` as Strands does."""
        call = functools.partial(self._func, tool_use, **context.invocation_state)
        if inspect.iscoroutinefunction(self._func):
            return await call()
        value = await trio.to_thread.run_sync(call)
        await trio.lowlevel.checkpoint()
        return value

    def __repr__(self) -> str:
        return f"<ModuleTool {self.name!r}>"


def load_tools_from_module(
    module: ModuleType, tool_name: str | None = None, *, module_name: str | None = None
) -> list[AgentTool]:
    """Return a module's ``@tool`` functions (or the one named), else its module tool.

    ``module_name`` (default: the module's last dotted name) names the function of a
    ``TOOL_SPEC`` module tool.

    Raises:
        ToolLoadError: The module holds no tool (or not the one named).
    """
    found = [v for v in vars(module).values() if isinstance(v, FunctionTool)]
    if tool_name is not None:
        chosen: list[AgentTool] = [t for t in found if t.name == tool_name]
        attribute = getattr(module, tool_name, None)
        if not chosen and isinstance(attribute, AgentTool):
            chosen = [attribute]
        if not chosen:
            raise ToolLoadError(f"module {module.__name__!r} has no tool {tool_name!r}")
        return list(chosen)
    if found:
        return list(found)
    spec = getattr(module, "TOOL_SPEC", None)
    short_name = module_name or module.__name__.rsplit(".", 1)[-1]
    func = getattr(module, short_name, None)
    if spec is not None and callable(func):
        return [ModuleTool(spec, func)]
    raise ToolLoadError(
        f"module {module.__name__!r} has no @tool function and no TOOL_SPEC with a "
        f"function named {short_name!r}"
    )


def _import_file(path: Path) -> ModuleType:
    # A fresh module object per load, so an edited file is really reloaded.
    module_name = f"trio_bidi_tools_{path.stem}_{uuid.uuid4().hex[:8]}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise ToolLoadError(f"tool file {str(path)!r} is not a Python module")
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        raise ToolLoadError(
            f"tool file {str(path)!r} failed to load: {type(exc).__name__}: {exc}"
        ) from exc
    return module


def load_tools_from_file(path: str | os.PathLike[str]) -> list[AgentTool]:
    """Import a Python file and return its tools (see :func:`load_tools_from_module`).

    Raises:
        ToolLoadError: The file is missing, does not import, or holds no tool.
    """
    file_path = Path(path).resolve()
    if not file_path.is_file():
        raise ToolLoadError(f"tool file {str(path)!r} does not exist")
    module = _import_file(file_path)
    try:
        return load_tools_from_module(module, module_name=file_path.stem)
    except ToolLoadError as exc:
        raise ToolLoadError(f"tool file {str(file_path)!r}: {exc}") from exc


def load_tools_from_string(entry: str) -> list[AgentTool]:
    """Load tools from a file path, ``"package.module"`` or ``"package.module:name"``.

    Raises:
        ToolLoadError: Nothing importable by that name, or no tool in it.
    """
    if entry.endswith(".py") or os.path.sep in entry or os.path.exists(entry):
        return load_tools_from_file(entry)
    module_path, _, tool_name = entry.partition(":")
    try:
        module = importlib.import_module(module_path)
    except ImportError as exc:
        raise ToolLoadError(
            f"tool {entry!r}: no such file, and module {module_path!r} cannot be imported ({exc})"
        ) from exc
    return load_tools_from_module(module, tool_name or None)


def is_tool_provider(entry: object) -> bool:
    """True for an object with an ``async load_tools()`` method (a Strands tool provider)."""
    load = getattr(entry, "load_tools", None)
    return callable(load) and not isinstance(entry, (AgentTool, type, ModuleType))


def resolve_tool_entries(
    entries: Iterable[Any],
) -> tuple[list[AgentTool | Callable[..., Any]], list[Any]]:
    """Split ``tools=[...]`` into tools (loading names, files, modules) and providers.

    Raises:
        ToolLoadError: An entry cannot be loaded; the message names it.
    """
    tools: list[AgentTool | Callable[..., Any]] = []
    providers: list[Any] = []
    for entry in entries:
        if isinstance(entry, AgentTool):
            tools.append(entry)
        elif isinstance(entry, str):
            tools.extend(load_tools_from_string(entry))
        elif isinstance(entry, Mapping) and "path" in entry:
            loaded = load_tools_from_string(str(entry["path"]))
            if "name" in entry:
                loaded = [t for t in loaded if t.name == entry["name"]]
                if not loaded:
                    raise ToolLoadError(f"tool {entry['name']!r} not found in {entry['path']!r}")
            tools.extend(loaded)
        elif isinstance(entry, ModuleType):
            tools.extend(load_tools_from_module(entry))
        elif is_tool_provider(entry):
            providers.append(entry)
        elif isinstance(entry, Iterable) and not isinstance(entry, (bytes, Mapping)):
            nested_tools, nested_providers = resolve_tool_entries(entry)
            tools.extend(nested_tools)
            providers.extend(nested_providers)
        elif callable(entry):
            tools.append(entry)
        else:
            raise BidiConfigurationError(
                f"{entry!r} is not a tool (expected a @tool function, an AgentTool, a module "
                "path, a .py file, a module or a tool provider)"
            )
    return tools, providers


class ToolProviders:
    """Hook provider loading tool providers' tools when the agent starts.

    Args:
        providers: Objects with ``async load_tools()``.
        registry: The agent's tool registry.
    """

    def __init__(self, providers: Sequence[Any], registry: ToolRegistry) -> None:
        self._providers = list(providers)
        self._registry = registry
        self._consumer_id = f"trio-bidi-{uuid.uuid4().hex[:12]}"

    def register_hooks(self, registry: HookRegistry) -> None:
        """Load on :class:`BidiBeforeInvocationEvent`, release on the after event."""
        registry.add_callback(BidiBeforeInvocationEvent, self._load)
        registry.add_callback(BidiAfterInvocationEvent, self._release)

    async def _load(self, _event: BidiBeforeInvocationEvent) -> None:
        for provider in self._providers:
            add = getattr(provider, "add_consumer", None)
            if callable(add):
                add(self._consumer_id)
            loaded = provider.load_tools()
            if inspect.isawaitable(loaded):
                loaded = await loaded
            for agent_tool in loaded:
                self._registry.replace(agent_tool)
        await trio.lowlevel.checkpoint()

    def _release(self, _event: BidiAfterInvocationEvent) -> None:
        for provider in self._providers:
            remove = getattr(provider, "remove_consumer", None)
            if callable(remove):
                try:
                    remove(self._consumer_id)
                except Exception:
                    logger.warning(
                        "provider=<%r> | remove_consumer failed", provider, exc_info=True
                    )


def _scan(directory: Path) -> dict[Path, int]:
    try:
        entries = list(os.scandir(directory))
    except FileNotFoundError:
        return {}
    return {
        Path(e.path): e.stat().st_mtime_ns
        for e in entries
        if e.name.endswith(".py") and not e.name.startswith("_") and e.is_file()
    }


class ToolDirectoryWatcher:
    """Keeps a registry in step with the ``*.py`` files of a directory.

    ``await watcher.run(registry, report_error)`` in the agent's nursery: every
    ``interval_s`` it lists the directory in a worker thread; a new or changed file is
    loaded (also in a worker thread) and its tools replace the ones it had; a removed
    file's tools are removed. A file that fails to load is reported once per change
    through ``report_error`` and its previous tools stay.

    Args:
        directory: The directory (Strands' default: ``./tools``).
        interval_s: Seconds between scans.
    """

    def __init__(
        self, directory: str | os.PathLike[str] = "tools", interval_s: float = 1.0
    ) -> None:
        if not interval_s > 0:
            raise BidiConfigurationError(f"interval_s must be > 0, got {interval_s}")
        self.directory = Path(directory).resolve()
        self.interval_s = interval_s
        self._seen: dict[Path, int] = {}
        self._names: dict[Path, list[str]] = {}

    def load_now(self, registry: ToolRegistry) -> list[ToolLoadError]:
        """Load every file synchronously (the agent's constructor); return the failures."""
        failures: list[ToolLoadError] = []
        for path, mtime in sorted(_scan(self.directory).items()):
            self._seen[path] = mtime
            try:
                self._install(registry, path, load_tools_from_file(path))
            except ToolLoadError as exc:
                failures.append(exc)
        return failures

    def _install(self, registry: ToolRegistry, path: Path, tools: list[AgentTool]) -> None:
        for old in self._names.get(path, []):
            if old not in {t.name for t in tools}:
                registry.remove(old)
        for agent_tool in tools:
            registry.replace(agent_tool)
        self._names[path] = [t.name for t in tools]

    async def run(self, registry: ToolRegistry, report_error: ReportError) -> None:
        """Watch until cancelled."""
        while True:
            await trio.sleep(self.interval_s)
            await self.scan_once(registry, report_error)

    async def scan_once(self, registry: ToolRegistry, report_error: ReportError) -> None:
        """Look at the directory once and apply what changed."""
        current = await trio.to_thread.run_sync(_scan, self.directory)
        for path in sorted(set(self._seen) - set(current)):
            del self._seen[path]
            for name in self._names.pop(path, []):
                registry.remove(name)
            logger.info("path=<%s> | tool file removed", path)
        for path, mtime in sorted(current.items()):
            if self._seen.get(path) == mtime:
                continue
            self._seen[path] = mtime
            try:
                tools = await trio.to_thread.run_sync(load_tools_from_file, path)
                self._install(registry, path, tools)
            except ToolLoadError as exc:
                logger.warning("path=<%s>, error=<%s> | tool file not loaded", path, exc)
                await report_error(exc, {"path": str(path)})
            else:
                logger.info("path=<%s>, tools=<%s> | tool file loaded", path, self._names[path])
