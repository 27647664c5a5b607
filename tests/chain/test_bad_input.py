"""Untrusted input: wrappers refuse malformed values with InvalidArgument before sending;
revert data and logs from a node never crash the decoders."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fogfed.chain import ChainError, ContractRevert, InvalidArgument, connect, deploy
from fogfed.chain.events import decode_log
from fogfed.chain.reverts import decode_revert, revert_data

junk = st.one_of(st.none(), st.booleans(), st.integers(min_value=-2**300, max_value=2**300),
                 st.binary(max_size=70), st.text(max_size=70), st.lists(st.integers(), max_size=3))
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def embedded():
    chain = connect()
    tas = chain.dev_accounts()[0]
    return chain, tas, deploy(chain, tas)


def _refused_or_valid(call) -> None:
    try:
        call()
    except (InvalidArgument, ContractRevert):
        pass  # refused with a clear error (wrapper first, contract second)


@SETTINGS
@given(fid=junk, node=junk, key=junk)
def test_add_member_junk(embedded, fid, node, key):
    chain, tas, fed = embedded
    _refused_or_valid(lambda: fed.add_member(tas, fid, node, key))


@SETTINGS
@given(location=junk, service=junk, ffpk=junk, parent=junk)
def test_create_federation_junk(embedded, location, service, ffpk, parent):
    chain, tas, fed = embedded
    _refused_or_valid(lambda: fed.create_federation(tas, location, service, ffpk, parent))


@SETTINGS
@given(file_id=junk, ph=junk, ref=junk, policy=junk, epoch=junk, codec=junk)
def test_register_file_junk(embedded, file_id, ph, ref, policy, epoch, codec):
    chain, tas, fed = embedded
    _refused_or_valid(lambda: fed.register_file(tas, 1, file_id, ph, ref, policy, epoch, codec))


@pytest.mark.parametrize("bad", [b"\x00" * 31, b"\x00" * 33, "0xzz", 5, None])
def test_file_id_must_be_32_bytes(embedded, bad):
    with pytest.raises(InvalidArgument):
        embedded[2].record_access(embedded[1], bad)


def test_mixed_case_address_with_bad_checksum(embedded):
    chain, tas, fed = embedded
    good = tas.address
    bad = good[:2] + "".join(c.swapcase() if c.isalpha() else c for c in good[2:])
    with pytest.raises(InvalidArgument, match="checksum"):
        fed.member(bad)
    assert fed.member(good.lower()).address == good


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=200))
def test_any_revert_data_decodes(data):
    err = decode_revert(data, "f")
    assert isinstance(err, ContractRevert) and err.error_name and "\n" not in err.sentence


@settings(max_examples=200, deadline=None)
@given(selector=st.sampled_from(["0x2b8ac8c9", "0x08c379a0", "0x4e487b71"]), body=st.binary(max_size=100))
def test_truncated_known_errors_decode(selector, body):
    assert isinstance(decode_revert(bytes.fromhex(selector[2:]) + body), ContractRevert)


def test_revert_data_found_in_wrappers():
    inner = ValueError(b"\x12\x34")
    try:
        try:
            raise inner
        except ValueError as exc:
            raise RuntimeError("execution reverted: b'\\x12\\x34'") from exc
    except RuntimeError as outer:
        assert revert_data(outer) == b"\x12\x34"
    assert revert_data(RuntimeError("x", {"result": "0xabcd"})) == b"\xab\xcd"


@settings(max_examples=200, deadline=None)
@given(topics=st.lists(st.binary(min_size=32, max_size=32), max_size=4), data=st.binary(max_size=300))
def test_hostile_logs_never_crash(topics, data):
    from fogfed.chain.events import _event_table

    real = list(_event_table())
    for first in ([real[len(topics) % len(real)]] if topics else []) + [b"\x00" * 32]:
        log = {"topics": [first, *topics[1:]], "data": data, "blockNumber": 1, "transactionHash": b"\x00" * 32,
               "logIndex": 0}
        try:
            decode_log(log)
        except ChainError:
            pass
