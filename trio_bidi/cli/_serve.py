"""``trio-bidi serve``: the browser gateway and its web page, on Hypercorn's Trio worker.

``trio-bidi serve --emulator`` serves the page offline against the built-in OpenAI
emulator; ``trio-bidi serve --provider openai`` talks with the real service (its key from
the environment, as ``trio-bidi chat``). Tokens for the auth hook come from the
environment (``TRIO_BIDI_TOKENS``, comma-separated), never from the command line.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from collections.abc import Sequence
from functools import partial
from typing import IO, Any

__all__ = ["add_serve_parser", "run_serve", "serve_settings"]

_TOKENS_VARIABLE = "TRIO_BIDI_TOKENS"


def add_serve_parser(subparsers: Any) -> None:
    """Add the ``serve`` subcommand to the ``trio-bidi`` parser's subparsers."""
    serve = subparsers.add_parser(
        "serve",
        help="serve the voice web page and its WebSocket gateway",
        description=(
            "Serve a web page to talk with a realtime model from a browser, and the "
            "WebSocket gateway behind it (one agent per browser connection). By default "
            "it listens on 127.0.0.1 only: use --host 0.0.0.0 to accept other machines "
            "(then use TLS and tokens). Tokens: set "
            f"{_TOKENS_VARIABLE}=token1,token2 and open the page as /#token=token1."
        ),
    )
    serve.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)"
    )
    serve.add_argument(
        "--port", type=int, default=8000, help="port (default 8000; 0: any free port)"
    )
    serve.add_argument(
        "--workers", type=int, default=1, help="worker processes sharing the port (default 1)"
    )
    serve.add_argument("--certfile", help="TLS certificate (PEM): serve https and wss")
    serve.add_argument("--keyfile", help="TLS private key (PEM)")
    source = serve.add_mutually_exclusive_group()
    source.add_argument(
        "--emulator",
        action="store_true",
        help="talk with the built-in OpenAI emulator (offline, no key)",
    )
    source.add_argument(
        "--provider",
        choices=["gemini", "nova", "openai"],
        default="openai",
        help="the model provider; its key comes from the environment, as for chat",
    )
    serve.add_argument("--model", help="model id (default: the provider's default model)")
    serve.add_argument("--voice", help="the assistant's voice")
    serve.add_argument("--system", help="system prompt (instructions for the model)")
    serve.add_argument(
        "--url", help="the provider's WebSocket endpoint (e.g. a local emulator or a proxy)"
    )
    serve.add_argument(
        "--no-tools",
        action="store_true",
        help="do not give the model the demo tools (current_time, calculate)",
    )
    serve.add_argument(
        "--session-dir",
        help=(
            "keep conversations in this directory, so a page that reconnects (to any worker) "
            "continues its conversation"
        ),
    )
    serve.add_argument(
        "--allow-origin",
        action="append",
        dest="allowed_origins",
        metavar="ORIGIN",
        help="another origin allowed to open the WebSocket (repeatable; default: the page's own)",
    )
    serve.add_argument(
        "--max-sessions", type=int, default=100, help="conversations at once per worker (100)"
    )


def serve_settings(args: argparse.Namespace, environ: dict[str, str] | None = None) -> Any:
    """Build the [`ServeSettings`][trio_bidi.server.ServeSettings] for parsed arguments.

    Raises:
        BidiConfigurationError: A bad combination (a worker count below 1, TLS half given).
    """
    from ..errors import BidiConfigurationError

    try:
        from ..server import ServeSettings
    except ImportError as exc:
        raise BidiConfigurationError(
            f"trio-bidi serve needs the server extra: pip install 'trio-bidi[server]' ({exc})"
        ) from exc

    env = os.environ if environ is None else environ
    if args.workers < 1:
        raise BidiConfigurationError(f"--workers must be at least 1, got {args.workers}")
    if bool(args.certfile) != bool(args.keyfile):
        raise BidiConfigurationError("TLS needs both --certfile and --keyfile")
    tokens = tuple(t.strip() for t in env.get(_TOKENS_VARIABLE, "").split(",") if t.strip())
    return ServeSettings(
        host=args.host,
        port=args.port,
        workers=args.workers,
        certfile=args.certfile,
        keyfile=args.keyfile,
        emulator=args.emulator,
        provider=args.provider,
        model=args.model,
        voice=args.voice,
        url=args.url,
        system_prompt=args.system,
        tools=not args.no_tools,
        session_dir=args.session_dir,
        tokens=tokens,
        allowed_origins=args.allowed_origins,
        max_sessions=args.max_sessions,
    )


def _banner(settings: Any) -> str:
    what = "the built-in OpenAI emulator (offline)" if settings.emulator else settings.provider
    lines = [f"trio-bidi serve: talking with {what}"]
    if settings.host in ("127.0.0.1", "localhost", "::1"):
        lines.append(
            f"Listening on {settings.host} only: other machines cannot connect "
            "(--host 0.0.0.0 to listen on every interface)."
        )
    elif not settings.certfile:
        lines.append(
            f"Listening on {settings.host} without TLS: browsers give the microphone only to "
            "https pages (or localhost); use --certfile/--keyfile."
        )
    if settings.tokens:
        lines.append(f"{len(settings.tokens)} token(s) accepted; open the page as /#token=<token>.")
    elif settings.host not in ("127.0.0.1", "localhost", "::1"):
        lines.append(f"No tokens: anyone who reaches the port can talk (set {_TOKENS_VARIABLE}).")
    if settings.session_dir:
        lines.append(f"Conversations are kept in {settings.session_dir}.")
    return "\n".join(lines) + "\n"


def run_serve(args: argparse.Namespace, out: IO[str]) -> int:
    """Run ``trio-bidi serve`` with parsed arguments until Ctrl-C; return the exit status.

    Raises:
        BidiError: The configuration is not usable (the caller prints it).
    """
    settings = serve_settings(args)  # (says so when the server extra is missing)
    from ..server import build_app, hypercorn_config, run_workers, serve

    out.write(_banner(settings))
    out.flush()
    if settings.workers > 1:
        return run_workers(settings, out)

    import trio

    app = build_app(settings)
    config = hypercorn_config(settings)

    async def stop_on_signal() -> None:
        with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async for signum in signals:
                out.write(f"{signal.Signals(signum).name}: stopping\n")
                out.flush()
                return

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            binds = await nursery.start(
                partial(serve, app, config, shutdown_trigger=stop_on_signal)
            )
            for url in binds:
                out.write(f"Serving on {url}/\n")
            out.flush()

    trio.run(main)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m trio_bidi.cli._serve``: the serve command on its own."""
    from ..errors import BidiError

    parser = argparse.ArgumentParser(prog="trio-bidi")
    add_serve_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["serve", *(sys.argv[1:] if argv is None else argv)])
    try:
        return run_serve(args, sys.stdout)
    except KeyboardInterrupt:
        sys.stderr.write("trio-bidi: interrupted\n")
        return 130
    except BidiError as exc:
        sys.stderr.write(f"trio-bidi: error: {exc}\n")
        return 1


if __name__ == "__main__":
    sys.exit(main())
