"""Rebuild the whole FogFed state and its history from decoded events alone.

:class:`Rebuild` applies events in chain order. It keeps what the contract
keeps (to verify against its views) plus the history an auditor asks for
(joins, removals, key deliveries, epochs, damage) and a few bounded counters
the anomaly checks read. Individual accesses are counted here and listed
from the checkpoint's event table, so memory does not grow with the number
of accesses. Every ABI event has a handler; :data:`HANDLED_EVENTS` lists them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from eth_utils import keccak

from fogfed.audit.abi import Event
from fogfed.errors import InputError
from fogfed.keys.cover import cover
from fogfed.protocol.attributes import FIRST_HEIGHT, generation_height
from fogfed.protocol.membertree import GENERATION, descriptor_covers

ZERO_ADDRESS = "0x0000000000000000000000000000000000000000"
#: How many transactions a counter keeps as evidence.
EVIDENCE_TXS = 10

REMOVAL_REASONS = {1: "removed by TAS", 2: "automatic: false-claim threshold reached"}
EPOCH_REASONS = {1: "member removed", 2: "re-key by TAS"}
DENIAL_REASONS = {1: "unknown file", 2: "not a member", 3: "removed member", 4: "other federation"}
INTACT = 0  # FileDamaged reason of reportIntact: the stored copy was retrieved intact
DAMAGE_REASONS = {1: "plaintext hash mismatch", 2: "ciphertext failed authentication", 3: "copy unavailable"}


@dataclass(frozen=True)
class RebuildConfig:
    """Knobs of the order-dependent checks, fixed for a whole replay.

    near_removal_blocks: a file registration or cache announcement by a node
    this many blocks (or fewer) before or after its removal is flagged.
    """

    near_removal_blocks: int = 10
    #: The FogFedMobility contract replayed along (None: FogFed alone, no backward-secrecy setting on chain).
    mobility: str | None = None


def _new_tree() -> dict[str, Any]:
    """A federation's member tree before its first member: generation 0 of FIRST_HEIGHT."""
    return {"generation": GENERATION, "height": FIRST_HEIGHT, "heights": {str(GENERATION): FIRST_HEIGHT},
            "assigned": 0, "leaves": {}, "revoked": [], "waiting": []}


def _where(e: Event) -> dict[str, Any]:
    return {"block": e.block, "tx": e.tx, "time": e.timestamp}


def _evidence(counter: dict[str, Any], e: Event) -> None:
    counter["count"] += 1
    if len(counter["txs"]) < EVIDENCE_TXS:
        counter["txs"].append(e.tx)


