// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IFogFedErrors} from "./IFogFedErrors.sol";
import {IFogFedEvents} from "./IFogFedEvents.sol";

/// @title All state of FogFed in one place, so the storage layout is explicit.
/// @dev Keys are fixed-size, structs are packed into as few slots as possible, and
/// bulky data (public keys, attribute strings, CIDs, policies) lives only in events.
/// The layout is documented in docs/contracts.md; change both together.
abstract contract FogFedStorage is IFogFedErrors, IFogFedEvents {
    /// @dev 1 slot. Exists when the commitment is nonzero. The attributes hash is not stored
    /// here (_federationByAttrs answers attribute checks) and the creation time is the
    /// creation event's block: a second slot would cost 22,100 gas per federation.
    struct Federation {
        bytes24 publicKeyCommitment; // first 24 bytes of keccak256(public key bytes)
        uint32 parent; // 0 = root
        uint32 epoch; // +1 on every removal / re-key
    }

    /// @dev 1 slot. Kept after removal (active = false) so history stays readable.
    struct Member {
        uint32 federationId; // current, or last one when inactive
        bool active;
        uint16 falseClaims; // reset on each enrolment
        uint32 generation; // number of enrolments
        uint64 joinedAt;
    }

    /// @dev 4 slots. The file id is the sha2-256 digest inside the file's CID.
    struct FileRecord {
        bytes32 plaintextHash; // SHA-256 of the plaintext
        bytes32 encSkRef; // digest of the CP-ABE-encrypted SK blob (stored off chain)
        bytes32 policyRef; // keccak256 of the policy text
        address uploader; // 0 = no such file
        uint32 federationId;
        uint32 epoch;
        uint32 registeredAt;
    }

    /// @dev 1 slot. Blocks of a node's latest key delivery and endpoint (their data is in events).
    struct PeerBlocks {
        uint64 keyBlock;
        uint64 endpointBlock;
    }

    /// @dev 1 slot. position is the 1-based index in _cacheHolders[fileId]; 0 = none.
    struct CacheEntry {
        uint64 expiresAt;
        uint32 position;
    }

    // slot 0: written by every federation creation; packing the counter with the admin
    // keeps that write a nonzero-to-nonzero update (5,000 gas instead of 22,100).
    address internal _admin;
    uint32 internal _federationCount;
    uint16 internal _falseClaimThreshold;
    uint32 internal _maxCacheLifetime;
    // slot 1
    address internal _pendingAdmin;

    mapping(address account => bool) internal _operators;
    mapping(uint32 federationId => Federation) internal _federations;
    mapping(bytes32 attrsHash => uint32 federationId) internal _federationByAttrs;
    mapping(address node => Member) internal _members;
    mapping(address node => bytes32 x25519Key) internal _encryptionKeys;
    mapping(bytes32 fileId => FileRecord) internal _files;
    mapping(bytes32 fileId => uint64 when) internal _damagedAt;
    mapping(bytes32 fileId => address[] holders) internal _cacheHolders;
    mapping(bytes32 fileId => mapping(address holder => CacheEntry)) internal _caches;
    mapping(address node => PeerBlocks) internal _peerBlocks;
    mapping(bytes32 fileId => mapping(uint32 federationId => bool)) internal _shared;

    // Reason codes carried by events (documented in IFogFedEvents).
    uint8 internal constant EPOCH_REMOVAL = 1;
    uint8 internal constant EPOCH_REKEY = 2;
    uint8 internal constant REMOVED_BY_TAS = 1;
    uint8 internal constant REMOVED_FALSE_CLAIMS = 2;
    uint8 internal constant DENIED_UNKNOWN_FILE = 1;
    uint8 internal constant DENIED_NOT_MEMBER = 2;
    uint8 internal constant DENIED_REMOVED = 3;
    uint8 internal constant DENIED_OTHER_FEDERATION = 4;
    uint8 internal constant CACHE_WITHDRAWN = 1;
    uint8 internal constant CACHE_PRUNED = 2;

    /// @dev Reverts unless `account` is an active member of `federationId`.
    function _requireMemberOf(address account, uint32 federationId) internal view returns (Member storage m) {
        m = _members[account];
        if (!m.active) revert NotActiveMember(account);
        if (m.federationId != federationId) revert NotFederationMember(account, federationId);
    }

    /// @dev Reverts unless the federation exists.
    function _requireFederation(uint32 federationId) internal view returns (Federation storage f) {
        f = _federations[federationId];
        if (f.publicKeyCommitment == bytes24(0)) revert UnknownFederation(federationId);
    }

    /// @dev Advances a federation's key epoch (files uploaded later use the new keys).
    function _advanceEpoch(uint32 federationId, uint8 reason) internal {
        Federation storage f = _federations[federationId];
        uint32 epoch = f.epoch + 1;
        f.epoch = epoch;
        emit EpochAdvanced(federationId, epoch, reason);
    }
}
