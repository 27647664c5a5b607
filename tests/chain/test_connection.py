"""Connecting, sending and failing clearly: bad endpoints, wrong chain, wrong contract,
no funds, reverts in mined transactions, concurrent senders, events in batches."""

from __future__ import annotations

import os
import threading

import pytest
from eth_account import Account

from fogfed.chain import (
    ChainUnreachable,
    ContractRevert,
    FogFed,
    InsufficientFunds,
    NotFogFedContract,
    WrongChain,
    connect,
    deploy,
)
from fogfed.chain import contract as contract_module
from fogfed.chain.connection import PRIVATE_KEY_ENV
from fogfed.errors import FogfedError, InputError
from fogfed._proc import free_port
from tests.chain.helpers import enc_key, new_account

# Init code of a contract whose runtime returns 42 for any call: "code of another contract".
OTHER_CONTRACT = bytes.fromhex("600a600c600039600a6000f3602a60005260206000f3")


def one_line(exc: BaseException) -> None:
    assert isinstance(exc, FogfedError) and exc.hint and "\n" not in str(exc)


def test_unreachable_rpc():
    with pytest.raises(ChainUnreachable) as err:
        connect(f"http://127.0.0.1:{free_port()}", timeout=2)
    one_line(err.value)
    assert "cannot reach" in err.value.message


def test_node_gone_after_connect_is_unreachable_everywhere(tmp_path):
    from fogfed.chain.devnet import start_anvil

    with start_anvil(log=tmp_path / "anvil.log") as anvil:
        chain = connect(anvil.url)
        tas = chain.dev_accounts()[0]
        fed = deploy(chain, tas)
        assert chain.block_number() >= 1 and chain.now() >= chain.timestamp()
    calls = {"view": lambda: fed.member(tas.address), "events": lambda: fed.events(),
             "block": chain.block_number, "time": chain.now,
             "transaction": lambda: fed.create_federation(tas, "riyadh", "health", b"pk"),
             "fund": lambda: chain.fund(tas.address, 1, tas)}
    for what, call in calls.items():
        with pytest.raises(ChainUnreachable, match="cannot reach the Ethereum node") as err:
            call()
        one_line(err.value)
        assert anvil.url in err.value.message, what


def test_now_is_never_behind_the_clock_or_the_chain():
    import time

    chain = connect()
    before = int(time.time())
    assert chain.now() >= max(before, chain.timestamp())


@pytest.mark.parametrize("rpc", ["127.0.0.1:8545", "ftp://host:1", "http://", "http://host:99999", "embedded:", ""])
def test_malformed_rpc(rpc):
    with pytest.raises(FogfedError) as err:
        connect(rpc)
    one_line(err.value)


def test_wrong_chain_id(chain):
    with pytest.raises(WrongChain) as err:
        connect(None if chain.is_embedded else chain.label, chain_id=chain.chain_id + 1)
    one_line(err.value)
    if not chain.is_embedded:
        assert connect(chain.label, chain_id=chain.chain_id).chain_id == chain.chain_id


def test_not_a_fogfed_contract(chain, fed, tas):
    with pytest.raises(NotFogFedContract) as err:
        FogFed.at(chain, tas.address)
    one_line(err.value)
    receipt = chain.send(tas, to=None, data=OTHER_CONTRACT, function="deploy other")
    with pytest.raises(NotFogFedContract) as err:
        FogFed.at(chain, receipt["contractAddress"])
    one_line(err.value)
    again = FogFed.at(chain, fed.address)
    assert again.deploy_block == fed.deploy_block
    assert again.settings() == fed.settings()


def test_insufficient_funds(chain, fed):
    broke = Account.create()
    with pytest.raises(InsufficientFunds) as err:
        fed.verify_member(broke, broke.address, "a", "b")
    one_line(err.value)


def test_revert_in_a_mined_transaction_is_decoded(chain, fed, tas):
    outsider = new_account(chain, tas)
    # An explicit gas limit skips estimation: the transaction is mined with status 0 and
    # the reason is recovered by replaying it as a call.
    with pytest.raises(ContractRevert) as err:
        fed._transact(outsider, "createFederation", "x", "y", b"\x01", 0, gas=300_000)
    assert err.value.error_name == "NotTas"
    one_line(err.value)


def test_every_custom_error_has_a_sentence():
    from fogfed.chain.artifacts import load_artifact
    from fogfed.chain.reverts import SENTENCES

    names = {i["name"] for i in load_artifact()["abi"] if i["type"] == "error"}
    assert names == set(SENTENCES)


def test_private_key_env_is_honoured(chain, tas, monkeypatch):
    funded = new_account(chain, tas)
    monkeypatch.setenv(PRIVATE_KEY_ENV, funded.key.hex())
    assert chain.dev_accounts()[0].address == funded.address
    monkeypatch.setenv(PRIVATE_KEY_ENV, "0x1234")
    with pytest.raises(InputError):
        chain.dev_accounts()


def test_fund(chain, tas):
    target = Account.create().address
    chain.fund(target, 12345, tas)
    assert chain.balance(target) == 12345
    with pytest.raises(InputError):
        chain.fund(target, -1, tas)
    with pytest.raises(InputError):
        chain.fund("0x1234", 1, tas)


def test_concurrent_senders_lose_and_duplicate_nothing(chain, tas):
    fed = deploy(chain, tas)
    fid = fed.create_federation(tas, "conc", "urrent", b"\x01").value
    members = [new_account(chain, tas) for _ in range(3)]
    fed.add_members(tas, fid, [m.address for m in members], [enc_key(m) for m in members])
    per_thread, errors, hashes = 6, [], []
    lock = threading.Lock()

    def work(sender):
        try:
            for _ in range(per_thread):
                h = fed.record_access(sender, b"\x01" * 32).tx_hash
                with lock:
                    hashes.append(h)
        except Exception as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)

    # two threads share the TAS account (one nonce sequence), three use their own accounts
    threads = [threading.Thread(target=work, args=(s,)) for s in [tas, tas, *members]]
    start = chain.w3.eth.get_transaction_count(tas.address)
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(hashes) == len(set(hashes)) == per_thread * len(threads)
    assert chain.w3.eth.get_transaction_count(tas.address) == start + 2 * per_thread
    denied = fed.events(names=["AccessDenied"])
    assert len(denied) == per_thread * len(threads)


def test_events_in_batches_and_ranges(chain, tas, monkeypatch):
    fed = deploy(chain, tas)
    fids = [fed.create_federation(tas, f"ev{i}", "batch", b"\x01").value for i in range(4)]
    monkeypatch.setattr(contract_module, "LOG_BATCH", 2)  # force several eth_getLogs requests
    created = fed.events(names=["FederationCreated"])
    assert [e.args["federationId"] for e in created] == fids
    assert [e.block_number for e in created] == sorted(e.block_number for e in created)
    all_events = fed.events()
    assert [e.name for e in all_events][:2] == ["AdminTransferred", "SettingsChanged"]
    last = created[-1].block_number
    assert [e.args["federationId"] for e in fed.events(from_block=last, names=["FederationCreated"])] == fids[-1:]
    with pytest.raises(FogfedError):
        fed.events(names=["NoSuchEvent"])


def test_embedded_dir_chain_persists(tmp_path):
    first = connect(f"embedded:{tmp_path}")
    tas = first.dev_accounts()[0]
    fed = deploy(first, tas)
    fid = fed.create_federation(tas, "persist", "ent", os.urandom(64)).value
    again = FogFed.at(connect(f"embedded:{tmp_path}"), fed.address)
    assert again.federation(fid).epoch == 0
