"""Project tasks: ``nox -s tests lint typecheck docs`` (and ``demo``, ``bench`` as they land)."""

from __future__ import annotations

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


STRANDS_VERSION = "1.40.0"


@nox.session
def bench(session: nox.Session) -> None:
    """Benchmark trio_bidi against Strands side by side (args go to bench/run.py)."""
    session.install("--upgrade", "pip")
    session.install(".")
    # Strands gets its own environment next to this one, created (or reused) here.
    strands_env = Path(session.virtualenv.location).parent / f"bench-strands-{STRANDS_VERSION}"
    strands_python = strands_env / "bin" / "python"
    if not strands_python.exists():
        session.run("python", "-m", "venv", str(strands_env))
    session.run(
        str(strands_python),
        "-m",
        "pip",
        "install",
        "--quiet",
        f"strands-agents[bidi-openai,bidi-gemini]=={STRANDS_VERSION}",
        external=True,
    )
    session.run("python", "bench/run.py", "--strands-python", str(strands_python), *session.posargs)
