"""Helpers shared by the chain tests."""

from __future__ import annotations

import uuid

from eth_account import Account
from eth_account.signers.local import LocalAccount

from fogfed.chain import Chain

FUNDING = 10**18


def new_account(chain: Chain, funder: LocalAccount, wei: int = FUNDING) -> LocalAccount:
    """A brand-new account with ``wei`` from ``funder``."""
    acct = Account.create()
    if wei:
        chain.fund(acct.address, wei, funder)
    return acct


def enc_key(acct: LocalAccount) -> bytes:
    """A stand-in X25519 public key (32 nonzero-ish bytes) derived from the address."""
    return bytes.fromhex(acct.address[2:]) + b"\x01" * 12


def unique_attrs() -> tuple[str, str]:
    """Attributes no other test uses (federations are global to a deployment)."""
    tag = uuid.uuid4().hex[:12]
    return f"loc-{tag}", f"svc-{tag}"


def advance_time(chain: Chain, seconds: int) -> None:
    """Move the chain's clock forward and mine a block."""
    if chain.is_embedded:
        tester = chain.w3.provider.ethereum_tester
        tester.time_travel(chain.w3.eth.get_block("latest")["timestamp"] + seconds)
        tester.mine_blocks(1)
    else:
        chain.w3.provider.make_request("evm_increaseTime", [seconds])
        chain.w3.provider.make_request("evm_mine", [])


def now(chain: Chain) -> int:
    """Timestamp of the latest block."""
    return int(chain.w3.eth.get_block("latest")["timestamp"])
