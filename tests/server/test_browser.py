"""The page in real headless Chromium, against ``trio-bidi serve --emulator``'s application.

The server runs in the test's Trio run (Hypercorn's Trio worker on 127.0.0.1, port 0) with
the built-in OpenAI emulator; Chromium runs in a worker thread through chromedriver, with a
fake microphone that plays a sentence spoken by espeak-ng in a loop.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import trio

from trio_bidi.server import ServeSettings, build_app

from ._browser import page_state, spoken_wav, start_chromium, wait_for
from ._helpers import running


async def test_the_page_talks_listens_and_stops_for_a_barge_in(tmp_path: Path) -> None:
    wav = spoken_wav(tmp_path, "Hello there, what is the weather like in Paris today")
    settings = ServeSettings(port=0, emulator=True, emulator_reply_ms=4000, tokens=("tok-1",))
    app = build_app(settings)
    screenshot = tmp_path / "serving-page.png"

    def drive(base: str) -> dict[str, Any]:
        driver = start_chromium(tmp_path / "profile", wav)
        try:
            driver.get(base + "/#token=tok-1")
            wait_for(driver, "window.trioBidi && trioBidi.connection === 'connected'")
            driver.find_element("id", "talk").click()
            # The spoken question reaches the model (the emulator's voice activity
            # detection makes a user turn of it) and the reply plays in the page.
            wait_for(driver, "trioBidi.transcripts.some(t => t.role === 'assistant')", 30)
            wait_for(driver, "trioBidi.playedMs > 300", 15)
            # The sentence comes round again over the 4 s reply: a barge-in.
            wait_for(driver, "trioBidi.playbackReports.some(r => r.playedMs > 0)", 30)
            driver.find_element("id", "talk").click()  # stop talking
            driver.find_element("id", "text").send_keys("What time is it?")
            driver.find_element("id", "send").click()
            wait_for(driver, "trioBidi.toolResults.length >= 1", 20)
            wait_for(
                driver,
                "trioBidi.transcripts.some(t => t.text.startsWith('The result is'))",
                20,
            )
            # The service ends the model connection (its time limit): the agent
            # reconnects and the page says so; the conversation goes on.
            trio.from_thread.run(emulator.expire)
            wait_for(driver, "trioBidi.modelRestarts >= 1", 20)
            driver.save_screenshot(str(screenshot))
            return page_state(driver)
        finally:
            driver.quit()

    async with running(app, settings) as base:
        emulator = app.state.emulator["emulator"]
        state = await trio.to_thread.run_sync(drive, base)
        truncations = emulator.messages_of("conversation.item.truncate")

    assert state["connections"] == 1
    assert state["audioChunksSent"] > 50, "the microphone streamed to the server"
    assert emulator.messages_of("input_audio_buffer.append"), "the speech reached the model"
    user_turns = [t for t in state["transcripts"] if t["role"] == "user"]
    assert user_turns[0]["text"].startswith("(spoken input"), user_turns
    assert state["audioChunksReceived"] > 0
    assert state["latenciesMs"], "a turn latency was measured"
    report = next(r for r in state["playbackReports"] if r["playedMs"] > 0)
    assert report["playedMs"] < 4000, report
    assert report["clearedMs"] > 0, "queued audio was thrown away at the barge-in"
    truncated = [t["audio_end_ms"] for t in truncations]
    assert report["playedMs"] in truncated, "the playback report reached the model"
    assert state["toolCalls"][0]["name"] == "current_time"
    assert state["errors"] == []
    assert screenshot.stat().st_size > 10_000
    keep = os.environ.get("TRIO_BIDI_SCREENSHOT_DIR")
    if keep:
        shutil.copy(screenshot, Path(keep) / screenshot.name)


async def test_a_reload_continues_the_conversation(tmp_path: Path) -> None:
    settings = ServeSettings(port=0, emulator=True, session_dir=str(tmp_path / "sessions"))
    app = build_app(settings)

    def drive(base: str) -> tuple[dict[str, Any], dict[str, Any]]:
        driver = start_chromium(tmp_path / "profile")
        try:
            driver.get(base + "/")
            wait_for(driver, "window.trioBidi && trioBidi.connection === 'connected'")
            driver.find_element("id", "text").send_keys("Please remember the word pineapple.")
            driver.find_element("id", "send").click()
            wait_for(driver, "trioBidi.transcripts.some(t => t.role === 'assistant')")
            before = page_state(driver)
            driver.refresh()  # the URL now carries ?session=<id>
            wait_for(driver, "window.trioBidi && trioBidi.connection === 'connected'")
            driver.find_element("id", "text").send_keys("Which word was it?")
            driver.find_element("id", "send").click()
            wait_for(driver, "trioBidi.transcripts.some(t => t.role === 'assistant')")
            return before, page_state(driver)
        finally:
            driver.quit()

    async with running(app, settings) as base:
        emulator = app.state.emulator["emulator"]
        before, after = await trio.to_thread.run_sync(drive, base)
        sessions = list(emulator.sessions)

    assert after["sessionId"] == before["sessionId"]
    assert after["restoredMessages"] >= 2
    assert any("pineapple" in m["text"] for m in after["history"])
    # The new model connection was given the conversation so far.
    replayed = [m for m in sessions[-1].messages if m["type"] == "conversation.item.create"]
    texts = [c.get("text", "") for m in replayed for c in m["item"].get("content", ())]
    assert any("pineapple" in t for t in texts), texts


async def test_base64_audio_both_ways(tmp_path: Path) -> None:
    wav = spoken_wav(tmp_path, "Good morning, how are you doing today")
    settings = ServeSettings(port=0, emulator=True, emulator_reply_ms=1000)
    app = build_app(settings)

    def drive(base: str) -> dict[str, Any]:
        driver = start_chromium(tmp_path / "profile", wav)
        try:
            driver.get(base + "/?audio=base64")
            wait_for(driver, "window.trioBidi && trioBidi.connection === 'connected'")
            driver.find_element("id", "talk").click()
            wait_for(driver, "trioBidi.transcripts.some(t => t.role === 'assistant')", 30)
            wait_for(driver, "trioBidi.playedMs > 300", 15)
            return page_state(driver)
        finally:
            driver.quit()

    async with running(app, settings) as base:
        emulator = app.state.emulator["emulator"]
        state = await trio.to_thread.run_sync(drive, base)
        appended = emulator.messages_of("input_audio_buffer.append")

    assert state["audioJsonReceived"] == state["audioChunksReceived"] > 0
    assert len(appended) >= state["audioChunksSent"] // 2 > 0
    assert state["errors"] == []
