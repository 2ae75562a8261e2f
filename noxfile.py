"""Project tasks: ``nox -s tests lint typecheck docs`` (and ``demo``, ``bench`` as they land)."""

from __future__ import annotations

import nox

nox.options.default_venv_backend = "venv"
nox.options.sessions = ["tests", "lint", "typecheck", "docs"]
nox.options.error_on_missing_interpreters = True

PYPROJECT = nox.project.load_toml("pyproject.toml")


def install_groups(session: nox.Session, *groups: str) -> None:
    requirements: list[str] = []
    for group in groups:
        requirements.extend(nox.project.dependency_groups(PYPROJECT, group))
    session.install("--upgrade", "pip")
    session.install("-e", ".[audio]", *requirements)


@nox.session
def tests(session: nox.Session) -> None:
    """Run the test suite (pytest, hypothesis, loopback emulators, virtual audio device)."""
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
def docs(session: nox.Session) -> None:
    """Build the documentation with warnings as errors."""
    install_groups(session, "docs")
    session.env["NO_MKDOCS_2_WARNING"] = "1"
    session.run("mkdocs", "build", "--strict", "--site-dir", "site", *session.posargs)
