// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Caches} from "./Caches.sol";

/// @title Files (paper Algorithms 8 and 9): registration, recorded access, damage reports.
/// @dev A file id is keccak256(uploader ++ content digest), the digest being the sha2-256 inside the
/// file's CID: CIDv0 and CIDv1 of the same DAG name the same file, the id can be checked against the
/// content fetched and its uploader, and a copied pending registration names another file (its
/// sender's), so it can neither take over nor block the original.
abstract contract Files is Caches {
    uint256 internal constant MAX_POLICY_LENGTH = 1024;
    uint8 internal constant MAX_DAMAGE_REASON = 3;

    /// @notice Paper Algorithm 8 (add file index, hash and encrypted SK) in one transaction.
    /// @dev Active members of `federationId` only; `epoch` must be the federation's current
    /// epoch (an upload encrypted under keys from before a removal is refused).
    /// @param federationId The uploader's federation.
    /// @param contentDigest The sha2-256 digest inside the ciphertext's CID.
    /// @param cidCodec 0 for a CIDv0; otherwise the multicodec of a CIDv1 (0x70 dag-pb, 0x55 raw).
    /// @param plaintextHash SHA-256 of the plaintext (checked after decryption).
    /// @param encSkRef Digest naming the CP-ABE-encrypted SK blob stored off chain.
    /// @param epoch The federation key epoch the file was encrypted under.
    /// @param policy The CP-ABE policy text (1-1024 bytes; stored as its keccak256).
    /// @return fileId keccak256(abi.encodePacked(msg.sender, contentDigest)), the file's id from now on.
    function registerFile(
        uint32 federationId,
        bytes32 contentDigest,
        uint32 cidCodec,
        bytes32 plaintextHash,
        bytes32 encSkRef,
        uint32 epoch,
        string calldata policy
    ) external returns (bytes32 fileId) {
        _requireMemberOf(msg.sender, federationId);
        uint32 current = _federations[federationId].epoch;
        if (epoch != current) revert StaleEpoch(federationId, epoch, current);
        if (contentDigest == bytes32(0) || plaintextHash == bytes32(0) || encSkRef == bytes32(0)) {
            revert InvalidFileReference();
        }
        uint256 policyLength = bytes(policy).length;
        if (policyLength == 0 || policyLength > MAX_POLICY_LENGTH) revert InvalidPolicy();
        fileId = keccak256(abi.encodePacked(msg.sender, contentDigest));
        if (_files[fileId].uploader != address(0)) revert FileExists(fileId);
        _files[fileId] = FileRecord(
            plaintextHash, encSkRef, keccak256(bytes(policy)), msg.sender, federationId, epoch, uint32(block.timestamp)
        );
        emit FileRegistered(
            fileId, federationId, msg.sender, contentDigest, plaintextHash, encSkRef, epoch, cidCodec, policy);
    }

    /// @notice Paper Algorithm 9 / "Getting SK and file index" as a recorded access: emits
    /// AccessGranted for an active member of the file's federation, AccessDenied otherwise.
    /// @dev Never reverts for a refusal (a reverted transaction would leave no record). An
    /// active member of another federation asking counts as a false claim.
    /// @param fileId The file.
    /// @return granted Whether access was granted.
    function recordAccess(bytes32 fileId) external returns (bool granted) {
        uint32 federationId = _files[fileId].federationId;
        Member storage m = _members[msg.sender];
        if (federationId == 0) {
            emit AccessDenied(fileId, msg.sender, DENIED_UNKNOWN_FILE);
        } else if (!m.active) {
            emit AccessDenied(fileId, msg.sender, m.generation == 0 ? DENIED_NOT_MEMBER : DENIED_REMOVED);
        } else if (m.federationId != federationId && !_shared[fileId][m.federationId]) {
            emit AccessDenied(fileId, msg.sender, DENIED_OTHER_FEDERATION);
            _countFalseClaim(msg.sender, m, fileId);
        } else {
            emit AccessGranted(fileId, msg.sender, m.federationId);
            granted = true;
        }
    }

    /// @notice Report damage found while retrieving `fileId` (Algorithm 9: plaintext hash mismatch).
    /// @dev Active members of the file's federation only. The contract cannot check the bytes a
    /// reporter saw, so a report is a signed record, not a verdict: with holder zero the stored copy
    /// is marked damaged until an intact copy is reported (reportIntact); a report on a holder
    /// leaves its announcement in place (fetchers try reported holders last).
    /// @param fileId The file.
    /// @param holder The cache holder whose copy was bad, or zero for the stored copy.
    /// @param reason 1 plaintext hash mismatch, 2 ciphertext failed authentication, 3 copy unavailable.
    function reportDamage(bytes32 fileId, address holder, uint8 reason) external {
        _requireFileMember(fileId);
        if (reason == 0 || reason > MAX_DAMAGE_REASON) revert InvalidReason();
        if (holder == address(0)) {
            _damagedAt[fileId] = uint64(block.timestamp);
        } else if (_caches[fileId][holder].position == 0) {
            revert NoCache();
        }
        emit FileDamaged(fileId, msg.sender, holder, reason);
    }

    /// @notice Report that the stored copy of `fileId` was retrieved intact (plaintext hash matched),
    /// which clears its damage mark.
    /// @dev Active members of the file's federation only. Emits FileDamaged with holder zero and
    /// reason 0.
    /// @param fileId The file.
    function reportIntact(bytes32 fileId) external {
        _requireFileMember(fileId);
        delete _damagedAt[fileId];
        emit FileDamaged(fileId, msg.sender, address(0), 0);
    }

    function _requireFileMember(bytes32 fileId) private view {
        uint32 federationId = _files[fileId].federationId;
        if (federationId == 0) revert UnknownFile(fileId);
        _requireMemberOf(msg.sender, federationId);
    }

    /// @notice A file's record (all zero when there is none).
    /// @param fileId The file.
    /// @return plaintextHash SHA-256 of the plaintext.
    /// @return encSkRef Reference to the encrypted SK blob.
    /// @return policyRef keccak256 of the policy text.
    /// @return uploader The uploading member.
    /// @return federationId The federation it belongs to.
    /// @return epoch Key epoch it was encrypted under.
    /// @return registeredAt Registration time (unix seconds).
    /// @return damagedAt Time the stored copy was reported damaged (0: never).
    function file(bytes32 fileId)
        external
        view
        returns (
            bytes32 plaintextHash,
            bytes32 encSkRef,
            bytes32 policyRef,
            address uploader,
            uint32 federationId,
            uint32 epoch,
            uint32 registeredAt,
            uint64 damagedAt
        )
    {
        FileRecord storage f = _files[fileId];
        return (
            f.plaintextHash,
            f.encSkRef,
            f.policyRef,
            f.uploader,
            f.federationId,
            f.epoch,
            f.registeredAt,
            _damagedAt[fileId]
        );
    }
}
