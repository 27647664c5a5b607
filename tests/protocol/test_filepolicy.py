"""fogfed.protocol.filepolicy on hand-made event logs: which registered covers are sound at registration."""

from __future__ import annotations

import pytest

from fogfed.chain.types import DecodedEvent
from fogfed.errors import InputError
from fogfed.protocol.filepolicy import cover_problems, registered_policy, trees_at

A, B = 1, 2


def log(*events: tuple[str, dict]) -> list[DecodedEvent]:
    """One event per block, in order."""
    return [DecodedEvent(name, args, block, f"0x{block:064x}", 0) for block, (name, args) in enumerate(events, 1)]


def added(fid: int, node: str) -> tuple[str, dict]:
    return "MemberAdded", {"federationId": fid, "node": node}


def removed(fid: int, node: str, epoch: int) -> list[tuple[str, dict]]:
    return [("MemberRemoved", {"federationId": fid, "node": node}), ("EpochAdvanced", {"federationId": fid,
                                                                                     "epoch": epoch})]


EVENTS = log(added(A, "a0"), added(A, "a1"), added(B, "b0"), added(B, "b1"), added(B, "b2"),
             *removed(B, "b2", 1), added(B, "b3"))  # blocks 1-8: b2 (leaf 2 of B) removed at block 6


def at(block: int):
    return trees_at(EVENTS, [A, B], (block, 0))


def test_a_current_cover_of_every_federation_is_sound_and_expands():
    text = f"(svc:health) and cover({A}:0:0:2 {B}:0:1:4)"
    assert cover_problems(text, at(9)) == []
    policy = registered_policy(text, at(9))
    assert "ct:2:0:" in str(policy) and policy.satisfied_by(["svc:health"]) is False


def test_a_cover_from_before_a_removal_in_a_shared_federation_is_named():
    text = f"(svc:health) and cover({A}:0:0:2 {B}:0:0:3)"
    assert cover_problems(text, at(6)) == []  # registered before the removal: fine
    [problem] = cover_problems(text, at(9))
    assert "federation 2" in problem and "removal of leaves 2" in problem


@pytest.mark.parametrize("part, why", [
    (f"{B}:1:1:3", "generation 1"),  # a generation the federation never had
    (f"{B}:0:5:3", "did not have yet"),  # an epoch from the future
    (f"{B}:0:1:9", "did not have yet"),  # more leaves than were assigned
    (f"{B}:0:1:4:open", "not yet assigned"),  # backward secrecy
])
def test_impossible_covers_are_named(part, why):
    [problem] = cover_problems(f"(svc:health) and cover({A}:0:0:2 {part})", at(9))
    assert why in problem


def test_a_registration_without_a_cover_is_named_and_does_not_expand():
    assert "without a member-tree cover" in cover_problems("ff:1", at(9))[0]
    with pytest.raises(InputError):
        registered_policy("ff:1", at(9))
