"""The trusted authority server (TAS): paper Algorithms 1, 2, 3, 6, 7 and 10.

    from fogfed.tas import TrustedAuthority, OperatorApproval
    tas = TrustedAuthority.init(home, chain, passphrase)          # Alg 1 (+ Alg 5 deploy)
    fed = tas.create_federation("riyadh", "health")              # Alg 6
    res = tas.enroll(request, approve=True)                      # Alg 2 + 7 + 3
    tas.remove(node_address, reason="rogue")                     # Alg 10 + revocation + re-key
    tas.sync()                                                   # re-key after automatic removals

See docs/architecture.md.
"""

from fogfed.tas.authority import TasError, TasInputError, TrustedAuthority
from fogfed.tas.results import EnrollmentResult, FederationInfo, RefreshResult, RekeyResult, RemovalResult
from fogfed.tas.verifier import AttributeVerifier, OperatorApproval, Verdict, load_allowlist

__all__ = [
    "AttributeVerifier", "EnrollmentResult", "FederationInfo", "OperatorApproval", "RefreshResult", "RekeyResult",
    "RemovalResult", "TasError", "TasInputError", "TrustedAuthority", "Verdict", "load_allowlist",
]
