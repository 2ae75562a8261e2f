"""The documentation is complete and cannot go stale.

- The events page's table lists every event class (it is generated from
  ``trio_bidi/events.py`` by ``scripts/event_table.py``).
- The API reference documents every public name of every public module.
- Reference headings use public import paths; docstrings use Markdown cross references,
  not Sphinx roles (which mkdocstrings prints as literal text).
- The guides' Python examples run.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import pkgutil
import re
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import trio

import trio_bidi
from trio_bidi import events

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
DIRECTIVE = re.compile(r"^::: ([\w.]+)", re.MULTILINE)
SPHINX_ROLE = re.compile(r":(?:meth|class|func|attr|mod|exc|data|obj|ref):`")
# Pages whose directives this project's docs keep to public import paths.
PUBLIC_PATH_PAGES = [
    "reference/agent.md",
    "reference/events.md",
    "reference/io.md",
    "reference/models.md",
    "reference/types.md",
    "reference/errors.md",
    "io.md",
    "cli.md",
]
# Modules whose docstrings must use Markdown cross references.
NO_ROLES = ["trio_bidi"]  # the whole package: Markdown cross references only


def load_script(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# --------------------------------------------------------------------------- events table


def test_the_event_table_is_up_to_date() -> None:
    script = load_script("event_table")
    page = (DOCS / "reference" / "events.md").read_text(encoding="utf-8")
    assert script.page_with_table(page) == page, "run: python scripts/event_table.py"


def test_the_event_table_lists_every_event_class() -> None:
    page = (DOCS / "reference" / "events.md").read_text(encoding="utf-8")
    rows = {
        match.group(1): match.group(2)
        for match in re.finditer(r"^\| `(\w+)` \| \[`(\w+)`\]", page, re.MULTILINE)
    }
    # Found independently of the generator: every class in the module with a type string.
    classes = {
        value.type: value.__name__
        for value in vars(events).values()
        if inspect.isclass(value)
        and issubclass(value, events.BidiEvent)
        and isinstance(getattr(value, "type", None), str)
    }
    assert rows == classes
    assert len(rows) >= 16
    for type_string in ("bidi_usage", "tool_use_stream", "bidi_audio_stream"):
        assert type_string in rows


# --------------------------------------------------------------------------- API reference


def public_modules() -> list[ModuleType]:
    """trio_bidi and every submodule without a private segment in its name."""
    modules = [trio_bidi]
    for info in pkgutil.walk_packages(trio_bidi.__path__, "trio_bidi."):
        if any(part.startswith("_") for part in info.name.split(".")):
            continue
        modules.append(importlib.import_module(info.name))
    return modules


def public_names(module: ModuleType) -> dict[str, Any]:
    names = getattr(module, "__all__", None)
    if names is None:
        names = [n for n in vars(module) if not n.startswith("_")]
        return {
            n: getattr(module, n)
            for n in names
            if getattr(getattr(module, n), "__module__", None) == module.__name__
        }
    return {name: getattr(module, name) for name in names}


def resolve(path: str) -> Any:
    parts = path.split(".")
    for split in range(len(parts), 0, -1):
        try:
            target: Any = importlib.import_module(".".join(parts[:split]))
        except ImportError:
            continue
        for attribute in parts[split:]:
            target = getattr(target, attribute)
        return target
    raise ImportError(path)


def documented() -> tuple[list[int], dict[str, list[str]]]:
    """Ids of every object a ``:::`` directive documents, and the directives per page."""
    ids: list[int] = []
    pages: dict[str, list[str]] = {}
    for page in sorted(DOCS.rglob("*.md")):
        paths = DIRECTIVE.findall(page.read_text(encoding="utf-8"))
        pages[page.relative_to(DOCS).as_posix()] = paths
        for path in paths:
            target = resolve(path)
            ids.append(id(target))
            if inspect.ismodule(target):
                ids.extend(id(value) for value in public_names(target).values())
    return ids, pages


def test_every_public_name_is_in_the_api_reference() -> None:
    ids, _pages = documented()
    missing = sorted(
        f"{module.__name__}.{name}"
        for module in public_modules()
        for name, value in public_names(module).items()
        if not inspect.ismodule(value) and id(value) not in ids
    )
    assert not missing, "not in the API reference:\n" + "\n".join(missing)


def test_reference_headings_use_public_import_paths() -> None:
    _ids, pages = documented()
    private = [
        f"{page}: ::: {path}"
        for page in PUBLIC_PATH_PAGES
        for path in pages[page]
        if any(part.startswith("_") for part in path.split("."))
    ]
    assert not private


def test_docstrings_use_markdown_cross_references() -> None:
    found = []
    for entry in NO_ROLES:
        path = ROOT / entry
        assert path.exists(), f"NO_ROLES names a missing path: {entry}"
        for source in [path] if path.is_file() else sorted(path.rglob("*.py")):
            for number, line in enumerate(source.read_text(encoding="utf-8").splitlines(), 1):
                if SPHINX_ROLE.search(line):
                    found.append(f"{source.relative_to(ROOT)}:{number}: {line.strip()}")
    assert not found, "Sphinx roles render as literal text:\n" + "\n".join(found)


def test_site_url_is_set() -> None:
    config = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    assert re.search(r"^site_url: https://\S+/$", config, re.MULTILINE)


# --------------------------------------------------------------------------- examples


def python_blocks(page: str) -> list[str]:
    text = (DOCS / page).read_text(encoding="utf-8")
    return re.findall(r"^```python\n(.*?)^```$", text, re.MULTILINE | re.DOTALL)


async def test_the_getting_started_program_runs(tmp_path: Path) -> None:
    program = python_blocks("install.md")[0]
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert program in readme  # the same program as the README's, which test_readme runs
    path = tmp_path / "first.py"
    path.write_text(program, encoding="utf-8")
    with trio.fail_after(60):
        result = await trio.run_process(
            [sys.executable, str(path)],
            capture_stdout=True,
            capture_stderr=True,
            env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
            check=False,
        )
    assert result.returncode == 0, result.stderr.decode()
    assert "tool call: get_weather" in result.stdout.decode()


async def test_the_testing_guide_example_passes() -> None:
    (example,) = python_blocks("testing.md")
    namespace: dict[str, Any] = {}
    exec(compile(example, "testing.md", "exec"), namespace)
    await namespace["test_the_agent_calls_the_tool"]()


def test_the_testing_guide_says_trio_mode_is_needed() -> None:
    text = (DOCS / "testing.md").read_text(encoding="utf-8")
    assert "trio_mode = true" in text
    assert "pytest-trio" in text


@pytest.mark.parametrize("page", ["install.md", "io.md", "index.md"])
def test_no_page_installs_from_the_package_index(page: str) -> None:
    text = (DOCS / page).read_text(encoding="utf-8")
    assert "pip install 'trio-bidi" not in text  # not on the index yet: from a clone
