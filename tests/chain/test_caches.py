"""Off-chain caches: announcements with expiry, freshness, withdrawal, pruning, damaged copies."""

from __future__ import annotations

import os

import pytest

from fogfed.chain import ContractRevert
from tests.chain.helpers import advance_time, enc_key, new_account, now
from tests.chain.test_files import register


@pytest.mark.parametrize("kind,error", [("other", "NotFederationMember"), ("removed", "NotActiveMember"),
                                        ("outsider", "NotActiveMember"), ("tas", "NotActiveMember")])
def test_only_members_of_the_files_federation_announce(chain, cast, kind, error):
    fid = register(cast).value
    with pytest.raises(ContractRevert) as err:
        cast.fed.announce_cache(cast.callers()[kind], fid, now(chain) + 600)
    assert err.value.error_name == error
    assert cast.fed.fresh_cache_holders(fid) == []


def test_announce_renew_and_expiry_bounds(chain, cast):
    fed, fid = cast.fed, register(cast).value
    with pytest.raises(ContractRevert) as err:
        fed.announce_cache(cast.member, os.urandom(32), now(chain) + 60)
    assert err.value.error_name == "UnknownFile"
    lifetime = fed.settings().max_cache_lifetime
    for expires in (now(chain) - 1, now(chain) + lifetime + 100):
        with pytest.raises(ContractRevert) as err:
            fed.announce_cache(cast.member, fid, expires)
        assert err.value.error_name == "InvalidExpiry"
    expires = now(chain) + 600
    result = fed.announce_cache(cast.member, fid, expires)
    assert result.event("CacheAnnounced").args == {"fileId": fid, "holder": cast.member.address, "expiresAt": expires}
    fed.announce_cache(cast.member, fid, expires + 60)  # renewal: same entry, new expiry
    holders = fed.fresh_cache_holders(fid)
    assert [(h.holder, h.expires_at) for h in holders] == [(cast.member.address, expires + 60)]


def test_freshness_follows_expiry_and_membership(chain, cast):
    fed, fid = cast.fed, register(cast).value
    fed.announce_cache(cast.member, fid, now(chain) + 100)
    fed.announce_cache(cast.peer, fid, now(chain) + 5000)
    assert {h.holder for h in fed.fresh_cache_holders(fid)} == {cast.member.address, cast.peer.address}
    advance_time(chain, 200)
    assert [h.holder for h in fed.fresh_cache_holders(fid)] == [cast.peer.address]
    fed.remove_member(cast.tas, cast.peer.address)  # a removed member's copy is no longer offered
    assert fed.fresh_cache_holders(fid) == []


def test_withdraw_and_prune(chain, cast):
    fed, fid = cast.fed, register(cast).value
    fed.announce_cache(cast.member, fid, now(chain) + 100)
    fed.announce_cache(cast.peer, fid, now(chain) + 5000)
    with pytest.raises(ContractRevert) as err:  # someone else's fresh announcement stays
        fed.withdraw_cache(cast.outsider, fid, cast.peer.address)
    assert err.value.error_name == "CacheStillFresh"
    own = fed.withdraw_cache(cast.peer, fid)
    assert own.event("CacheWithdrawn").args == {"fileId": fid, "holder": cast.peer.address, "reason": 1}
    with pytest.raises(ContractRevert) as err:
        fed.withdraw_cache(cast.peer, fid)
    assert err.value.error_name == "NoCache"
    advance_time(chain, 200)
    pruned = fed.withdraw_cache(cast.outsider, fid, cast.member.address)  # expired: anyone may prune
    assert pruned.event("CacheWithdrawn").args == {"fileId": fid, "holder": cast.member.address, "reason": 2}
    assert fed.cache_expiry(fid, cast.member.address) == 0


def test_damage_report_on_a_cached_copy_is_recorded_and_leaves_the_announcement(chain, cast):
    fed, fid = cast.fed, register(cast).value
    fed.announce_cache(cast.peer, fid, now(chain) + 600)
    result = fed.report_damage(cast.member, fid, "hash-mismatch", holder=cast.peer.address)
    assert [e.name for e in result.events] == ["FileDamaged"]
    assert result.event("FileDamaged").args["holder"] == cast.peer.address
    # one member's word ends nothing: fetchers try reported holders last instead
    assert [h.holder for h in fed.fresh_cache_holders(fid)] == [cast.peer.address] and not fed.file(fid).damaged


def test_holder_list_pages_and_swap_and_pop(chain, cast):
    fed, fid = cast.fed, register(cast).value
    nodes = [new_account(chain, cast.tas) for _ in range(5)]
    fed.add_members(cast.tas, cast.fid, [n.address for n in nodes], [enc_key(n) for n in nodes])
    expires = now(chain) + 900
    for n in nodes:
        fed.announce_cache(n, fid, expires)
    fed.withdraw_cache(nodes[1], fid)  # the last entry moves into its place
    expected = {n.address for n in nodes} - {nodes[1].address}
    assert {h.holder for h in fed.fresh_cache_holders(fid, page_size=2)} == expected
    page, nxt, total = fed._call("freshCacheHolders", fid, 1, 2)
    assert (len(page), nxt, total) == (2, 3, 4)
    fed.announce_cache(nodes[1], fid, expires)  # re-announce after withdraw appends again
    assert len(fed.fresh_cache_holders(fid, page_size=3)) == 5
