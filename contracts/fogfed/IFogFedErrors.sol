// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title Custom errors of the FogFed contract, declared once.
/// @notice fogfed.chain decodes each of these into its name, its arguments and a sentence.
interface IFogFedErrors {
    /// @notice The caller is not the admin.
    error NotAdmin();
    /// @notice The caller is not the pending admin named by the current admin.
    error NotPendingAdmin();
    /// @notice The caller is neither the admin nor a TAS operator.
    error NotTas();
    /// @notice The zero address was given where an account is needed.
    error ZeroAddress();
    /// @notice A federation attribute is empty or longer than 64 bytes.
    error InvalidAttribute();
    /// @notice A federation public key is empty or longer than 8192 bytes.
    error InvalidPublicKey();
    /// @notice A federation with these attributes already exists.
    error FederationExists(bytes32 attrsHash, uint32 federationId);
    /// @notice No federation has this id.
    error UnknownFederation(uint32 federationId);
    /// @notice The node is already an active member (of `federationId`).
    error AlreadyMember(address node, uint32 federationId);
    /// @notice The account is not an active member of any federation.
    error NotActiveMember(address account);
    /// @notice The account is an active member, but of another federation.
    error NotFederationMember(address account, uint32 federationId);
    /// @notice An encryption public key of zero was given.
    error InvalidEncryptionKey();
    /// @notice A batch was empty or its arrays differ in length.
    error LengthMismatch();
    /// @notice A sealed key delivery is empty or longer than 8192 bytes.
    error InvalidSealedKey();
    /// @notice The false-claim threshold must be at least 1.
    error InvalidThreshold();
    /// @notice The file id, plaintext hash or encrypted-SK reference is zero.
    error InvalidFileReference();
    /// @notice The policy text is empty or longer than 1024 bytes.
    error InvalidPolicy();
    /// @notice A file with this id is already registered.
    error FileExists(bytes32 fileId);
    /// @notice No file has this id.
    error UnknownFile(bytes32 fileId);
    /// @notice The upload used a key epoch that is no longer the federation's current one.
    error StaleEpoch(uint32 federationId, uint32 given, uint32 current);
    /// @notice A cache expiry lies in the past or beyond the maximum lifetime.
    error InvalidExpiry(uint64 expiresAt, uint64 latestAllowed);
    /// @notice The maximum cache lifetime must be at least one second.
    error InvalidCacheLifetime();
    /// @notice The holder has no cache announcement for this file.
    error NoCache();
    /// @notice The announcement is still fresh and its holder still a member: it cannot be pruned.
    error CacheStillFresh();
    /// @notice An unknown damage reason code.
    error InvalidReason();
    /// @notice Only the file's uploader, while an active member, may share it.
    error NotUploader(bytes32 fileId, address caller);
    /// @notice A peer endpoint URL is empty or longer than 256 bytes.
    error InvalidEndpoint(uint256 length);
    /// @notice A removal note longer than 256 bytes.
    error InvalidNote(uint256 length);
}
