"""Fixtures of the chain suite: one chain and one fresh FogFed deployment per module,
parametrized over the embedded chain and Anvil; fresh funded accounts per test."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from eth_account.signers.local import LocalAccount

from fogfed.chain import Chain, FogFed, connect, deploy
from tests.chain.helpers import enc_key, new_account, unique_attrs


def _chain(request: pytest.FixtureRequest, kind: str) -> Chain:
    if kind == "embedded":
        return connect()
    return connect(request.getfixturevalue(f"{kind}_url"))


@pytest.fixture(scope="module", params=["embedded", pytest.param("anvil", marks=pytest.mark.anvil)])
def chain(request: pytest.FixtureRequest) -> Chain:
    """The embedded chain, then Anvil."""
    return _chain(request, request.param)


@pytest.fixture(scope="module")
def tas(chain: Chain) -> LocalAccount:
    """The deployer: admin and TAS operator."""
    return chain.dev_accounts()[0]


@pytest.fixture(scope="module")
def fed(chain: Chain, tas: LocalAccount) -> FogFed:
    """A fresh deployment per module."""
    return deploy(chain, tas)


@dataclass
class Cast:
    """One federation with the five kinds of caller around it."""

    fed: FogFed
    tas: LocalAccount
    fid: int
    other_fid: int
    location: str
    service: str
    member: LocalAccount  # active member of fid
    peer: LocalAccount  # a second active member of fid
    other: LocalAccount  # active member of other_fid
    removed: LocalAccount  # removed from fid
    outsider: LocalAccount  # never enrolled

    def callers(self) -> dict[str, LocalAccount]:
        return {"tas": self.tas, "member": self.member, "other": self.other,
                "removed": self.removed, "outsider": self.outsider}


@pytest.fixture()
def cast(chain: Chain, fed: FogFed, tas: LocalAccount) -> Cast:
    """Two new federations and fresh accounts of every kind."""
    loc, svc = unique_attrs()
    fid = fed.create_federation(tas, loc, svc, b"\x11" * 96).value
    other_fid = fed.create_federation(tas, *unique_attrs(), b"\x22" * 96).value
    member, peer, other, removed, outsider = (new_account(chain, tas) for _ in range(5))
    fed.add_members(tas, fid, [member.address, peer.address, removed.address],
                    [enc_key(member), enc_key(peer), enc_key(removed)])
    fed.add_member(tas, other_fid, other.address, enc_key(other))
    fed.remove_member(tas, removed.address)
    return Cast(fed, tas, fid, other_fid, loc, svc, member, peer, other, removed, outsider)
