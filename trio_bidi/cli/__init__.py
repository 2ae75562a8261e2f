"""The ``trio-bidi`` command (also ``python -m trio_bidi``).

Subcommands:

- ``trio-bidi chat``: talk with a realtime model, by voice or by typing.
- ``trio-bidi devices``: list the audio devices.
- ``trio-bidi demo``: a whole scripted conversation against a local emulator, offline.
- ``trio-bidi serve``: the voice web page and its WebSocket gateway (the ``server`` extra).

``main(argv)`` runs the command and returns its exit status, so it can be called from
tests and other programs.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import logging
import os
import sys
from collections.abc import Sequence
from typing import IO

from ..errors import BidiError

__all__ = ["build_parser", "main"]

logger = logging.getLogger(__name__)

_PROVIDERS = {
    "openai": "OPENAI_API_KEY",
    "gemini": "GOOGLE_API_KEY (or GEMINI_API_KEY)",
    "nova": "AWS credentials (access keys, a profile, SSO...) and AWS_REGION",
}


def build_parser() -> argparse.ArgumentParser:
    """Return the command's argument parser (with ``--help`` on every subcommand)."""
    parser = argparse.ArgumentParser(
        prog="trio-bidi",
        description="Real-time, two-way conversations with speech-to-speech models, on Trio.",
    )
    parser.add_argument(
        "-v", "--verbose", action="count", default=0, help="log more (-v info, -vv debug)"
    )
    parser.add_argument(
        "--version", action="version", version=f"%(prog)s {_version()}", help="print the version"
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    chat = commands.add_parser(
        "chat",
        help="talk with a realtime model (voice or text)",
        description=(
            "Talk with a realtime model. The API key comes from the environment: "
            + "; ".join(f"{p}: {v}" for p, v in _PROVIDERS.items())
            + ". Ctrl-C or end of input (Ctrl-D, text mode) ends the conversation."
        ),
    )
    chat.add_argument(
        "--provider",
        choices=sorted(_PROVIDERS),
        default="openai",
        help="the realtime service: openai (OpenAI Realtime, the default), gemini (Gemini "
        "Live) or nova (Amazon Nova Sonic on Bedrock)",
    )
    chat.add_argument("--model", help="model id (default: the provider's default model)")
    chat.add_argument(
        "--voice",
        help="the assistant's voice: e.g. 'alloy' or 'marin' with openai, 'Puck' or 'Kore' "
        "with gemini, 'matthew' or 'tiffany' with nova (default: the provider's default voice)",
    )
    chat.add_argument("--system", help="system prompt (instructions for the model)")
    mode = chat.add_mutually_exclusive_group()
    mode.add_argument(
        "--text", dest="mode", action="store_const", const="text", help="type lines, read replies"
    )
    mode.add_argument(
        "--audio",
        dest="mode",
        action="store_const",
        const="audio",
        help="speak through the microphone and listen on the speaker (the default)",
    )
    chat.set_defaults(mode="audio")
    chat.add_argument(
        "--tool-demo",
        action="store_true",
        help="give the model two tools: current_time and calculate",
    )
    chat.add_argument("--input-device", help="microphone id or name (see `trio-bidi devices`)")
    chat.add_argument("--output-device", help="speaker id or name (see `trio-bidi devices`)")
    chat.add_argument(
        "--echo-suppression",
        action="store_true",
        help="mute the microphone while the assistant speaks (no headphones)",
    )
    chat.add_argument(
        "--url",
        help="the provider's endpoint, e.g. a local emulator or a proxy (a ws:// or wss:// "
        "URL for openai and gemini, https://host:port for nova)",
    )

    commands.add_parser(
        "devices",
        help="list audio devices",
        description="List the audio devices PortAudio sees, with ids, channels and rates.",
    )

    demo = commands.add_parser(
        "demo",
        help="an offline demo conversation against a local OpenAI emulator",
        description=(
            "Run a scripted conversation through the whole stack (BidiAgent, the OpenAI "
            "Realtime provider over a real loopback WebSocket) against the project's OpenAI "
            "emulator: a tool call, a barge-in with truncation and a connection restart. "
            "No network, no key, no sound card. Prints the transcript and writes the audio "
            "to a WAV file."
        ),
    )
    demo.add_argument(
        "--wav", help="where to write the conversation audio (default: a temporary file)"
    )
    demo.add_argument(
        "--speed",
        type=float,
        default=1.0,
        help="playback speed of the simulated speaker (2 = twice as fast; default 1)",
    )

    from ._serve import add_serve_parser

    add_serve_parser(commands)
    return parser


def main(
    argv: Sequence[str] | None = None,
    *,
    stdout: IO[str] | None = None,
    stderr: IO[str] | None = None,
) -> int:
    """Run the command.

    Args:
        argv: The arguments (default: ``sys.argv[1:]``).
        stdout: Where output goes (default: ``sys.stdout``).
        stderr: Where errors go (default: ``sys.stderr``).

    Returns:
        The exit status: 0 on success, 1 on an error, 2 on bad usage, 130 on Ctrl-C.
    """
    out = stdout if stdout is not None else sys.stdout
    err = stderr if stderr is not None else sys.stderr
    args = build_parser().parse_args(argv)
    if args.verbose:
        logging.basicConfig(
            level=logging.DEBUG if args.verbose > 1 else logging.INFO,
            format="%(asctime)s %(levelname)s %(name)s: %(message)s",
            stream=err,
        )
    try:
        return _run(args, out)
    except BaseException as exc:
        leaves = _leaves(exc)
        if all(isinstance(e, KeyboardInterrupt) for e in leaves):
            err.write("trio-bidi: interrupted\n")
            return 130
        if all(isinstance(e, BrokenPipeError) for e in leaves):
            # The reader went away (`trio-bidi demo | head`): stop quietly.
            if stdout is None:
                devnull = os.open(os.devnull, os.O_WRONLY)
                os.dup2(devnull, sys.stdout.fileno())
            return 1
        if all(isinstance(e, BidiError | OSError | KeyboardInterrupt) for e in leaves):
            # One line per error, no traceback (-vv logs the details).
            for error in leaves:
                if isinstance(error, BidiError | OSError):
                    logger.debug("error=<%r> | the command failed", error, exc_info=error)
                    err.write(f"trio-bidi: error: {_one_line(error)}\n")
            return 1
        raise


def _run(args: argparse.Namespace, out: IO[str]) -> int:
    if args.command == "devices":
        from ._devices import list_devices

        list_devices(out)
        return 0
    if args.command == "chat":
        from ._chat import run_chat

        return run_chat(args, out)
    if args.command == "serve":
        from ._serve import run_serve

        return run_serve(args, out)
    from ._demo import run_demo

    return run_demo(args, out)


def _version() -> str:
    try:
        return importlib.metadata.version("trio-bidi")
    except importlib.metadata.PackageNotFoundError:  # run from a source tree
        from .. import __version__

        return __version__


def _one_line(error: BaseException) -> str:
    text = " ".join(str(error).split())
    return text or type(error).__name__


def _leaves(exc: BaseException) -> list[BaseException]:
    """The exceptions in ``exc``, looking inside exception groups."""
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for inner in exc.exceptions for leaf in _leaves(inner)]
    return [exc]
