"""A file's encrypted key against its registered policy, as attacks (embedded chain and store; own system).

The contract sees only the registered descriptor text and checks only the
uploader's own federation's epoch. An uploader may encrypt the file key under
a wider policy than it registers (issue 11 review: the fetcher did not
compare), and a file shared with another federation may carry a cover of that
federation from before a removal there. Federation A (riyadh/health): n0, n1,
n2; B (jeddah/health): n3, n4, n5.
"""

from __future__ import annotations

import io
import os

import pytest

from fogfed import abe, audit
from fogfed._faults import at_step
from fogfed.chain import connect
from fogfed.node import UntrustedFile
from fogfed.node.client import NodeError
from fogfed.node.datapath import encrypt_and_store
from fogfed.protocol.attributes import policy_descriptor, scoped_policy
from fogfed.protocol.files import cid_of_file_id, encsk_aad, file_id_for, file_id_of_cid
from fogfed.storage import EmbeddedStore
from tests.e2e.conftest import build_system

SHARED = "svc:health"  # both federations satisfy it


@pytest.fixture(scope="module")
def system(tmp_path_factory):
    root = tmp_path_factory.mktemp("fogfed-policy-attacks")
    system = build_system(connect(None), EmbeddedStore(root / "store"), root, layout=("A",) * 3 + ("B",) * 3)
    yield system
    system.close()


def encsk_of(system, file_id: bytes) -> bytes:
    """The public encrypted file key: chain record -> content store."""
    return b"".join(system.store.cat(cid_of_file_id(system.tas.fed.file(file_id).enc_sk_ref)))


def opens(node, keys, file_id: bytes, encsk: bytes) -> bool:
    """The attacker's side: does any key it ever held open the public encrypted key blob?"""
    aad = encsk_aad(node.chain_id, node.fed.address, file_id)
    for sk in keys:
        try:
            return len(abe.decrypt(node.public_key(1), sk, encsk, aad=aad)) == 32
        except abe.PolicyNotSatisfied:
            continue
    return False


def hostile_upload(uploader, plain, *, encrypt_under: str, descriptor: str, epoch: int, share: int | None = None):
    """What a hostile member can do with raw calls: any key policy, any registered text (own epoch current)."""
    key = os.urandom(32)
    cid, info, _ = encrypt_and_store(uploader.store, plain, key, io.BytesIO())
    digest = file_id_of_cid(cid)
    file_id = file_id_for(uploader.address, digest)
    encsk = abe.encrypt(uploader.public_key(1), encrypt_under, key,
                        aad=encsk_aad(uploader.chain_id, uploader.fed.address, file_id))
    ref = file_id_of_cid(uploader.store.add(io.BytesIO(encsk)))
    assert uploader.fed.register_file(uploader.account, 1, digest, info.plaintext_hash, ref, descriptor,
                                      epoch).value == file_id
    if share is not None:
        uploader.fed.share_file(uploader.account, file_id, share)
    return file_id


def findings(system, tmp_path, kind: str) -> list:
    result = audit.replay(system.chain.w3, system.tas.contract_address, tmp_path / f"audit-{kind}.sqlite")
    return [f for f in audit.anomalies(result.state, result.head_time) if f.kind == kind]


def test_a_key_encrypted_wider_than_registered_is_refused_by_honest_fetchers(system, plain, tmp_path):
    n0, n1, removed = system.named["n0"], system.named["n1"], system.named["n2"]
    stolen = removed.keyring.candidates()
    system.tas.remove(removed.address, reason="rogue")
    tree = n0.member_tree(1)
    # the proper registration after the removal, and a key policy whose cover is the one from before it
    descriptor = policy_descriptor("ff:1", {1: tree.descriptor()})
    wide = scoped_policy("ff:1", {1: tree.clause(tree.epoch - 1)})
    assert wide != scoped_policy("ff:1", {1: tree.clause()})
    file_id = hostile_upload(n0, plain, encrypt_under=wide, descriptor=descriptor, epoch=tree.epoch)
    assert opens(removed, stolen, file_id, encsk_of(system, file_id))  # the attack works on the blob
    head = system.chain.block_number()
    with pytest.raises(UntrustedFile, match="encrypted key is under the policy") as refused:
        n1.fetch(file_id, tmp_path / "wide.bin")
    assert n0.address in refused.value.hint
    assert not (tmp_path / "wide.bin").exists()
    # the uploader's doing, not storage's: no damage report (the stored copy is what was registered)
    assert system.tas.fed.events(head + 1, names=["FileDamaged"]) == []
    assert not system.tas.fed.file(file_id).damaged


