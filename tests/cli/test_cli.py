"""The ``trio-bidi`` command: help, errors, and ``chat --text`` against the emulator."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import trio

import trio_bidi
from tests.fixtures.gemini import assert_no_violations as assert_no_gemini_violations
from tests.fixtures.gemini import validated_gemini_emulator
from tests.fixtures.nova import assert_no_nova_violations, validated_nova_emulator
from tests.fixtures.openai import assert_no_openai_violations, validated_openai_emulator
from trio_bidi.cli import main
from trio_bidi.cli._devices import format_devices
from trio_bidi.cli._tools import calculate, current_time, evaluate
from trio_bidi.testing import FunctionCallReply

SCRIPT = Path(sys.executable).parent / "trio-bidi"


@pytest.mark.parametrize("command", [[], ["chat"], ["devices"], ["demo"]])
def test_help_everywhere(command: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main([*command, "--help"])
    assert exit_info.value.code == 0
    shown = capsys.readouterr().out
    assert shown.startswith("usage: trio-bidi")
    if command == ["chat"]:
        assert "OPENAI_API_KEY" in shown
        assert "--tool-demo" in shown


def test_a_command_is_required(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main([])
    assert exit_info.value.code == 2
    assert "required: COMMAND" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("provider", "variables"),
    [("openai", "OPENAI_API_KEY"), ("gemini", "GOOGLE_API_KEY or GEMINI_API_KEY")],
)
def test_chat_without_a_key_names_the_variable(
    provider: str, variables: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("OPENAI_API_KEY", "GOOGLE_API_KEY", "GEMINI_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    out, err = io.StringIO(), io.StringIO()
    assert main(["chat", "--provider", provider, "--text"], stdout=out, stderr=err) == 1
    assert err.getvalue().count("\n") == 1
    assert err.getvalue().startswith(f"trio-bidi: error: set {variables} to talk with {provider}")
    assert out.getvalue() == ""


def test_demo_rejects_a_bad_speed() -> None:
    err = io.StringIO()
    assert main(["demo", "--speed", "0"], stdout=io.StringIO(), stderr=err) == 1
    assert "--speed must be a positive number" in err.getvalue()


def test_console_script_is_installed() -> None:
    if not SCRIPT.exists():
        reason = f"{SCRIPT} is not installed (pip install -e . makes it)"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)  # the nox session installs it: missing is a packaging bug
        pytest.skip(reason)
    result = subprocess.run(
        [str(SCRIPT), "--help"], capture_output=True, text=True, timeout=60, check=True
    )
    assert "chat" in result.stdout
    assert "devices" in result.stdout
    assert "demo" in result.stdout


async def test_chat_text_against_the_emulator() -> None:
    """A typed chat over a real socket, with a tool; end of input waits for the reply."""
    async with validated_openai_emulator() as emulator:
        emulator.queue(FunctionCallReply("calculate", {"expression": "6 * 7"}))
        env = {**os.environ, "OPENAI_API_KEY": str(emulator.api_key)}
        result = await trio.run_process(
            [
                *(sys.executable, "-m", "trio_bidi", "chat", "--text", "--tool-demo"),
                *("--url", emulator.url, "--system", "Be brief."),
            ],
            stdin=b"x" * 70000 + b"\nWhat is six times seven?\n",
            capture_stdout=True,
            capture_stderr=True,
            env=env,
            check=False,
        )
        messages = emulator.client_messages
    assert_no_openai_violations(emulator)
    stdout = result.stdout.decode()
    assert result.returncode == 0, result.stderr.decode()
    assert stdout.startswith("Talking with gpt-realtime (openai); type a line")
    # The overlong line is refused with a note; the chat goes on.
    assert "[not sent] 1 input line(s) longer than max_line_chars=65536 refused" in stdout
    assert '[tool call] calculate({"expression": "6 * 7"})' in stdout
    assert "[tool result] calculate success: 6 * 7 = 42" in stdout
    assert "Assistant: The result is 6 * 7 = 42." in stdout
    # The typed line went to the model as a user message, with the tools and the prompt.
    session = next(m for m in messages if m["type"] == "session.update")["session"]
    assert session["instructions"] == "Be brief."
    assert {t["name"] for t in session["tools"]} == {"calculate", "current_time"}
    typed = [
        part["text"]
        for m in messages
        if m["type"] == "conversation.item.create" and m["item"].get("role") == "user"
        for part in m["item"]["content"]
    ]
    assert typed == ["What is six times seven?"]


def test_demo_tools() -> None:
    assert evaluate("(2 + 3) ** 2 - 7 // 2 % 2") == 24
    assert evaluate("-1.5 * 4") == -6.0
    assert calculate(" 1234 * 5678 ") == "1234 * 5678 = 7006652"
    bad_ones = ("__import__('os')", "2 ** 99999", "1 / 0", "True + 1", "x" * 201, "1 +")
    for bad in (*bad_ones, "((10 ** 1000) ** 1000) ** 1000", "1e300 ** 900", "(-8) ** 0.5"):
        with pytest.raises(ValueError, match=r"\w"):
            evaluate(bad)
    assert current_time("UTC").endswith("(UTC)")
    with pytest.raises(ValueError, match="unknown time zone"):
        current_time("Nowhere/Atlantis")


async def test_chat_ends_cleanly_on_ctrl_c() -> None:
    async with validated_openai_emulator() as emulator:
        env = {**os.environ, "OPENAI_API_KEY": str(emulator.api_key)}
        command = [sys.executable, "-m", "trio_bidi", "chat", "--text", "--url", emulator.url]
        process = await trio.lowlevel.open_process(
            command,
            stdin=subprocess.PIPE,  # kept open: the chat waits for typed lines
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
        )
        try:
            with trio.fail_after(20):
                await emulator.wait_for_client_message("session.update")
                process.send_signal(signal.SIGINT)
                returncode = await process.wait()
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
        assert process.stderr is not None
        stderr = b""
        while chunk := await process.stderr.receive_some():
            stderr += chunk
        await trio.sleep(0.2)
        closed = emulator.sessions[0].closed.is_set()
    assert returncode == 130, stderr.decode()
    assert stderr.decode() == "trio-bidi: interrupted\n"
    assert closed  # the WebSocket was closed on the way out


async def test_chat_text_with_gemini_against_its_emulator() -> None:
    async with validated_gemini_emulator() as emulator:
        env = {k: v for k, v in os.environ.items() if k not in ("GOOGLE_API_KEY",)}
        env["GEMINI_API_KEY"] = emulator.api_key
        result = await trio.run_process(
            [
                *(sys.executable, "-m", "trio_bidi", "chat", "--provider", "gemini", "--text"),
                *("--voice", "Puck", "--url", emulator.url),
            ],
            stdin=b"Hello there\n",
            capture_stdout=True,
            capture_stderr=True,
            env=env,
            check=False,
        )
        messages = emulator.client_messages
    assert_no_gemini_violations(emulator)
    assert result.returncode == 0, result.stderr.decode()
    stdout = result.stdout.decode()
    assert "Assistant: You said Hello there" in stdout
    setup = next(m["setup"] for m in messages if "setup" in m)
    voice = setup["generationConfig"]["speechConfig"]["voiceConfig"]
    assert voice == {"prebuiltVoiceConfig": {"voiceName": "Puck"}}


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out == f"trio-bidi {trio_bidi.__version__}\n"


def test_chat_help_explains_provider_and_voice(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["chat", "--help"])
    shown = " ".join(capsys.readouterr().out.split())
    provider = shown[shown.index("--provider {gemini,nova,openai} ") :]
    assert provider.startswith("--provider {gemini,nova,openai} the realtime service: openai")
    voice = shown[shown.index("--voice VOICE ") :]
    assert "'alloy' or 'marin' with openai, 'Puck' or 'Kore' with gemini, 'matthew'" in voice


@pytest.mark.parametrize("path", ["/nonexistent/x.wav", "/"])
def test_demo_with_an_unwritable_wav_fails_in_one_line(path: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "trio_bidi", "demo", "--wav", path],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=_source_env(),
    )
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith(f"trio-bidi: error: cannot write the WAV file {path}: ")


def test_devices_without_devices_says_what_to_install() -> None:
    shown = format_devices([], [], -1, -1)
    assert shown.startswith("No audio devices found")
    assert "apt-get install pulseaudio libasound2-plugins" in shown
    assert "scripts/" not in shown  # exists only in a clone of the project
    assert "trio-bidi chat --text" in shown


def test_devices_table() -> None:
    devices = [
        {"name": "mic", "hostapi": 0, "max_input_channels": 1, "max_output_channels": 0,
         "default_samplerate": 48000.0},
        {"name": "speaker", "hostapi": 0, "max_input_channels": 0, "max_output_channels": 2,
         "default_samplerate": 44100.0},
    ]  # fmt: skip
    shown = format_devices(devices, [{"name": "ALSA"}], 0, 1).splitlines()
    assert shown[0].split() == ["id", "name", "in", "out", "rate", "api", "default"]
    assert shown[1].split() == ["0", "mic", "1", "0", "48000", "ALSA", "input"]
    assert shown[2].split() == ["1", "speaker", "0", "2", "44100", "ALSA", "output"]


def _source_env() -> dict[str, str]:
    root = str(Path(__file__).resolve().parents[2])
    return {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")])),
    }


async def test_chat_text_with_nova_against_its_emulator() -> None:
    """``--provider nova``: AWS credentials from the environment, the emulator's CA trusted."""
    async with validated_nova_emulator() as emulator:
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update(
            AWS_ACCESS_KEY_ID=emulator.access_key,
            AWS_SECRET_ACCESS_KEY=emulator.secret_key,
            AWS_REGION="us-east-1",
            SSL_CERT_FILE=emulator.ca_cert_pem_path,
        )
        result = await trio.run_process(
            [
                *(sys.executable, "-m", "trio_bidi", "chat", "--provider", "nova", "--text"),
                *("--voice", "tiffany", "--url", emulator.endpoint_url),
            ],
            stdin=b"Hello there\n",
            capture_stdout=True,
            capture_stderr=True,
            env=env,
            check=False,
        )
        events = emulator.messages_of("promptStart")
    assert_no_nova_violations(emulator)
    assert result.returncode == 0, result.stderr.decode()
    stdout = result.stdout.decode()
    assert stdout.startswith("Talking with amazon.nova-2-sonic-v1:0 (nova)")
    assert "Assistant:" in stdout
    assert "Hello there" in stdout.split("Assistant:", 1)[1]
    voice = events[0]["audioOutputConfiguration"]["voiceId"]
    assert voice == "tiffany"


async def test_chat_with_nova_without_credentials_says_how_in_one_line() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        AWS_CONFIG_FILE="/nonexistent/config",
        AWS_SHARED_CREDENTIALS_FILE="/nonexistent/credentials",
        AWS_EC2_METADATA_DISABLED="true",
    )
    result = await trio.run_process(
        [sys.executable, "-m", "trio_bidi", "chat", "--provider", "nova", "--text"],
        stdin=b"Hello\n",
        capture_stdout=True,
        capture_stderr=True,
        env=env,
        check=False,
    )
    stderr = result.stderr.decode()
    assert result.returncode == 1, stderr
    assert len(stderr.strip().splitlines()) == 1, stderr
    assert "credentials" in stderr
