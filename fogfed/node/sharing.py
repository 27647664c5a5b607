"""Policies that span federations: every federation's attributes, and the upload policy
``(P) and (cover of each federation that satisfies P)`` with the descriptor registered on chain."""

from __future__ import annotations

from fogfed.errors import InputError
from fogfed.node.membership import Membership
from fogfed.protocol.attributes import check_user_policy, federation_attribute, policy_descriptor, scoped_policy


class Sharing(Membership):
    """The federations a FogNode's uploads are shared with, and their policies."""

    def _federation_attributes(self) -> dict[int, tuple[str, str]]:
        """(location, service) of every federation, from FederationCreated events, remembered locally."""
        known = {int(k): tuple(v) for k, v in self.config.get("federations", {}).items()}
        if len(known) < self.fed.settings().federation_count:
            start = max(self.config.get("federations_block", 0), self.fed.deploy_block)
            for e in self.fed.events(start, names=["FederationCreated"]):
                known[e.args["federationId"]] = (e.args["location"], e.args["service"])
                self.config["federations_block"] = e.block_number
            self.config["federations"] = {str(k): list(v) for k, v in known.items()}
            self._save_config()
        return known

    def _policy_for(self, policy: str | None, fid: int) -> tuple[str, str, int, dict[int, int]]:
        """(CP-ABE policy, compact descriptor to register, own epoch, other federations to share with).

        The policy is ``(P) and (cover of each federation that satisfies P)``
        (docs/architecture.md, "Revocation inside the policy"); the descriptor
        names each cover by (generation, epoch, assigned leaves) so anyone can
        recompute it, and the contract refuses it once the own epoch is stale.
        """
        parsed = check_user_policy(federation_attribute(fid) if policy is None else policy)
        trees = {fid: self.member_tree(fid)}
        if policy is not None:
            for other, (loc, svc) in self._federation_attributes().items():
                if other != fid and parsed.satisfied_by([f"loc:{loc}", f"svc:{svc}", f"ff:{other}"]):
                    tree = self.member_tree(other)
                    if tree.leaves:  # a federation without members cannot read anything
                        trees[other] = tree
        if not parsed.satisfied_by(self._own_attributes(fid)):
            trees.pop(fid)  # the policy excludes the uploader's own federation (it still registers the file)
            if not trees:
                raise InputError("no federation can satisfy this policy",
                                 "name attributes of a federation that has members")
        clauses = {f: t.clause() for f, t in trees.items()}
        descriptor = policy_descriptor(parsed, {f: t.descriptor() for f, t in trees.items()})
        epoch = self._trees[fid].epoch
        return scoped_policy(parsed, clauses), descriptor, epoch, {f: t.epoch for f, t in trees.items() if f != fid}

    def _own_attributes(self, fid: int) -> list[str]:
        loc, svc = self._federation_attributes().get(fid, ("", ""))
        return [f"loc:{loc}", f"svc:{svc}", f"ff:{fid}"]