def test_a_key_under_another_federations_policy_is_refused_not_just_undecryptable(system, plain, tmp_path):
    """A key narrower than registered (here: B's only) is named as a broken registration, not 'no key fits'."""
    n0, n1 = system.named["n0"], system.named["n1"]
    tree_a, tree_b = n0.member_tree(1), n0.member_tree(2)
    descriptor = policy_descriptor("ff:1", {1: tree_a.descriptor()})
    other = scoped_policy("ff:2", {2: tree_b.clause()})
    file_id = hostile_upload(n0, plain, encrypt_under=other, descriptor=descriptor, epoch=tree_a.epoch)
    with pytest.raises(UntrustedFile, match="encrypted key is under the policy"):
        n1.fetch(file_id, tmp_path / "other.bin")


def test_a_share_whose_cover_predates_a_removal_in_the_shared_federation_is_refused_and_flagged(
        system, plain, tmp_path):
    """A hostile uploader computes B's cover, B removes n5, then registers that stale cover and shares with B.

    The contract accepts it (it checks A's epoch only). The removed node can open the
    blob (nothing stops a hostile uploader from leaking), but every honest fetcher of
    B refuses the file and the auditor flags it."""
    n0, n3, rogue = system.named["n0"], system.named["n3"], system.named["n5"]
    stolen = rogue.keyring.candidates()
    a, b = n0.member_tree(1), n0.member_tree(2)
    stale_b = b.descriptor()
    stale_clauses = {1: a.clause(), 2: b.clause()}
    system.tas.remove(rogue.address, reason="rogue")
    assert n0.member_tree(2).epoch == stale_b[1] + 1 and n0.member_tree(1).epoch == a.epoch
    descriptor = policy_descriptor(SHARED, {1: a.descriptor(), 2: stale_b})
    file_id = hostile_upload(n0, plain, encrypt_under=scoped_policy(SHARED, stale_clauses), descriptor=descriptor,
                             epoch=a.epoch, share=2)
    assert system.tas.fed.has_access(n3.address, file_id)
    assert opens(rogue, stolen, file_id, encsk_of(system, file_id))
    with pytest.raises(UntrustedFile, match=r"predates the removal of leaves \d"):
        n3.fetch(file_id, tmp_path / "stale.bin")
    assert not (tmp_path / "stale.bin").exists()
    [flag] = [f for f in findings(system, tmp_path, "stale_cover") if ("0x" + file_id.hex()) in f.message]
    assert flag.subject == n0.address and "federation 2" in flag.message


def test_an_honest_upload_takes_covers_after_a_removal_during_its_encryption(system, plain, tmp_path):
    """The race for an honest uploader: B removes n4 while the file is being encrypted and stored.

    The covers are read again right before the file key is encrypted, so n4's leaf is out
    of B's cover although the epoch of A (the only one the contract checks) never moved."""
    n0, n3, rogue = system.named["n0"], system.named["n3"], system.named["n4"]
    stolen = rogue.keyring.candidates()
    epoch_b = n0.member_tree(2).epoch
    with at_step("upload:stored", lambda: system.tas.remove(rogue.address, reason="rogue")):
        up = n0.upload(plain, policy=SHARED)
    assert up.shared_with == (2,) and f" 2:{n0.member_tree(2).generation}:{epoch_b + 1}:" in up.descriptor
    assert not opens(rogue, stolen, up.file_id, encsk_of(system, up.file_id))
    got = n3.fetch(up.file_id, tmp_path / "honest.bin")
    assert got.plaintext_hash == up.plaintext_hash


def test_an_honest_upload_that_loses_the_race_to_a_removal_shares_nothing_and_the_retry_is_clean(
        system, plain, tmp_path):
    """A removal in B mined after the uploader's last look but before its registration: detected at once
    from the chain; the file is not shared, the retry encrypts anew under the current covers."""
    n0, n1, n3 = system.named["n0"], system.named["n1"], system.named["n3"]
    victim = system.new_node("n6", system.accounts[7])  # a fresh member of B, to be removed in the window
    system.tas.enroll(victim.enrollment_request("jeddah", "health"), approve=True)
    assert victim.refresh_keys() == 1
    stolen = victim.keyring.candidates()
    with at_step("upload:key-stored", lambda: system.tas.remove(victim.address, reason="rogue")):
        with pytest.raises(NodeError, match="was registered, but its cover of federation 2") as lost:
            n0.upload(plain, policy=SHARED)
    lost_id = bytes.fromhex(lost.value.message.split("0x", 1)[1][:64])
    assert system.tas.fed.events(names=["FileShared"], where={"fileId": lost_id}) == []
    assert not system.tas.fed.has_access(n3.address, lost_id)
    with pytest.raises(UntrustedFile, match="predates the removal"):
        n1.fetch(lost_id, tmp_path / "lost.bin")  # even its own federation refuses it
    retry = n0.upload(plain, policy=SHARED)
    assert not retry.resumed and retry.file_id != lost_id and retry.shared_with == (2,)
    assert not opens(victim, stolen, retry.file_id, encsk_of(system, retry.file_id))
    assert n3.fetch(retry.file_id, tmp_path / "retry.bin").plaintext_hash == retry.plaintext_hash