class Rebuild:
    """The state rebuilt so far; ``apply`` one event at a time, in chain order."""

    def __init__(self, config: RebuildConfig | None = None, data: dict[str, Any] | None = None) -> None:
        self.config = config or RebuildConfig()
        self.data: dict[str, Any] = data if data is not None else self.empty(self.config.mobility)
        self._block_registrations: list[tuple[int, Event]] = []  # this block's registrations

    @staticmethod
    def empty(mobility: str | None = None) -> dict[str, Any]:
        """A state with nothing in it (before the deployment); ``mobility``: the mobility contract replayed."""
        return {
            "mobility": mobility, "moves": [],
            "contract": {"admin": ZERO_ADDRESS, "pending_admin": ZERO_ADDRESS, "operators": {}, "admins": [],
                         "false_claim_threshold": 0, "max_cache_lifetime": 0, "settings": []},
            "federations": {}, "members": {}, "files": {}, "caches": {},
            "removals": [], "damage": [], "intact": [], "shares": [], "verifications": {"count": 0, "failed": 0},
            "accesses": {"granted": 0, "denied": 0},
            "denied_by": {}, "damage_by_uploader": {}, "damage_by_holder": {},
            "signals": [], "unhandled": {}, "events": 0, "last_block": None,
        }

    # -- entry point -------------------------------------------------------
    def apply(self, e: Event) -> None:
        """Apply one decoded event (events must come in (block, log index) order)."""
        d = self.data
        d["events"] += 1
        d["last_block"] = e.block
        if self._block_registrations and self._block_registrations[0][0] != e.block:
            self._block_registrations.clear()
        handler = _HANDLERS.get(e.name)
        if handler is None:
            d["unhandled"][e.name] = d["unhandled"].get(e.name, 0) + 1
            return
        handler(self, e)

    # -- roles and settings ------------------------------------------------
    def _admin_transferred(self, e: Event) -> None:
        c = self.data["contract"]
        c["admin"], c["pending_admin"] = e.args["newAdmin"], ZERO_ADDRESS
        c["admins"].append({"admin": e.args["newAdmin"], **_where(e)})

    def _admin_transfer_started(self, e: Event) -> None:
        self.data["contract"]["pending_admin"] = e.args["pendingAdmin"]

    def _operator_changed(self, e: Event) -> None:
        self.data["contract"]["operators"][e.args["account"]] = e.args["enabled"]

    def _settings_changed(self, e: Event) -> None:
        c = self.data["contract"]
        c["false_claim_threshold"] = e.args["falseClaimThreshold"]
        c["max_cache_lifetime"] = e.args["maxCacheLifetime"]
        c["settings"].append({"false_claim_threshold": e.args["falseClaimThreshold"],
                              "max_cache_lifetime": e.args["maxCacheLifetime"], "by": e.args["by"], **_where(e)})

    # -- federations -------------------------------------------------------
    def _federation_created(self, e: Event) -> None:
        a = e.args
        fid = str(a["federationId"])
        self.data["federations"][fid] = {
            "id": a["federationId"], "location": a["location"], "service": a["service"],
            "attrs_hash": a["attrsHash"], "parent": a["parent"],
            "public_key_commitment": a["publicKeyCommitment"],
            # The commitment is a prefix of keccak256(publicKey) (its width is the ABI's).
            "public_key_matches": ("0x" + keccak(hexstr=a["publicKey"]).hex()).startswith(a["publicKeyCommitment"]),
            "public_key_size": (len(a["publicKey"]) - 2) // 2,
            "epoch": 0, "epochs": [], "created_at": e.timestamp, "created": _where(e),
            "joined": [], "left": [], "keys_delivered": 0,
            # The member tree (revocation inside the policy): leaves in MemberAdded order, never reused.
            "tree": _new_tree(),
        }

    def _epoch_advanced(self, e: Event) -> None:
        fid = e.args["federationId"]
        f = self.data["federations"][str(fid)]
        f["epoch"] = e.args["epoch"]
        f["epochs"].append({"epoch": e.args["epoch"], "reason": e.args["reason"],
                            "reason_text": EPOCH_REASONS.get(e.args["reason"], "unknown"), **_where(e)})
        # A registration earlier in this same block used keys this advance retires.
        for _, reg in self._block_registrations:
            if reg.args["federationId"] == fid and reg.args["epoch"] < e.args["epoch"]:
                self._signal("stale_epoch", reg, reg.args["uploader"], [reg.tx, e.tx],
                             f"file {reg.args['fileId']} was registered under epoch {reg.args['epoch']} of "
                             f"federation {fid} in the same block that advanced it to {e.args['epoch']} "
                             f"({EPOCH_REASONS.get(e.args['reason'], 'unknown')}): keys being retired can open it")

    def _tree_refreshed(self, e: Event) -> None:
        """A new member-tree generation: active members keep their order, leaves 0..m-1, nothing revoked."""
        f = self.data["federations"][str(e.args["federationId"])]
        tree = f.setdefault("tree", _new_tree())
        order = sorted(tree["leaves"], key=tree["leaves"].get) + tree.get("waiting", [])
        height = generation_height(len(order))
        f.setdefault("refreshes", []).append({"generation": tree["generation"] + 1, "epoch": f["epoch"],
                                              "bundle": e.args["bundle"], "members": len(order), "height": height,
                                              "waiting_before": len(tree.get("waiting", [])),
                                              "revoked_before": len(tree["revoked"]), **_where(e)})
        # earlier generations' heights: the covers of files registered under them are checked against these
        tree.setdefault("heights", {str(GENERATION): FIRST_HEIGHT})[str(tree["generation"] + 1)] = height
        tree.update(generation=tree["generation"] + 1, assigned=len(order), revoked=[], waiting=[], height=height,
                    leaves={node: i for i, node in enumerate(order)})

    # -- members -----------------------------------------------------------
    def _member(self, node: str) -> dict[str, Any]:
        return self.data["members"][node]

    def _member_added(self, e: Event) -> None:
        a = e.args
        node, fid = a["node"], a["federationId"]
        old = self.data["members"].get(node)
        self.data["members"][node] = {
            "address": node, "federation_id": fid, "active": True, "false_claims": 0,
            "generation": a["generation"], "joined_at": e.timestamp, "encryption_key": a["encryptionKey"],
            "history": (old["history"] if old else []) + [{"kind": "joined", "federation_id": fid, **_where(e)}],
            "last_write": old["last_write"] if old else None,
            "last_removal": old["last_removal"] if old else None,
            # The contract keeps these across removals and re-enrolments.
            "endpoint": old["endpoint"] if old else None,
            "endpoint_block": old["endpoint_block"] if old else 0,
            "key_block": old["key_block"] if old else 0,
        }
        tree = self.data["federations"][str(fid)].setdefault("tree", _new_tree())
        if tree["assigned"] >= 1 << tree.get("height", FIRST_HEIGHT):
            # the tree was full: no leaf until the next refresh (the TAS refreshes before a join; another
            # operator or a raw transaction did not)
            tree.setdefault("waiting", []).append(node)
            self.data["members"][node]["leaf"] = None
            self.data["federations"][str(fid)]["joined"].append({"node": node, "leaf": None, **_where(e)})
            self._signal("tree_full_join", e, node, [e.tx],
                         f"{node} was added to federation {fid} while its member tree (generation "
                         f"{tree['generation']}, {1 << tree.get('height', FIRST_HEIGHT)} leaves) was full: it "
                         f"holds no leaf and reads nothing new until the next refresh")
            return
        leaf = tree["assigned"]
        tree["leaves"][node], tree["assigned"] = leaf, leaf + 1
        self.data["members"][node]["leaf"] = leaf
        self.data["federations"][str(fid)]["joined"].append({"node": node, "leaf": leaf, **_where(e)})

    def _member_removed(self, e: Event) -> None:
        a = e.args
        m = self._member(a["node"])
        m["active"] = False
        reason = REMOVAL_REASONS.get(a["reason"], "unknown")
        record = {"node": a["node"], "federation_id": a["federationId"], "reason": a["reason"],
                  "reason_text": reason, "automatic": a["reason"] == 2, "by": a["by"], **_where(e)}
        pending = m.pop("pending_note", None)
        if pending is not None and pending["tx"] == e.tx:  # removeMember's RemovalNoted, just before
            record["note"] = pending["note"]
        if record["automatic"]:
            # The FalseClaimCounted of the same transaction tipped the count: its file and count, and
            # `by` (the account that sent it, the member itself) are the trigger.
            claim = next((h for h in reversed(m["history"]) if h["kind"] == "false_claim" and h["tx"] == e.tx), None)
            if claim is not None:
                record["trigger"] = {"file_id": claim["evidence"], "count": claim["count"], "account": a["by"]}
        fed = self.data["federations"][str(a["federationId"])]
        tree = fed.get("tree")
        if tree is not None and a["node"] in tree.get("waiting", []):
            tree["waiting"].remove(a["node"])
        if tree is not None and a["node"] in tree["leaves"]:
            # revoked from the epoch this removal's own EpochAdvanced sets
            record["leaf"] = tree["leaves"].pop(a["node"])
            tree["revoked"].append([record["leaf"], fed["epoch"] + 1])
        m["history"].append({"kind": "removed", **record})
        self.data["removals"].append(record)
        self.data["federations"][str(a["federationId"])]["left"].append(record)
        last = m["last_write"]
        if last and e.block - last["block"] <= self.config.near_removal_blocks:
            self._signal("write_near_removal", e, a["node"], [last["tx"], e.tx],
                         f"{a['node']} made a {last['kind']} {e.block - last['block']} block(s) before its removal "
                         f"from federation {a['federationId']} ({reason})")
        m["last_removal"] = {"block": e.block, "tx": e.tx}

    def _removal_noted(self, e: Event) -> None:
        # removeMember emits it just before MemberRemoved, which takes it into the removal record.
        self._member(e.args["node"])["pending_note"] = {"tx": e.tx, "note": e.args["note"]}

    def _key_delivered(self, e: Event) -> None:
        a = e.args
        m = self._member(a["node"])
        m["key_block"] = e.block
        m["history"].append({
            "kind": "key_delivered", "federation_id": a["federationId"], "epoch": a["epoch"],
            "sealed_key_size": (len(a["sealedKey"]) - 2) // 2, **_where(e)})
        self.data["federations"][str(a["federationId"])]["keys_delivered"] += 1

    def _endpoint_set(self, e: Event) -> None:
        m = self._member(e.args["node"])
        m["endpoint"], m["endpoint_block"] = e.args["url"], e.block
        m["history"].append({"kind": "endpoint_set", "url": e.args["url"], **_where(e)})

    def _file_shared(self, e: Event) -> None:
        a = e.args
        shares = self.data["files"][a["fileId"]]["shared_with"]
        if a["federationId"] not in shares:
            shares.append(a["federationId"])
        self.data["shares"].append({"file_id": a["fileId"], "federation_id": a["federationId"], "by": a["by"],
                                    **_where(e)})

    def _false_claim(self, e: Event) -> None:
        a = e.args
        m = self._member(a["suspect"])
        m["false_claims"] = a["count"]
        m["history"].append({"kind": "false_claim", "reporter": a["reporter"], "count": a["count"],
                             "evidence": a["evidence"], **_where(e)})

    def _verified(self, e: Event) -> None:
        v = self.data["verifications"]
        v["count"] += 1
        v["failed"] += 0 if e.args["result"] else 1

    # -- files, accesses, damage -------------------------------------------
    def _file_registered(self, e: Event) -> None:
        a = e.args
        fid = a["federationId"]
        fed = self.data["federations"][str(fid)]
        self.data["files"][a["fileId"]] = {
            "file_id": a["fileId"], "federation_id": fid, "uploader": a["uploader"],
            "content_digest": a["contentDigest"],
            "plaintext_hash": a["plaintextHash"], "enc_sk_ref": a["encSkRef"], "epoch": a["epoch"],
            "cid_codec": a["cidCodec"], "policy": a["policy"],
            "policy_ref": "0x" + keccak(a["policy"].encode("utf-8", "surrogateescape")).hex(),
            "registered_at": e.timestamp, "registered": _where(e), "damaged_at": 0,
            "granted": 0, "denied": 0, "damage_reports": 0, "shared_with": [],
        }
        if a["epoch"] != fed["epoch"]:
            self._signal("stale_epoch", e, a["uploader"], [e.tx],
                         f"file {a['fileId']} registered under epoch {a['epoch']} while federation {fid} "
                         f"was at epoch {fed['epoch']} (the contract should have refused it)")
        self._check_cover(e)
        self._block_registrations.append((e.block, e))
        self._note_write(e, a["uploader"], "file registration")

    def _check_cover(self, e: Event) -> None:
        """The registered descriptor must name a cover of every federation it covers as the chain had it."""
        a = e.args
        try:
            parts = descriptor_covers(a["policy"])
        except InputError:
            self._signal("uncovered_file", e, a["uploader"], [e.tx],
                         f"file {a['fileId']} was registered without a member-tree cover: removed members of its "
                         f"federation may be able to read it")
            return
        record = self.data["files"][a["fileId"]]
        record["covers"] = {}
        for fid, (gen, epoch, assigned, open_) in sorted(parts.items()):
            fed = self.data["federations"].get(str(fid))
            tree = fed.get("tree") if fed else None
            if tree is None or gen != tree["generation"] or assigned > tree["assigned"] or open_ \
                    or epoch > fed["epoch"]:
                self._signal("uncovered_file", e, a["uploader"], [e.tx],
                             f"file {a['fileId']} names cover {fid}:{gen}:{epoch}:{assigned} that federation "
                             f"{fid}'s tree did not have at registration")
                continue
            # registerFile checks only the own federation's epoch: a cover of one the file is shared
            # with may predate a removal there, and then the removed node's leaf is in it
            late = sorted(leaf for leaf, since in tree["revoked"] if epoch < since <= fed["epoch"])
            if late:
                self._signal("stale_cover", e, a["uploader"], [e.tx],
                             f"file {a['fileId']} names cover {fid}:{gen}:{epoch}:{assigned}, but federation {fid} "
                             f"had revoked leaves {', '.join(map(str, late))} since (epoch {fed['epoch']} at "
                             f"registration): those removed nodes may read it, and fetchers refuse it")
            revoked = [leaf for leaf, since in tree["revoked"] if since <= epoch]
            height = tree.get("height", FIRST_HEIGHT)
            record["covers"][str(fid)] = {"generation": gen, "height": height, "epoch": epoch, "assigned": assigned,
                                          "revoked": len(revoked),
                                          "nodes": len(cover(height, revoked, assigned, root=False))}

    def _note_write(self, e: Event, node: str, kind: str) -> None:
        m = self._member(node)
        m["last_write"] = {"block": e.block, "tx": e.tx, "kind": kind}
        last = m["last_removal"]
        if last and e.block - last["block"] <= self.config.near_removal_blocks:
            self._signal("write_near_removal", e, node, [last["tx"], e.tx],
                         f"{node} made a {kind} {e.block - last['block']} block(s) after its removal")

    def _access_granted(self, e: Event) -> None:
        self.data["accesses"]["granted"] += 1
        f = self.data["files"].get(e.args["fileId"])
        if f:
            f["granted"] += 1

    def _access_denied(self, e: Event) -> None:
        a = e.args
        self.data["accesses"]["denied"] += 1
        f = self.data["files"].get(a["fileId"])
        if f:
            f["denied"] += 1
        counter = self.data["denied_by"].setdefault(a["node"], {"count": 0, "txs": [], "reasons": {}})
        _evidence(counter, e)
        reason = DENIAL_REASONS.get(a["reason"], "unknown")
        counter["reasons"][reason] = counter["reasons"].get(reason, 0) + 1

    def _damaged(self, e: Event) -> None:
        a = e.args
        f = self.data["files"][a["fileId"]]
        if a["reason"] == INTACT:  # reportIntact: the stored copy was retrieved intact, mark cleared
            f["damaged_at"] = 0
            self.data["intact"].append({"file_id": a["fileId"], "reporter": a["reporter"], **_where(e)})
            return
        f["damage_reports"] += 1
        if a["holder"] == ZERO_ADDRESS:
            f["damaged_at"] = e.timestamp
            target, table = f["uploader"], "damage_by_uploader"
        else:
            target, table = a["holder"], "damage_by_holder"
            held = self.data["caches"].get(a["fileId"], {}).get(a["holder"])
            if held is not None:
                held["damaged"] = True  # the announcement stays; fetchers try this holder last
        _evidence(self.data[table].setdefault(target, {"count": 0, "txs": []}), e)
        self.data["damage"].append({"file_id": a["fileId"], "reporter": a["reporter"], "holder": a["holder"],
                                    "reason": a["reason"], "reason_text": DAMAGE_REASONS.get(a["reason"], "unknown"),
                                    "uploader": f["uploader"], **_where(e)})

    # -- caches --------------------------------------------------------------
    def _cache_announced(self, e: Event) -> None:
        a = e.args
        self.data["caches"].setdefault(a["fileId"], {})[a["holder"]] = {
            "expires_at": a["expiresAt"], "announced": _where(e), "damaged": False}
        self._note_write(e, a["holder"], "cache announcement")

    def _cache_withdrawn(self, e: Event) -> None:
        holders = self.data["caches"].get(e.args["fileId"], {})
        holders.pop(e.args["holder"], None)
        if not holders:
            self.data["caches"].pop(e.args["fileId"], None)

    # -- mobility contract -----------------------------------------------------
    def _member_moved(self, e: Event) -> None:
        # Emitted after FogFed's MemberRemoved + MemberAdded of the same transaction: relabel them.
        a = e.args
        node, src, dst = a["node"], a["fromFederation"], a["toFederation"]
        move = {"node": node, "from": src, "to": dst, "level": a["level"], "operator": a["operator"], **_where(e)}
        self.data["moves"].append(move)
        m = self._member(node)
        left = self.data["federations"][str(src)]["left"]
        for r in _in_tx(e.tx, node, "removed", m["history"], self.data["removals"], left):
            r.update(fogfed_reason=r["reason"], reason="moved", reason_text=f"moved to federation {dst}",
                     to=dst, level=a["level"])
        for r in _in_tx(e.tx, node, "joined", m["history"], self.data["federations"][str(dst)]["joined"]):
            r.update(moved_from=src, level=a["level"])
        # A handover is no punishment: writes around it are not "around a removal".
        self.data["signals"] = [s for s in self.data["signals"] if not (
            s["kind"] == "write_near_removal" and s["subject"] == node and e.tx in s["txs"])]
        m["last_removal"] = None

    def _signal(self, kind: str, e: Event, subject: str, txs: list[str], message: str) -> None:
        self.data["signals"].append({"kind": kind, "subject": subject, "message": message,
                                     "txs": txs, "block": e.block})


def _in_tx(tx: str, node: str, kind: str, history: list[dict[str, Any]],
           *lists: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The ``kind`` entry of ``tx`` in a member's history and the matching records of ``lists``
    (the same dict objects until a snapshot round-trip separates them)."""
    found = [h for h in history if h["tx"] == tx and h["kind"] == kind]
    found += [r for rows in lists for r in rows if r["tx"] == tx and r["node"] == node]
    return list({id(r): r for r in found}.values())  # each object once


_HANDLERS: dict[str, Callable[[Rebuild, Event], None]] = {
    "AdminTransferred": Rebuild._admin_transferred,
    "AdminTransferStarted": Rebuild._admin_transfer_started,
    "OperatorChanged": Rebuild._operator_changed,
    "SettingsChanged": Rebuild._settings_changed,
    "FederationCreated": Rebuild._federation_created,
    "EpochAdvanced": Rebuild._epoch_advanced,
    "TreeRefreshed": Rebuild._tree_refreshed,
    "MemberAdded": Rebuild._member_added,
    "MemberRemoved": Rebuild._member_removed,
    "RemovalNoted": Rebuild._removal_noted,
    "KeyDelivered": Rebuild._key_delivered,
    "EndpointSet": Rebuild._endpoint_set,
    "FileShared": Rebuild._file_shared,
    "FalseClaimCounted": Rebuild._false_claim,
    "MemberVerified": Rebuild._verified,
    "FileRegistered": Rebuild._file_registered,
    "AccessGranted": Rebuild._access_granted,
    "AccessDenied": Rebuild._access_denied,
    "FileDamaged": Rebuild._damaged,
    "CacheAnnounced": Rebuild._cache_announced,
    "CacheWithdrawn": Rebuild._cache_withdrawn,
    # FogFedMobility's events (replayed when a mobility contract is given)
    "MemberMoved": Rebuild._member_moved,
}

#: Names of the events the rebuild understands (FogFed's and FogFedMobility's).
HANDLED_EVENTS: frozenset[str] = frozenset(_HANDLERS)
