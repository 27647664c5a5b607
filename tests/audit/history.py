"""Scripted FogFed histories on a real Anvil node, for the auditor's tests.

Every transaction is real (deployed artifact, Anvil's unlocked default
accounts). ``clean_history`` exercises every event of the ABI without any
anomaly; the scenario functions each add exactly one kind of anomaly.
"""

from __future__ import annotations

import hashlib
from typing import Any

from eth_abi import encode
from eth_utils import keccak
from web3 import Web3
from web3.contract import Contract

from fogfed.chain.artifacts import load_artifact
from fogfed.protocol.files import file_id_for

ZERO = "0x0000000000000000000000000000000000000000"
XSS = "<script>alert('x')</script>"
FORMULA_POLICY = '=HYPERLINK("http://evil.example","x") and storage'


def attrs_hash(location: str, service: str) -> bytes:
    """The contract's attributes hash: keccak256(abi.encode(keccak256(location), keccak256(service)))."""
    return keccak(encode(["bytes32", "bytes32"], [keccak(text=location), keccak(text=service)]))


def digest(label: str) -> bytes:
    return hashlib.sha256(label.encode()).digest()


class Script:
    """A deployment plus helpers that send one transaction each and check it succeeded."""

    def __init__(self, w3: Web3) -> None:
        self.w3 = w3
        self.accounts = w3.eth.accounts
        self.tas = self.accounts[0]
        art = load_artifact()
        tx = w3.eth.contract(abi=art["abi"], bytecode=art["bytecode"]).constructor().transact({"from": self.tas})
        receipt = w3.eth.wait_for_transaction_receipt(tx)
        self.deploy_block = receipt.blockNumber
        self.c: Contract = w3.eth.contract(address=receipt.contractAddress, abi=art["abi"])
        self.address = receipt.contractAddress
        # leaves assigned in each federation's current tree generation, as far as this script knows
        # (a lower bound after a refresh, which renumbers the active members from 0)
        self.assigned: dict[int, int] = {}
        self.generation: dict[int, int] = {}

    def send(self, sender: str, fn: str, *args: Any, **tx: Any) -> Any:
        h = getattr(self.c.functions, fn)(*args).transact({"from": sender, **tx})
        receipt = self.w3.eth.wait_for_transaction_receipt(h)
        assert receipt.status == 1, fn
        if fn in ("addMember", "addMembers"):
            self.assigned[args[0]] = self.assigned.get(args[0], 0) + (len(args[1]) if fn == "addMembers" else 1)
        elif fn == "bumpEpoch":
            self.generation[args[0]] = self.generation.get(args[0], 0) + 1
            self.assigned[args[0]] = 0
        return receipt

    def mine(self, blocks: int = 1, seconds: int = 0) -> None:
        if seconds:
            self.w3.provider.make_request("evm_increaseTime", [seconds])
        self.w3.provider.make_request("anvil_mine", [hex(blocks)])

    def now(self) -> int:
        return self.w3.eth.get_block("latest")["timestamp"]

    def federation(self, location: str, service: str, parent: int = 0) -> int:
        self.send(self.tas, "createFederation", location, service, digest(location + service), parent)
        return self.c.functions.settings().call()[2]

    def enrol(self, fed: int, *nodes: str) -> None:
        self.send(self.tas, "addMembers", fed, list(nodes), [digest("ek" + n) for n in nodes])

    def upload(self, node: str, fed: int, label: str, policy: str = "paris and storage") -> bytes:
        """Register a file the way nodes do: the policy with the cover descriptor of ``fed``'s tree now."""
        epoch = self.c.functions.federation(fed).call()[2]
        descriptor = f"{policy} and cover({fed}:{self.generation.get(fed, 0)}:{epoch}:{self.assigned.get(fed, 0)})"
        self.send(node, "registerFile", fed, digest(label), 0, digest("pt" + label), digest("sk" + label),
                  epoch, descriptor)
        return file_id_for(node, digest(label))

    def announce(self, node: str, file_id: bytes, seconds: int = 3600) -> None:
        self.send(node, "announceCache", file_id, self.now() + seconds)


