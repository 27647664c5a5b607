"""fogfed.chain: the FogFed contract on an Ethereum chain, from Python.

Quick tour::

    from fogfed.chain import connect, deploy, FogFed
    chain = connect()                       # embedded chain; connect("http://127.0.0.1:8545") for a node
    tas, node = chain.dev_accounts()[:2]
    fed = deploy(chain, tas)                # or FogFed.at(chain, address)
    fid = fed.create_federation(tas, "riyadh", "health", ffpk_bytes).value
    fed.add_member(tas, fid, node.address, x25519_public_key)
    file_id = fed.register_file(node, fid, cid_digest, plaintext_hash, enc_sk_ref, policy, epoch=0).value
    fed.record_access(node, file_id).value  # True: AccessGranted
    fed.events(names=["MemberAdded"])

Public API:

- ``connect(rpc=None, *, chain_id=None, timeout=10.0) -> Chain``; ``Chain``: ``w3``, ``chain_id``,
  ``is_embedded``, ``label``, ``dev_accounts()``, ``fund(to, wei, sender=None)``, ``balance(addr)``,
  ``send(account, to=, data=, value=, gas=, function=, on_nonce=)`` (receipt; ``on_nonce(n)`` hears the nonce
  before the transaction can leave), ``nonce_used(address, nonce)``, ``call(tx)``.
- ``deploy(chain, deployer) -> FogFed``; ``FogFed.at(chain, address, deploy_block=None)``.
- ``FogFed`` methods, transactions (first argument the signing account, return ``TxResult``):
  ``begin_admin_transfer``, ``accept_admin``, ``set_operator``, ``configure``, ``create_federation``,
  ``bump_epoch``, ``add_member``, ``add_members``, ``remove_member``, ``deliver_key``,
  ``verify_member``, ``register_file``, ``record_access``, ``report_damage``, ``report_intact``,
  ``share_file``, ``set_endpoint``, ``announce_cache``, ``withdraw_cache``;
  views: ``settings``, ``is_operator``, ``federation``, ``federation_by_attributes``,
  ``federation_public_key``, ``member``, ``is_active_member``, ``member_has_attributes``, ``file``,
  ``file_registration``, ``has_access``, ``peer_blocks``, ``cache_expiry``, ``fresh_cache_holders``;
  ``events(from_block, to_block, names)``.
- Records: ``TxResult``, ``DecodedEvent``, ``Settings``, ``Federation``, ``Member``, ``FileRecord``,
  ``CacheHolder``. Helpers: ``attributes_hash``, ``public_key_commitment``.
- Mobility (``fogfed.chain.mobility``, a second contract next to FogFed): ``deploy_mobility(chain, deployer,
  fed, grant=True)``, ``FogFedMobility.at(chain, address, fed)``; ``check_handover``, ``move_member``,
  ``events``; ``Handover``.
- Errors (all ``FogfedError``): ``ContractRevert`` (``error_name``, ``error_args``, ``sentence``),
  ``ChainUnreachable``, ``WrongChain``, ``NotFogFedContract``, ``InsufficientFunds``,
  ``TransactionFailed``, ``InvalidArgument``, ``ChainError`` (base).
"""

from fogfed.chain.args import attributes_hash, public_key_commitment
from fogfed.chain.connection import Chain, connect
from fogfed.chain.contract import DAMAGE_REASONS, FogFed, deploy
from fogfed.chain.errors import (
    ChainError,
    ChainUnreachable,
    ContractRevert,
    InsufficientFunds,
    InvalidArgument,
    NotFogFedContract,
    TransactionFailed,
    WrongChain,
)
from fogfed.chain.mobility import FogFedMobility, Handover, deploy_mobility
from fogfed.chain.types import CacheHolder, DecodedEvent, Federation, FileRecord, Member, Settings, TxResult

__all__ = [
    "CacheHolder", "Chain", "ChainError", "ChainUnreachable", "ContractRevert", "DAMAGE_REASONS", "DecodedEvent",
    "Federation", "FileRecord", "FogFed", "FogFedMobility", "Handover", "InsufficientFunds", "InvalidArgument", "Member", "NotFogFedContract",
    "Settings", "TransactionFailed", "TxResult", "WrongChain", "attributes_hash", "connect", "deploy", "deploy_mobility",
    "public_key_commitment",
]
