"""What a finished move must look like on chain, shared by the move fault tests (kills and outages).

Checked against the chain, not the TAS's records: one MemberMoved, one removal from the source, two
MemberAdded (enrollment and move), exactly one key delivered for the destination (the node
opens it), nothing unfinished or owed; then from the node's side: it reads a file uploaded in the
destination after the move and cannot read one uploaded in the source after the move.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from fogfed.chain.mobility import deploy_mobility
from fogfed.node import FogNode
from fogfed.node.client import AccessDenied
from fogfed.storage import EmbeddedStore
from fogfed.tas import TrustedAuthority
from fogfed.tas.revocation import RefreshPolicy
from tests.cli.helpers import PASSPHRASE
from tests.tas.test_faults import LIGHT

FUND = 10**17

#: the named steps of a move (fogfed._faults): request journalled; moveMember sent (receipt not read)
#: and mined (the old leaf revoked and the destination's addMember: one transaction); the key
#: delivery sent, mined (inside deliver_keys) and recorded
MOVE_STEPS = ["move:journal", "sent:moveMember", "move:moveMember", "sent:deliverKey", "deliverKey",
              "move:deliverKey"]


def move_world(root: Path, chain, account, nodes: list[FogNode], policy: RefreshPolicy | None = None):
    """A TAS with FogFedMobility, federations region > riyadh (a), jeddah (b), and one staying member in each.

    Returns ``(tas, mobility, a, b, stayers, node)``; ``node(name, location)`` enrolls another node (keys
    through the embedded store the CLI's TAS uses too, $FOGFED_HOME/store). Every node made is appended
    to ``nodes`` for the fixture to close.
    """
    tas = TrustedAuthority.init(root / "tas", chain, PASSPHRASE, account=account, kdf=LIGHT)
    store = EmbeddedStore(root / "store")
    tas.use_store(store)
    mobility = tas.use_mobility(deploy_mobility(chain, tas.account, tas.fed))
    if policy is not None:
        tas.set_refresh_policy(policy)
    region = tas.create_federation("region", "health").federation_id
    a = tas.create_federation("riyadh", "health", region).federation_id
    b = tas.create_federation("jeddah", "health", region).federation_id

    def node(name: str, location: str) -> FogNode:
        n = FogNode.init(root / name, chain, tas.contract_address, store, PASSPHRASE, kdf=LIGHT)
        nodes.append(n)
        tas.enroll(n.enrollment_request(location, "health"), approve=True, fund_wei=FUND)
        assert n.refresh_keys() == 1
        return n

    stayers = {a: node("a0", "riyadh"), b: node("b0", "jeddah")}
    return tas, mobility, a, b, stayers, node


def check_moved(tas: TrustedAuthority, mobility, mover: FogNode, source: int, dest: int, stayers: dict[int, FogNode],
                tmp: Path) -> None:
    fed = tas.fed
    member = fed.member(mover.address)
    assert member.active and member.federation_id == dest
    assert member.encryption_key == mover.identity.enc_public_key
    moved = mobility.events(["MemberMoved"], node=mover.address)
    assert [(e.args["fromFederation"], e.args["toFederation"]) for e in moved] == [(source, dest)]
    assert [e.args["federationId"] for e in fed.events(names=["MemberRemoved"], where={"node": mover.address})] \
        == [source]
    assert [e.args["federationId"] for e in fed.events(names=["MemberAdded"], where={"node": mover.address})] \
        == [source, dest]
    keys = [e for e in fed.events(names=["KeyDelivered"], where={"node": mover.address})
            if e.args["federationId"] == dest]
    assert len(keys) == 1
    status = tas.status()
    assert status["unfinished"] == [] and status["pending_keys"] == []
    assert mover.address in tas.active_members(dest) and mover.address not in tas.active_members(source)
    # the node's side: new files of the destination open, new files of the source do not
    assert mover.refresh_keys() == 1  # the one key for the destination, opened by the node
    src = tmp / f"dest-{mover.address}.txt"
    src.write_bytes(b"uploaded in the destination after the move " * 50)
    up = stayers[dest].upload(src)
    got = mover.fetch(up.file_id, tmp / f"got-{mover.address}")
    assert got.plaintext_hash == up.plaintext_hash
    src.write_bytes(b"uploaded in the source after the move " * 50)
    later = stayers[source].upload(src)
    with pytest.raises(AccessDenied):
        mover.fetch(later.file_id, tmp / f"no-{mover.address}")
    assert not (tmp / f"no-{mover.address}").exists()
