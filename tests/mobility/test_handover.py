"""Handover end to end: success with the same device keys, forward and backward secrecy with real
uploads and decryption, refusal and fresh enrollment, forged and replayed requests."""

from __future__ import annotations

import pytest

from fogfed.node.client import AccessDenied
from fogfed.node.mobility import move_request
from fogfed.protocol.move import MoveRejected, MoveRequest
from fogfed.tas import TasError
from fogfed.tas.mobility import HandoverRefused


def test_move_keeps_device_keys_and_gives_a_destination_key(world, plain, tmp_path):
    mover, b0 = world.named["mover"], world.named["b0"]
    before = world.tas.fed.member(mover.address)
    old = b0.upload(plain("uploaded in B before the mover arrived"))
    res = world.authority.move(move_request(mover, world.mobility, world.feds["B"]))
    assert (res.from_federation, res.to_federation, res.level) == (world.feds["A"], world.feds["B"], 1)
    after = world.tas.fed.member(mover.address)
    assert after.encryption_key == before.encryption_key == mover.identity.enc_public_key  # no device re-key
    assert (after.federation_id, after.generation) == (world.feds["B"], before.generation + 1)
    assert mover.refresh_keys() == 1
    up = mover.upload(plain("written by the mover in B"))
    assert b0.fetch(up.file_id, tmp_path / "got").source in {"storage", "peer"}
    # nobody re-keyed, one delivery: the old leaf is revoked, the new one was outside every earlier cover
    assert (res.old_rekey, res.newcomer_rekey, res.history_epochs) == (None, None, None)
    assert set(res.gas) == {"moveMember", "deliverKey"} and sum(res.gas.values()) <= 250_000
    # backward secrecy: the file uploaded in B before the move stays closed to the mover
    with pytest.raises(AccessDenied, match="none of this node's keys"):
        mover.fetch(old.file_id, tmp_path / "old")
    assert not (tmp_path / "old").exists()


def test_moved_node_cannot_read_what_its_old_federation_uploads_afterwards(world, plain, tmp_path):
    mover, a0 = world.named["mover"], world.named["a0"]
    assert world.tas.fed.member(mover.address).federation_id == world.feds["B"]
    later = a0.upload(plain("A after the mover left"))
    with pytest.raises(AccessDenied):  # the contract refuses it ...
        mover.fetch(later.file_id, tmp_path / "x")
    record = world.tas.fed.file(later.file_id)
    with pytest.raises(AccessDenied, match="none of this node's keys"):  # ... and so does the cryptography
        mover._file_key(later.file_id, record.enc_sk_ref, record.federation_id)
    assert world.named["a1"].fetch(later.file_id, tmp_path / "a1").plaintext_hash == later.plaintext_hash


def test_refused_handover_changes_nothing_and_fresh_enrollment_works(world, plain, tmp_path):
    a0 = world.named["a0"]
    before = world.tas.fed.member(a0.address)
    with pytest.raises(HandoverRefused, match="no common ancestor") as err:
        world.authority.move(move_request(a0, world.mobility, world.feds["X"]))
    assert "fresh identity" in err.value.hint and "enroll" in err.value.hint
    assert world.tas.fed.member(a0.address) == before
    fresh = world.new_node("a0-fresh")  # new device keys, new account
    world.chain.fund(fresh.address, 10**18, world.tas.account)
    result = world.tas.enroll(fresh.enrollment_request("cairo", "health"), approve=True)
    assert result.federation_id == world.feds["X"]
    up = fresh.upload(plain("fresh identity in X"))
    assert fresh.fetch(up.file_id, tmp_path / "f").plaintext_hash == up.plaintext_hash


def test_revoked_node_is_refused(world):
    a0 = world.named["a0"]
    world.tas.remove(a0.address)
    with pytest.raises(HandoverRefused, match="revoked"):
        world.authority.move(move_request(a0, world.mobility, world.feds["B"]))


def test_forged_replayed_and_foreign_requests_are_refused(world):
    b0 = world.named["b0"]
    req = move_request(b0, world.mobility, world.feds["C"])
    forged = MoveRequest(**{**req.__dict__, "to_federation": world.feds["A"]})
    with pytest.raises(MoveRejected, match="not signed by"):
        world.authority.move(forged)
    foreign = MoveRequest.create(b0.identity, world.feds["C"], chain_id=world.chain.chain_id,
                                 contract=world.tas.contract_address, mobility=world.tas.contract_address)
    with pytest.raises(MoveRejected, match="not this deployment"):
        world.authority.move(foreign)
    world.authority.move(MoveRequest.from_json(req.to_json()))
    head = world.chain.block_number()
    assert world.authority.move(req).status == "already moved" and world.chain.block_number() == head
    other = MoveRequest(**{**req.__dict__, "to_federation": world.feds["B"]})  # its nonce, another body
    with pytest.raises(MoveRejected, match="replay"):
        world.authority.move(other)
    stale = MoveRequest.create(b0.identity, world.feds["B"], chain_id=world.chain.chain_id,
                               contract=world.tas.contract_address, mobility=world.mobility.address, now=1_000_000)
    with pytest.raises(MoveRejected, match="not within"):
        world.authority.move(stale)


@pytest.mark.parametrize("text", ["", "{}", "[1]", '{"format": "fogfed-move", "version": 2}', "\xff" * 5000])
def test_malformed_move_requests(text):
    with pytest.raises(MoveRejected):
        MoveRequest.from_json(text)
