"""``trio-bidi chat``: a real conversation with a provider, by voice or by typing."""

from __future__ import annotations

import argparse
import contextlib
import os
from typing import IO, Any

import trio

from ..errors import BidiConfigurationError
from ..events import BidiOutputEvent, BidiResponseCompleteEvent, BidiTextInputEvent, ToolResultEvent
from ..io import BidiAudioIO, BidiTextIO
from ..io._base import AgentHandle
from ..models import BidiModel

__all__ = ["make_model", "run_chat"]

_KEYS = {"openai": ("OPENAI_API_KEY",), "gemini": ("GOOGLE_API_KEY", "GEMINI_API_KEY")}


def make_model(
    provider: str,
    *,
    model_id: str | None = None,
    voice: str | None = None,
    url: str | None = None,
    environ: dict[str, str] | None = None,
) -> BidiModel:
    """Build the provider's model, with its key from the environment.

    Args:
        provider: ``"openai"``, ``"gemini"`` or ``"nova"`` (Amazon Nova Sonic: AWS
            credentials and region come from the environment, resolved at connect).
        model_id: The model (default: the provider's default).
        voice: The assistant's voice.
        url: Another endpoint (an emulator, a proxy): a WebSocket URL for openai and
            gemini, ``https://host:port`` for nova.
        environ: The environment (default ``os.environ``).

    Raises:
        BidiConfigurationError: Unknown provider, or its key variable is not set (the
            message names the variable).
    """
    env = os.environ if environ is None else environ
    provider_config: dict[str, Any] = {"audio": {"voice": voice}} if voice else {}
    if provider == "nova":
        from ..models.nova_sonic import BidiNovaSonicModel

        return BidiNovaSonicModel(
            model_id or "amazon.nova-2-sonic-v1:0",
            provider_config,
            {"endpoint_url": url} if url else {},
        )
    if provider not in _KEYS:
        raise BidiConfigurationError(
            f"unknown provider {provider!r} (choose from {', '.join(sorted([*_KEYS, 'nova']))})"
        )
    names = _KEYS[provider]
    key = next((env[name] for name in names if env.get(name)), None)
    if key is None:
        raise BidiConfigurationError(
            f"set {' or '.join(names)} to talk with {provider} "
            "(or run `trio-bidi demo`, which needs no key)"
        )
    client: dict[str, Any] = {"api_key": key}
    if url:
        client["url"] = url
    kwargs: dict[str, Any] = {"provider_config": provider_config, "client_config": client}
    if model_id:
        kwargs["model_id"] = model_id
    if provider == "openai":
        from ..models.openai_realtime import BidiOpenAIRealtimeModel

        return BidiOpenAIRealtimeModel(**kwargs)
    from ..models.gemini_live import BidiGeminiLiveModel

    return BidiGeminiLiveModel(**kwargs)


class _InputEnded(Exception):
    """The text input ended and the last reply has come in."""


class _Turns:
    """Watches the conversation, so the end of typed input can wait for the last reply."""

    def __init__(self) -> None:
        self.sent = 0  # text inputs sent
        self.answered = 0  # text inputs sent before the last completed reply
        self._changed = trio.Event()

    async def __call__(self, event: BidiOutputEvent | ToolResultEvent) -> None:
        if isinstance(event, BidiResponseCompleteEvent) and event.stop_reason != "tool_use":
            self.answered = self.sent
            self._changed.set()
            self._changed = trio.Event()

    async def wait_answered(self) -> None:
        while self.answered < self.sent:
            await self._changed.wait()


class _TypedInput:
    """Typed lines; at the end of the input, waits for the reply, then ends the chat."""

    def __init__(self, text: BidiTextIO, turns: _Turns, reply_timeout_s: float) -> None:
        self._input = text.input()
        self._output = text.output()
        self._turns = turns
        self._reply_timeout_s = reply_timeout_s

    async def start(self, agent: AgentHandle) -> None:
        """Nothing to open: standard input is already there."""

    async def __call__(self) -> BidiTextInputEvent:
        while True:
            try:
                event = await self._input()
            except EOFError:
                with trio.move_on_after(self._reply_timeout_s):
                    await self._turns.wait_answered()
                raise _InputEnded from None
            except BidiConfigurationError as exc:  # an overlong line: say so, go on
                self._output.note(f"[not sent] {exc}")
                continue
            self._turns.sent += 1
            return event


class _Banner:
    """An output that only prints a line when the conversation starts."""

    def __init__(self, out: IO[str], text: str) -> None:
        self._out = out
        self._text = text

    async def start(self, agent: AgentHandle) -> None:
        self._out.write(self._text + "\n")
        self._out.flush()

    async def __call__(self, event: BidiOutputEvent | ToolResultEvent) -> None:
        """Nothing to do with events."""


def _tools(enabled: bool) -> list[Any]:
    if not enabled:
        return []
    from .. import tool
    from ._tools import calculate, current_time

    return [tool(calculate), tool(current_time)]


def run_chat(args: argparse.Namespace, out: IO[str]) -> int:
    """Run ``trio-bidi chat`` with parsed arguments; returns the exit status.

    Raises:
        BidiError: The model or the devices could not be set up (the caller prints it).
    """
    model = make_model(args.provider, model_id=args.model, voice=args.voice, url=args.url)
    from .. import BidiAgent

    agent = BidiAgent(model=model, tools=_tools(args.tool_demo), system_prompt=args.system)
    text = BidiTextIO(stdout=out)
    inputs: list[Any]
    outputs: list[Any] = [text.output()]
    if args.mode == "audio":
        audio = BidiAudioIO(
            input_device=_device(args.input_device),
            output_device=_device(args.output_device),
            echo_suppression=args.echo_suppression,
        )
        inputs = [audio.input()]
        outputs.insert(0, audio.output())
        how = "speak now, Ctrl-C ends"
    else:
        turns = _Turns()
        inputs = [_TypedInput(text, turns, reply_timeout_s=60.0)]
        outputs.append(turns)
        how = "type a line and press Enter, Ctrl-D ends"
    # Started last: printed once the connection and the devices are open.
    outputs.append(_Banner(out, f"Talking with {model.model_id} ({args.provider}); {how}."))
    with contextlib.suppress(_InputEnded):
        trio.run(agent.run, inputs, outputs)
    return 0


def _device(value: str | None) -> int | str | None:
    if value is None:
        return None
    return int(value) if value.isdigit() else value
