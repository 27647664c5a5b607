"""Backward secrecy of plain `tas.enroll` with covers (a mobility contract or not), checked as attacks with
real uploads and decryption: nobody is re-keyed, the newcomer's leaf is outside every earlier cover."""

from __future__ import annotations

import pytest

from fogfed.node.client import AccessDenied
from fogfed.protocol.enrollment import EnrollmentRejected


def test_join_with_secrecy_on_cannot_read_what_was_uploaded_before(world, plain, tmp_path):
    b0, fid = world.named["b0"], world.feds["B"]
    old = b0.upload(plain("B before the newcomer"))
    before = world.tas.fed.federation(fid).epoch
    newcomer = world.new_node("b-new", world.accounts[7])
    res = world.tas.enroll(newcomer.enrollment_request("jeddah", "health"), approve=True)
    assert res.epoch == before and (res.newcomer_rekey, res.history_epochs) == (None, None)
    assert set(res.gas) == {"addMember", "deliverKey"}
    assert newcomer.refresh_keys() == 1
    with pytest.raises(AccessDenied, match="none of this node's keys"):
        newcomer.fetch(old.file_id, tmp_path / "old")
    assert not (tmp_path / "old").exists()
    assert b0.fetch(old.file_id, tmp_path / "b0").plaintext_hash == old.plaintext_hash
    new = newcomer.upload(plain("B after the newcomer"))
    assert b0.fetch(new.file_id, tmp_path / "new").plaintext_hash == new.plaintext_hash


def test_refused_joins_do_not_bump_the_epoch(world):
    """Neither a refused nor an accepted join changes the epoch (no re-key at all)."""
    fid = world.feds["A"]
    before = world.tas.fed.federation(fid).epoch
    node = world.new_node("a-refused", world.accounts[9])
    req = node.enrollment_request("riyadh", "health")
    with pytest.raises(EnrollmentRejected, match="refused"):
        world.tas.enroll(req)
    world.tas.enroll(req, approve=True)
    after = world.tas.fed.federation(fid).epoch
    assert after == before
    again = world.tas.enroll(req, approve=True)  # the same request again: reported, nothing sent
    assert again.gas == {} and again.newcomer_rekey is None
    assert world.tas.fed.federation(fid).epoch == after
