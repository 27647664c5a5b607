// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title Events of the FogFed contract, declared once.
/// @notice Every state change emits one of these, with enough data that an auditor can
/// rebuild the whole contract state from the event log alone (see docs/contracts.md).
interface IFogFedEvents {
    /// @notice `newAdmin` became admin (from `previousAdmin`; zero at deployment).
    event AdminTransferred(address indexed previousAdmin, address indexed newAdmin);
    /// @notice The admin named `pendingAdmin` (zero: cancelled) to take over.
    event AdminTransferStarted(address indexed admin, address indexed pendingAdmin);
    /// @notice `account` was granted (enabled) or lost the TAS operator role.
    event OperatorChanged(address indexed account, bool enabled, address indexed by);
    /// @notice Members are now removed at `falseClaimThreshold` false claims; caches last at most `maxCacheLifetime` s.
    event SettingsChanged(uint16 falseClaimThreshold, uint32 maxCacheLifetime, address indexed by);

    /// @notice A federation was created; the full public key and attributes are here only.
    event FederationCreated(
        uint32 indexed federationId,
        bytes32 indexed attrsHash,
        uint32 indexed parent,
        string location,
        string service,
        bytes24 publicKeyCommitment,
        bytes publicKey
    );
    /// @notice The federation's key epoch advanced. reason: 1 member removed, 2 tree refresh by TAS.
    event EpochAdvanced(uint32 indexed federationId, uint32 epoch, uint8 reason);
    /// @notice A new member-tree generation of `federationId` starts (at the epoch the EpochAdvanced just
    /// before it in the same transaction sets); its keys are in `bundle`.
    event TreeRefreshed(uint32 indexed federationId, bytes32 bundle);

    /// @notice `node` became an active member of `federationId` (its `generation`-th enrolment).
    event MemberAdded(address indexed node, uint32 indexed federationId, bytes32 encryptionKey, uint32 generation);
    /// @notice `node` left `federationId`. reason: 1 removed by TAS, 2 false-claim threshold reached.
    event MemberRemoved(address indexed node, uint32 indexed federationId, uint8 reason, address by);
    /// @notice The TAS delivered `node` its CP-ABE secret key for `epoch`, sealed to the node's encryption key.
    event KeyDelivered(address indexed node, uint32 indexed federationId, uint32 indexed epoch, bytes sealedKey);
    /// @notice A false claim by `suspect` was counted (reporter is the contract itself for a denied access).
    event FalseClaimCounted(address indexed suspect, address indexed reporter, uint16 count, bytes32 evidence);
    /// @notice Result of a verification by attributes (the paper's "Verifying FN by attribute").
    event MemberVerified(address indexed node, bytes32 indexed attrsHash, bool result, address verifier);

    /// @notice A file was registered: fileId = keccak256(uploader ++ contentDigest). Its CID is rebuilt
    /// from contentDigest (the sha2-256 digest) and cidCodec (0: CIDv0, else CIDv1 with that codec);
    /// policyRef is keccak256(policy).
    event FileRegistered(
        bytes32 indexed fileId,
        uint32 indexed federationId,
        address indexed uploader,
        bytes32 contentDigest,
        bytes32 plaintextHash,
        bytes32 encSkRef,
        uint32 epoch,
        uint32 cidCodec,
        string policy
    );
    /// @notice A recorded retrieval was granted (the paper's "Getting SK and file index").
    event AccessGranted(bytes32 indexed fileId, address indexed node, uint32 indexed federationId);
    /// @notice A recorded retrieval was refused. reason: 1 unknown file, 2 not a member, 3 removed member, 4 other federation.
    event AccessDenied(bytes32 indexed fileId, address indexed node, uint8 reason);
    /// @notice A member reported damage. holder zero: the stored copy (file marked damaged; reason 0: retrieved intact, mark cleared); else that holder's cached copy.
    event FileDamaged(bytes32 indexed fileId, address indexed reporter, address indexed holder, uint8 reason);

    /// @notice `holder` holds a copy of `fileId` until `expiresAt` (unix seconds).
    event CacheAnnounced(bytes32 indexed fileId, address indexed holder, uint64 expiresAt);
    /// @notice The announcement ended. reason: 1 withdrawn by holder, 2 pruned (stale).
    event CacheWithdrawn(bytes32 indexed fileId, address indexed holder, uint8 reason);

    /// @notice `node` serves cached copies to peers at `url`.
    event EndpointSet(address indexed node, string url);
    /// @notice The uploader let members of `federationId` read `fileId` (a policy spanning federations).
    event FileShared(bytes32 indexed fileId, uint32 indexed federationId, address indexed by);
}
