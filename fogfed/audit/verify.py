"""Compare a rebuilt state with the contract's own view functions at the same block."""

from __future__ import annotations

from typing import Any

from eth_utils import to_checksum_address
from web3 import Web3
from web3.exceptions import ContractLogicError, Web3Exception

from fogfed.audit.errors import AuditError
from fogfed.audit.findings import Finding
from fogfed.chain.artifacts import load_artifact
from fogfed.chain.mobility import NAME as MOBILITY


def _hex(value: Any) -> Any:
    return "0x" + value.hex() if isinstance(value, (bytes, bytearray)) else value


def verify(w3: Web3, address: str, state: dict[str, Any], block: int) -> list[Finding]:
    """Every difference between ``state`` and the contract's views at ``block``, as findings.

    A state replayed with a mobility contract also has that contract's ``fogfed`` view checked:
    it must serve this FogFed.
    """
    contract = w3.eth.contract(address=to_checksum_address(address), abi=load_artifact()["abi"])
    out: list[Finding] = []

    def view(name: str, *args: Any, on: Any = contract) -> Any:
        try:
            value = getattr(on.functions, name)(*args).call(block_identifier=block)
        except ContractLogicError as exc:
            return f"reverted: {exc}"
        except (Web3Exception, OSError, ValueError) as exc:
            raise AuditError(f"calling {name} at block {block} failed ({exc})",
                             "the node must keep state for that block (an archive node)") from exc
        return tuple(_hex(v) for v in value) if isinstance(value, (list, tuple)) else _hex(value)

    def check(subject: str, field: str, rebuilt: Any, onchain: Any) -> None:
        if rebuilt != onchain:
            out.append(Finding("state_mismatch", subject,
                               f"{field}: rebuilt {rebuilt!r}, contract says {onchain!r} at block {block}",
                               block=block))

    c = state["contract"]
    feds = state["federations"]
    mobility = (w3.eth.contract(address=to_checksum_address(state["mobility"]), abi=load_artifact(MOBILITY)["abi"])
                if state.get("mobility") else None)
    check("contract", "settings (admin, pendingAdmin, federationCount, falseClaimThreshold, maxCacheLifetime)",
          (c["admin"], c["pending_admin"], len(feds), c["false_claim_threshold"], c["max_cache_lifetime"]),
          view("settings"))
    # The admin is always an operator; every account ever named is checked.
    for account in {*c["operators"], *(a["admin"] for a in c["admins"])}:
        check(account, "isOperator", account == c["admin"] or c["operators"].get(account, False),
              view("isOperator", account))
    if mobility is not None:
        check(f"mobility contract {state['mobility']}", "fogfed (the FogFed it serves)",
              to_checksum_address(address), view("fogfed", on=mobility))
    for f in feds.values():
        subject = f"federation {f['id']}"
        check(subject, "federation", (f["public_key_commitment"], f["parent"], f["epoch"]),
              view("federation", f["id"]))
        check(subject, "federationByAttributes", f["id"], view("federationByAttributes", f["attrs_hash"]))
        if not f["public_key_matches"]:
            out.append(Finding("state_mismatch", subject, "the public key in FederationCreated does not hash "
                               "to its commitment", [f["created"]["tx"]], f["created"]["block"]))
    for m in state["members"].values():
        check(m["address"], "member",
              (m["federation_id"], m["active"], m["false_claims"], m["generation"], m["joined_at"],
               m["encryption_key"]), view("member", m["address"]))
        check(m["address"], "peerBlocks", (m["key_block"], m["endpoint_block"]), view("peerBlocks", m["address"]))
    members_of: dict[int, str] = {}
    for m in state["members"].values():
        if m["active"]:
            members_of.setdefault(m["federation_id"], m["address"])
    for f in state["files"].values():
        # Sharing is only readable through hasAccess: ask it for one active member of each shared federation.
        for fed in f["shared_with"]:
            if fed in members_of:
                check(f"file {f['file_id']}", f"hasAccess(member of federation {fed})", True,
                      view("hasAccess", members_of[fed], f["file_id"]))
        check(f"file {f['file_id']}", "file",
              (f["plaintext_hash"], f["enc_sk_ref"], f["policy_ref"], f["uploader"], f["federation_id"],
               f["epoch"], f["registered_at"], f["damaged_at"]), view("file", f["file_id"]))
        holders = state["caches"].get(f["file_id"], {})
        total = view("freshCacheHolders", f["file_id"], 0, 0)
        check(f"file {f['file_id']}", "cache announcements", len(holders),
              total[2] if isinstance(total, tuple) else total)
        for holder, entry in holders.items():
            check(f"file {f['file_id']}", f"cacheExpiry({holder})", entry["expires_at"],
                  view("cacheExpiry", f["file_id"], holder))
    return out


#: For tests: the views this module reads, so a test can compare with the ABI.
VIEWS_READ: tuple[str, ...] = ("settings", "isOperator", "federation", "federationByAttributes", "member",
                               "peerBlocks", "file", "hasAccess", "freshCacheHolders", "cacheExpiry")
#: The FogFedMobility views it reads.
MOBILITY_VIEWS_READ: tuple[str, ...] = ("fogfed",)
