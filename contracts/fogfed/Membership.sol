// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Federations} from "./Federations.sol";

/// @title Federation members (paper Algorithms 7 and 10): enrolment, removal, moves,
/// encryption keys, automatic removal after false claims the contract observed, and verification by
/// attributes.
/// @dev A member's identity is msg.sender; no function takes a caller-supplied identity.
abstract contract Membership is Federations {
    uint256 internal constant MAX_SEALED_KEY_LENGTH = 8192;
    uint256 internal constant MAX_REMOVAL_NOTE_LENGTH = 256;

    /// @notice Paper Algorithm 7 (add FN to FF): enrol `node` in `federationId`.
    /// @dev TAS only. Also re-enrols a removed node (only the TAS can). Starts a new
    /// membership generation: false claims and reports of an earlier one no longer count.
    /// @param federationId The federation to join.
    /// @param node The node's account (its identity from now on).
    /// @param encryptionKey The node's X25519 public key for sealed key delivery.
    function addMember(uint32 federationId, address node, bytes32 encryptionKey) external onlyTas {
        _requireFederation(federationId);
        _enrol(federationId, node, encryptionKey);
    }

    /// @notice Enrol several nodes in one federation in one transaction.
    /// @dev TAS only; all or nothing.
    /// @param federationId The federation to join.
    /// @param nodes The nodes' accounts.
    /// @param encryptionKeys Their X25519 public keys, same order.
    function addMembers(uint32 federationId, address[] calldata nodes, bytes32[] calldata encryptionKeys)
        external
        onlyTas
    {
        if (nodes.length == 0 || nodes.length != encryptionKeys.length) {
            revert LengthMismatch();
        }
        _requireFederation(federationId);
        for (uint256 i = 0; i < nodes.length; ++i) {
            _enrol(federationId, nodes[i], encryptionKeys[i]);
        }
    }

    /// @notice Paper Algorithm 10 (remove rogue FN): the TAS removes `node`.
    /// @dev TAS only. Keeps the record (inactive) and advances the federation's key epoch. The
    /// operator's reason is stored in a RemovalNoted event of the same transaction, emitted just
    /// before MemberRemoved, so auditors read it from the chain rather than from the TAS's files.
    /// @param node The member to remove.
    /// @param note The operator's reason, UTF-8, at most 256 bytes (may be empty).
    function removeMember(address node, string calldata note) external onlyTas {
        Member storage m = _members[node];
        if (!m.active) revert NotActiveMember(node);
        if (bytes(note).length > MAX_REMOVAL_NOTE_LENGTH) revert InvalidNote(bytes(note).length);
        emit RemovalNoted(node, note);
        _remove(node, m, REMOVED_BY_TAS);
    }

    /// @notice Paper Algorithm 3 (FNSK delivery): post `node`'s CP-ABE secret key for `epoch`,
    /// sealed to the node's X25519 key, in a KeyDelivered event.
    /// @dev TAS only. The node must be an active member of `federationId` and `epoch` its
    /// current epoch; the box itself binds chain, contract, node, federation and epoch.
    /// @param node The recipient.
    /// @param federationId Its federation.
    /// @param epoch The epoch the key is for.
    /// @param sealedKey The sealed box, 1-8192 bytes.
    function deliverKey(address node, uint32 federationId, uint32 epoch, bytes calldata sealedKey) external onlyTas {
        _requireMemberOf(node, federationId);
        uint32 current = _federations[federationId].epoch;
        if (epoch != current) revert StaleEpoch(federationId, epoch, current);
        if (sealedKey.length == 0 || sealedKey.length > MAX_SEALED_KEY_LENGTH) revert InvalidSealedKey();
        _peerBlocks[node].keyBlock = uint64(block.number);
        emit KeyDelivered(node, federationId, epoch, sealedKey);
    }

    /// @notice A node's membership record (kept after removal).
    /// @param node The node.
    /// @return federationId Current federation, or the last one if inactive (0: never enrolled).
    /// @return active Whether it is an active member now.
    /// @return falseClaims False claims counted in the current generation.
    /// @return generation Number of enrolments so far.
    /// @return joinedAt Time of the latest enrolment or move.
    /// @return encryptionKey Its X25519 public key.
    function member(address node)
        external
        view
        returns (
            uint32 federationId,
            bool active,
            uint16 falseClaims,
            uint32 generation,
            uint64 joinedAt,
            bytes32 encryptionKey
        )
    {
        Member storage m = _members[node];
        return (m.federationId, m.active, m.falseClaims, m.generation, m.joinedAt, _encryptionKeys[node]);
    }

    /// @notice Whether `node` is an active member of `federationId`.
    /// @param node The node.
    /// @param federationId The federation.
    /// @return True for an active member of that federation.
    function isActiveMember(address node, uint32 federationId) external view returns (bool) {
        Member storage m = _members[node];
        return m.active && m.federationId == federationId;
    }

    /// @notice The paper's "Verifying FN by attribute": whether `node` is an active member of the
    /// federation with these attributes. Free through eth_call; as a transaction the answer is
    /// recorded in a MemberVerified event.
    /// @param node The node.
    /// @param attrsHash keccak256(keccak256(location) ++ keccak256(service)).
    /// @return ok The answer.
    function verifyMember(address node, bytes32 attrsHash) external returns (bool ok) {
        Member storage m = _members[node];
        ok = m.active && _federationByAttrs[attrsHash] == m.federationId;
        emit MemberVerified(node, attrsHash, ok, msg.sender);
    }

    function _enrol(uint32 federationId, address node, bytes32 encryptionKey) private {
        if (node == address(0)) revert ZeroAddress();
        if (encryptionKey == bytes32(0)) revert InvalidEncryptionKey();
        Member storage m = _members[node];
        if (m.active) revert AlreadyMember(node, m.federationId);
        uint32 generation = m.generation + 1;
        _members[node] = Member(federationId, true, 0, generation, uint64(block.timestamp));
        _encryptionKeys[node] = encryptionKey;
        emit MemberAdded(node, federationId, encryptionKey, generation);
    }

    function _remove(address node, Member storage m, uint8 reason) internal {
        m.active = false;
        uint32 federationId = m.federationId;
        emit MemberRemoved(node, federationId, reason, msg.sender);
        _advanceEpoch(federationId, EPOCH_REMOVAL);
    }

    /// @dev Counts one false claim the contract itself observed (recordAccess by a member of another
    /// federation: `fileId` is the evidence) and removes the member at the threshold. No caller can
    /// accuse another account: only a member's own transactions count against it. The count cannot
    /// pass the uint16 range: it never exceeds the threshold, itself a uint16.
    function _countFalseClaim(address suspect, Member storage s, bytes32 fileId) internal {
        uint16 count = s.falseClaims + 1;
        s.falseClaims = count;
        emit FalseClaimCounted(suspect, address(this), count, fileId);
        if (count >= _falseClaimThreshold) _remove(suspect, s, REMOVED_FALSE_CLAIMS);
    }
}
