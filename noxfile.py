"""Project tasks: ``nox -s tests lint typecheck docs`` (and ``demo``, ``bench`` as they land)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import nox

nox.options.default_venv_backend = "venv"
nox.options.sessions = ["tests", "lint", "typecheck", "docs"]
nox.options.error_on_missing_interpreters = True

PYPROJECT = nox.project.load_toml("pyproject.toml")


def all_extras() -> list[str]:
    """Every optional-dependency extra pyproject.toml declares (read at run time)."""
    return sorted(PYPROJECT["project"].get("optional-dependencies", {}))


def install_groups(session: nox.Session, *groups: str) -> None:
    """Install the package (editable, with every extra) and the dependency groups."""
    requirements: list[str] = []
    for group in groups:
        requirements.extend(nox.project.dependency_groups(PYPROJECT, group))
    extras = ",".join(all_extras())
    session.install("--upgrade", "pip")
    session.install("-e", f".[{extras}]" if extras else ".", *requirements)


@nox.session
def tests(session: nox.Session) -> None:
    """Run the test suite (pytest, hypothesis, loopback emulators, virtual audio device).

    The package is installed with every extra in pyproject.toml, so a suite that needs a
    new extra's dependencies gets them without a change here.
    """
    install_groups(session, "test")
    session.run("pytest", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    """Check style and formatting with ruff."""
    session.install("--upgrade", "pip")
    session.install(*nox.project.dependency_groups(PYPROJECT, "lint"))
    session.run("ruff", "check", "trio_bidi", "tests", "noxfile.py", *session.posargs)
    session.run("ruff", "format", "--check", "trio_bidi", "tests", "noxfile.py")


@nox.session
def typecheck(session: nox.Session) -> None:
    """Type-check the package with mypy --strict."""
    install_groups(session, "typecheck")
    session.run("mypy", "--strict", "trio_bidi", *session.posargs)


@nox.session
def demo(session: nox.Session) -> None:
    """Run ``trio-bidi demo``: a whole conversation against a local emulator, offline."""
    session.install("--upgrade", "pip")
    session.install(".")
    session.run("trio-bidi", "demo", *session.posargs)


@nox.session
def docs(session: nox.Session) -> None:
    """Build the documentation with warnings as errors."""
    install_groups(session, "docs")
    session.env["NO_MKDOCS_2_WARNING"] = "1"
    session.run("mkdocs", "build", "--strict", "--site-dir", "site", *session.posargs)


def python_312() -> str:
    """Python 3.12 for the official AWS client: pyenv's newest 3.12, else one on PATH.

    pyenv's shims are on PATH even for versions that are not selected (and then fail), so
    a candidate counts only when it runs.
    """
    root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
    found = sorted(
        root.glob("versions/3.12*/bin/python3.12"),
        key=lambda p: [int(x) if x.isdigit() else 0 for x in p.parts[-3].split(".")],
    )
    on_path = shutil.which("python3.12")
    for candidate in [*reversed(found), *([on_path] if on_path else [])]:
        check = subprocess.run([str(candidate), "-c", "pass"], capture_output=True, check=False)
        if check.returncode == 0:
            return str(candidate)
    return "3.12"


AWS_CLIENT = "aws_sdk_bedrock_runtime[awscrt]==0.12.0"


@nox.session(python=python_312())
def nova_official(session: nox.Session) -> None:
    """The official AWS client (Python 3.12, CRT transport) against the Nova Sonic emulator."""
    session.install("--upgrade", "pip")
    session.install(
        "-e",
        ".[nova-emulator]",
        AWS_CLIENT,
        "pytest>=8.3",
        "pytest-trio>=0.8",
        "jsonschema>=4.20",
    )
    session.run(
        "pytest",
        "--noconftest",
        "-p",
        "no:cacheprovider",
        "tests/nova_official/official_client_check.py",
        *session.posargs,
    )


STRANDS_VERSION = "1.40.0"


@nox.session
def bench(session: nox.Session) -> None:
    """Benchmark trio_bidi against Strands side by side (args go to bench/run.py).

    Strands gets its own environments next to this one, created (or reused) here: one on
    this Python, and one on Python 3.12 for its Nova Sonic model (its AWS SDK needs 3.12).
    """
    session.install("--upgrade", "pip")
    # trio-websocket: the transport decision's comparison row (bench/transport.py).
    session.install(".[nova,server]", "trustme>=1.1", "trio-websocket==0.12.2")
    location = Path(session.virtualenv.location).parent
    strands_python = _strands_env(
        session,
        location / f"bench-strands-{STRANDS_VERSION}",
        "python",
        f"strands-agents[bidi-openai,bidi-gemini]=={STRANDS_VERSION}",
    )
    nova_python = _strands_env(
        session,
        location / f"bench-strands-nova-{STRANDS_VERSION}",
        python_312(),
        f"strands-agents=={STRANDS_VERSION}",
        "aws_sdk_bedrock_runtime==0.7.0",
    )
    session.run(
        "python",
        "bench/run.py",
        "--strands-python",
        str(strands_python),
        "--strands-nova-python",
        str(nova_python),
        *session.posargs,
    )
    # The browser gateway under load: real-time clients against two workers, one killed
    # half way (loopback only; bounded in clients and time).
    session.run(
        "python",
        "bench/gateway_load.py",
        "--clients",
        "20",
        "--seconds",
        "20",
        "--json",
        "bench/results/gateway_load.json",
    )


def _strands_env(session: nox.Session, env: Path, python: str, *packages: str) -> Path:
    """Create (or reuse) a virtual environment with ``packages``; return its Python."""
    env_python = env / "bin" / "python"
    if not env_python.exists():
        session.run(python, "-m", "venv", str(env), external=True)
    session.run(str(env_python), "-m", "pip", "install", "--quiet", *packages, external=True)
    return env_python
