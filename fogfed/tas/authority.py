"""The TAS: one CP-ABE authority for the whole system, federations, enrollment, removal, re-keying.

Paper Algorithm 1 runs once (``init``): the master key and the TAS's Ethereum
key live only in the encrypted keystore ``<home>/tas.json``. Every
federation's FFPK on chain is this one system public key (the deviation from
the paper's per-federation key pair that lets a policy span federations).
A removal advances the federation's epoch on chain; the TAS then issues every
remaining member a key for the new epoch and delivers it sealed on chain.
"""

from __future__ import annotations

from pathlib import Path

from fogfed.errors import FogfedError
from fogfed.keys.keystore import KdfParams
from fogfed.protocol.enrollment import EnrollmentRequest
from fogfed.tas.results import EnrollmentResult, FederationInfo, RekeyResult, RemovalResult
from fogfed.tas.verifier import AttributeVerifier


class TasError(FogfedError):
    """A TAS operation could not be done."""


class TrustedAuthority:
    """The trusted authority server's state and operations (explicit home directory)."""

    @classmethod
    def init(cls, home: Path, chain, passphrase: str, *, fed=None, account=None, scheme: str = "fame",
             kdf: KdfParams | None = None) -> "TrustedAuthority":
        """Paper Algorithm 1 (Setup): ABE system keys, TAS keystore in ``home``; Algorithm 5 if ``fed`` is None.

        ``account`` is the TAS's Ethereum account (a funded key on a devnet);
        None generates one (it then needs funds before any transaction).
        """
        raise NotImplementedError

    @classmethod
    def open(cls, home: Path, chain, passphrase: str) -> "TrustedAuthority":
        """Open an initialised TAS; WrongPassphrase for a wrong passphrase."""
        raise NotImplementedError

    def create_federation(self, location: str, service: str, parent: int = 0) -> FederationInfo:
        """Paper Algorithm 6 (+3, FFPK): create the federation for (location, service) on chain."""
        raise NotImplementedError

    def enroll(self, request: EnrollmentRequest, *, verifier: AttributeVerifier | None = None,
               approve: bool = False, fund_wei: int = 0) -> EnrollmentResult:
        """Paper Algorithms 2 (Join), 7 (add FN) and 3 (FNSK): verify, assign, register, deliver the key."""
        raise NotImplementedError

    def remove(self, node_address: str, reason: str = "removed by the TAS operator") -> RemovalResult:
        """Paper Algorithm 10 (remove rogue FN) with cryptographic revocation and re-keying of the rest."""
        raise NotImplementedError

    def rekey(self, federation_id: int) -> RekeyResult:
        """Advance a federation's epoch and deliver fresh keys to all its active members."""
        raise NotImplementedError

    def sync(self) -> list[RekeyResult]:
        """Deliver keys for every federation whose epoch moved past the keys delivered (automatic removals)."""
        raise NotImplementedError

    def status(self) -> dict:
        """Addresses, contract, federations with epochs and members, pending re-keys."""
        raise NotImplementedError

    def federations(self) -> list[FederationInfo]:
        """All federations on chain."""
        raise NotImplementedError
