"""A removal reaches peers and messages at once (peers: after their documented membership cache), as attacks.

Embedded chain and store, a system of its own (it removes nodes). Federation A
(riyadh/health): n0, n1, n2; B (jeddah/health): n3.
"""

from __future__ import annotations

import io
import time

import pytest

from fogfed import abe
from fogfed.chain import connect
from fogfed.keys.signing import SIGNATURE_BYTES
from fogfed.node import messaging
from fogfed.node.messaging import MessageError, receive, send_to_federation
from fogfed.node.peer import PeerRefused
from fogfed.storage import EmbeddedStore
from tests.e2e.conftest import build_system


@pytest.fixture(scope="module")
def system(tmp_path_factory):
    root = tmp_path_factory.mktemp("fogfed-removal-reach")
    system = build_system(connect(None), EmbeddedStore(root / "store"), root, layout=("A", "A", "A", "B"))
    yield system
    system.close()


def test_a_removed_node_is_refused_by_a_real_peer_once_the_membership_cache_expires(system, plain):
    holder, rogue = system.named["n0"], system.named["n2"]
    up = holder.upload(plain)
    server = holder.serve()
    server.is_member.ttl = 0.5  # the documented cache (5 s by default), shortened to keep the test quick
    out = io.BytesIO()
    rogue.peer_client.fetch(server.url, holder.address, up.file_id, out)  # still a member: served
    assert len(out.getvalue()) > len(plain.read_bytes())
    system.tas.remove(rogue.address, reason="rogue")
    time.sleep(0.6)
    # the attacker's own signed, fresh request, straight to the peer (no local checks in the way)
    with pytest.raises(PeerRefused, match="may not read") as refused:
        rogue.peer_client.fetch(server.url, holder.address, up.file_id, io.BytesIO())
    assert refused.value.code == "not_member"


def test_a_federation_message_sent_right_after_a_removal_is_closed_to_the_removed_node(system):
    sender, member, rogue = system.named["n1"], system.named["n0"], system.named["n2"]
    if system.tas.fed.member(rogue.address).active:
        system.tas.remove(rogue.address, reason="rogue")
    stolen = rogue.keyring.candidates()  # every key it ever held
    assert stolen
    sender.member_tree(1)  # the sender's tree was synced before: the removal must still be seen
    blob = send_to_federation(sender, 1, b"after the removal")
    assert receive(member, blob).body == b"after the removal"
    with pytest.raises(MessageError, match="none of this node's keys"):
        receive(rogue, blob)
    # the attacker's side, without the receive() code: each key against the ciphertext itself
    ct, head = split(blob)
    for sk in stolen:
        with pytest.raises(abe.PolicyNotSatisfied):
            abe.decrypt(rogue.public_key(1), sk, ct, aad=head)


def test_a_message_from_before_the_removal_was_readable_so_the_test_above_can_fail(system):
    sender, late = system.named["n1"], system.named["n0"]
    blob = send_to_federation(sender, 1, b"before")
    system.tas.remove(late.address, reason="rogue")
    ct, head = split(blob)
    assert any(_opens(late, sk, ct, head) for sk in late.keyring.candidates())


def split(blob: bytes) -> tuple[bytes, bytes]:
    """(CP-ABE ciphertext, header it is bound to) of a federation message (fogfed.node.messaging's layout)."""
    head_end = messaging._HEAD + 8  # federation id and epoch
    return blob[head_end:-SIGNATURE_BYTES], blob[:head_end]


def _opens(node, sk, ct: bytes, head: bytes) -> bool:
    try:
        return abe.decrypt(node.public_key(1), sk, ct, aad=head) == b"before"
    except abe.PolicyNotSatisfied:
        return False
