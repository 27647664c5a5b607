"""Peer messages under on-chain keys, as attacks: tampering, replay, staleness, rotated keys, removed senders."""

from __future__ import annotations

import os
import time

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from fogfed.node.messaging import (
    MessageError, MessageReplayed, RecipientKeyChanged, StaleRecipientKey, receive, send_to_federation, send_to_node,
)


def test_node_to_node_round_trip_and_replay(world):
    b0, c0 = world.named["b0"], world.named["c0"]
    blob = send_to_node(b0, c0.address, b"meet at the edge", expected_key=c0.identity.enc_public_key)
    msg = receive(c0, blob)
    assert (msg.sender, msg.kind, msg.body) == (b0.address, "node", b"meet at the edge")
    with pytest.raises(MessageReplayed, match="replay"):
        receive(c0, blob)
    with pytest.raises(MessageError, match="not this node"):
        receive(world.named["a1"], send_to_node(b0, c0.address, b"x"))


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(position=st.integers(min_value=0), flip=st.integers(min_value=1, max_value=255))
def test_any_flipped_byte_is_refused(world, position, flip):
    b0, c0 = world.named["b0"], world.named["c0"]
    blob = bytearray(send_to_node(b0, c0.address, b"payload"))
    blob[position % len(blob)] ^= flip
    with pytest.raises(MessageError):
        receive(c0, bytes(blob))


def test_stale_and_future_messages_are_refused(world):
    b0, c0 = world.named["b0"], world.named["c0"]
    with pytest.raises(MessageError, match="not within"):
        receive(c0, send_to_node(b0, c0.address, b"old", now=time.time() - 7200))
    with pytest.raises(MessageError, match="not within"):
        receive(c0, send_to_node(b0, c0.address, b"future", now=time.time() + 3600))


def test_federation_message_reaches_members_only(world):
    a0, a1, b0 = world.named["a0"], world.named["a1"], world.named["b0"]
    fid = world.feds["A"]
    blob = send_to_federation(a0, fid, b"to everyone in my federation")
    msg = receive(a1, blob)
    assert (msg.sender, msg.kind, msg.federation_id, msg.body) == (a0.address, "federation", fid,
                                                                   b"to everyone in my federation")
    with pytest.raises(MessageError, match="none of this node's keys"):
        receive(b0, send_to_federation(a0, fid, b"not for b0"))
    forged = bytearray(send_to_federation(a0, fid, b"x"))
    forged[-10] ^= 1
    with pytest.raises(MessageError, match="not signed by its sender"):
        receive(a1, bytes(forged))


def test_rotated_recipient_key_fails_clearly_for_sender_and_recipient(world):
    b0, c0 = world.named["b0"], world.named["c0"]
    old_key = c0.identity.enc_public_key
    pending = send_to_node(b0, c0.address, b"sealed to the old key")
    fid = world.tas.fed.member(c0.address).federation_id
    world.tas.fed.remove_member(world.tas.account, c0.address)
    world.tas.fed.add_member(world.tas.account, fid, c0.address, os.urandom(32))  # the TAS re-adds it, new key
    with pytest.raises(RecipientKeyChanged, match="pinned") as err:
        send_to_node(b0, c0.address, b"hello", expected_key=old_key)
    assert "re-keyed" in err.value.hint
    with pytest.raises(StaleRecipientKey, match="rotated"):
        receive(c0, pending)


def test_removed_or_unknown_parties(world):
    a1, b0 = world.named["a1"], world.named["b0"]
    blob = send_to_node(a1, b0.address, b"before removal")
    world.tas.remove(a1.address)
    with pytest.raises(MessageError, match="not an active member"):
        receive(b0, blob)
    with pytest.raises(MessageError, match="not an active member"):
        send_to_node(b0, a1.address, b"to a removed node")
    with pytest.raises(MessageError, match="never enrolled"):
        send_to_node(b0, "0x" + "12" * 20, b"to nobody")
    for junk in (b"", b"FFMSG", os.urandom(200), "text"):
        with pytest.raises(MessageError):
            receive(b0, junk)