def base(s: Script) -> dict[str, Any]:
    """Two federations, four members, one file: the start of every scenario."""
    a = s.accounts
    f1 = s.federation("paris", "storage")
    f2 = s.federation("lyon", "storage", f1)
    s.enrol(f1, a[1], a[2], a[3])
    s.enrol(f2, a[4])
    file_a = s.upload(a[1], f1, "a")
    return {"f1": f1, "f2": f2, "file_a": file_a}


def clean_history(s: Script) -> dict[str, Any]:
    """Every event kind the ABI has, no anomaly: federations, joins, uploads, accesses,
    caches, one damage report, key delivery, an automatic and manual removals, nodes that
    left one federation and joined another."""
    a = s.accounts
    ids = base(s)
    f1, f2, file_a = ids["f1"], ids["f2"], ids["file_a"]
    f3 = s.federation(XSS, "compute", f1)
    s.enrol(f1, a[5])
    s.send(s.tas, "addMember", f3, a[6], digest("ek6"))
    file_b = s.upload(a[2], f1, "b", FORMULA_POLICY)
    file_d = s.upload(a[4], f2, "d", "lyon and storage")  # asked for by a[3] below (its false claims)
    s.send(a[2], "recordAccess", file_a)                    # granted
    s.send(a[4], "recordAccess", file_a)                    # denied once: other federation (false claim 1)
    s.send(a[7], "recordAccess", file_b)                    # denied once: not a member
    s.announce(a[3], file_a)
    s.send(a[3], "withdrawCache", file_a, a[3])                  # withdrawn by holder
    s.announce(a[5], file_b, 3 * 86400 // 2 // 2)           # still fresh at the end
    s.announce(a[1], file_b, 30)
    s.mine(1, seconds=60)
    s.send(a[7], "withdrawCache", file_b, a[1])                # expired: pruned by anyone
    s.send(a[2], "reportDamage", file_a, ZERO, 1)           # one damage report on the stored copy
    s.send(a[7], "verifyMember", a[1], attrs_hash("paris", "storage"))
    s.send(s.tas, "deliverKey", a[6], f3, 0, b"sealed-key-for-a6")
    s.send(s.tas, "bumpEpoch", f2, s.c.functions.federation(f2).call()[2], b"\x07" * 32)
    s.send(s.tas, "configure", 2, 2 * 86400)                # 2 strikes, below the auditor's probing threshold
    s.send(s.tas, "beginAdminTransfer", a[8])
    s.send(a[8], "acceptAdmin")
    s.send(a[8], "setOperator", s.tas, True)                # the old admin stays TAS as an operator
    s.send(a[8], "setOperator", a[9], True)
    s.send(a[8], "setOperator", a[9], False)
    s.mine(20)                                               # keep removals away from a[3]'s writes
    for _ in range(2):                                       # automatic removal of a[3]: 2 observed false claims
        s.send(a[3], "recordAccess", file_d)
    s.send(s.tas, "removeMember", a[4])                      # manual removal
    s.send(s.tas, "removeMember", a[6])                      # a[6] leaves f3 ...
    s.mine(20)
    s.send(s.tas, "addMember", f2, a[6], digest("ek6-f2"))     # ... and joins f2
    s.send(s.tas, "addMember", f2, a[3], digest("ek3-again"))  # a[3] left f1, joins f2
    file_c = s.upload(a[6], f2, "c", "lyon and storage")
    s.send(a[1], "setEndpoint", "http://10.0.0.1:8123/" + XSS)
    s.send(a[1], "shareFile", file_a, f2)
    s.send(a[3], "recordAccess", file_a)                    # granted through the share
    return {**ids, "f3": f3, "file_b": file_b, "file_c": file_c, "file_d": file_d}
