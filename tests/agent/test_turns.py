"""TurnTracker (sans-IO): when is the conversation at a turn boundary?"""

from __future__ import annotations

import math

from tests.agent._helpers import transcript
from trio_bidi import (
    BidiInterruptionEvent,
    BidiResponseCompleteEvent,
    BidiResponseStartEvent,
)
from trio_bidi.agent._turns import TurnTracker


def test_idle_conversation_is_at_a_boundary() -> None:
    assert TurnTracker().boundary_at() == -math.inf


def test_no_boundary_while_the_model_answers() -> None:
    turns = TurnTracker()
    turns.observe(BidiResponseStartEvent("r1"), now=1.0)
    assert turns.boundary_at() == math.inf
    turns.observe(BidiResponseCompleteEvent("r1", "complete"), now=2.0)
    assert turns.boundary_at() == -math.inf


def test_no_boundary_while_the_user_speaks_then_the_reply_is_due() -> None:
    turns = TurnTracker(reply_wait_s=5.0)
    turns.observe(transcript("Hel", role="user", final=False), now=1.0)
    assert turns.boundary_at() == math.inf
    turns.observe(transcript("Hello", role="user"), now=2.0)
    assert turns.boundary_at() == 7.0  # the reply is due: wait for it, but not forever
    turns.observe(BidiResponseStartEvent("r1"), now=3.0)
    assert turns.boundary_at() == math.inf


def test_expected_reply_and_interruption() -> None:
    turns = TurnTracker(reply_wait_s=2.0)
    turns.expect_reply(10.0)
    assert turns.boundary_at() == 12.0
    turns.observe(BidiResponseStartEvent("r1"), now=11.0)
    turns.observe(BidiInterruptionEvent("user_speech"), now=11.5)
    assert turns.response_id is None
    assert turns.user_speaking
    assert turns.boundary_at() == math.inf
    turns.reset()
    assert turns.boundary_at() == -math.inf


def test_assistant_transcripts_do_not_change_the_turn() -> None:
    turns = TurnTracker()
    turns.observe(transcript("Hi there", role="assistant"), now=1.0)
    assert turns.boundary_at() == -math.inf
