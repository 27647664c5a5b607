"""Plain `tas.enroll` applies the destination's backward-secrecy setting of the TAS's mobility contract,
checked as attacks with real uploads and decryption."""

from __future__ import annotations

import pytest

from fogfed.node.client import AccessDenied
from fogfed.node.mobility import pull_history_keys
from fogfed.protocol.enrollment import EnrollmentRejected


def test_join_with_secrecy_on_cannot_read_what_was_uploaded_before(world, plain, tmp_path):
    b0, fid = world.named["b0"], world.feds["B"]
    old = b0.upload(plain("B before the newcomer"))
    before = world.tas.fed.federation(fid).epoch
    newcomer = world.new_node("b-new", world.accounts[7])
    res = world.tas.enroll(newcomer.enrollment_request("jeddah", "health"), approve=True)
    assert res.epoch == before + 1 and res.newcomer_rekey.nodes == (b0.address,) and res.history_epochs is None
    assert newcomer.refresh_keys() == 1
    with pytest.raises(AccessDenied, match="none of this node's keys"):
        newcomer.fetch(old.file_id, tmp_path / "old")
    assert not (tmp_path / "old").exists()
    assert b0.fetch(old.file_id, tmp_path / "b0").plaintext_sha256 == old.plaintext_sha256
    new = newcomer.upload(plain("B after the newcomer"))
    assert b0.fetch(new.file_id, tmp_path / "new").plaintext_sha256 == new.plaintext_sha256


def test_join_with_secrecy_off_gets_the_history_and_no_rekey(world, plain, tmp_path):
    c0, fid = world.named["c0"], world.feds["C"]
    world.authority.set_backward_secrecy(fid, False)
    first = c0.upload(plain("C before the newcomer"))
    world.tas.rekey(fid)  # the file is now from a past epoch
    epoch = world.tas.fed.federation(fid).epoch
    newcomer = world.new_node("c-new", world.accounts[8])
    res = world.tas.enroll(newcomer.enrollment_request("dammam", "health"), approve=True)
    assert (res.epoch, res.newcomer_rekey, res.history_epochs) == (epoch, None, (0, epoch - 1))
    assert newcomer.refresh_keys() == 1
    with pytest.raises(AccessDenied, match="none of this node's keys"):  # the current key alone is not enough
        newcomer.fetch(first.file_id, tmp_path / "h")
    assert pull_history_keys(newcomer, world.mobility) == 1
    assert newcomer.fetch(first.file_id, tmp_path / "h").plaintext_sha256 == first.plaintext_sha256


def test_refused_joins_do_not_bump_the_epoch(world):
    """A replayed or unapproved request must not make the TAS re-key a federation (free re-key flood)."""
    fid = world.feds["A"]
    before = world.tas.fed.federation(fid).epoch
    node = world.new_node("a-refused", world.accounts[9])
    req = node.enrollment_request("riyadh", "health")
    with pytest.raises(EnrollmentRejected, match="refused"):
        world.tas.enroll(req)
    world.tas.enroll(req, approve=True)
    after = world.tas.fed.federation(fid).epoch
    assert after == before + 1
    again = world.tas.enroll(req, approve=True)  # the same request again: reported, nothing sent
    assert again.gas == {} and again.newcomer_rekey is None
    assert world.tas.fed.federation(fid).epoch == after
