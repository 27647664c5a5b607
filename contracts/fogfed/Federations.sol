// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Roles} from "./Roles.sol";

/// @title Fog federations (paper Algorithm 6): attributes, public-key commitment, hierarchy, key epoch.
abstract contract Federations is Roles {
    uint256 internal constant MAX_ATTRIBUTE_LENGTH = 64;
    uint256 internal constant MAX_PUBLIC_KEY_LENGTH = 8192;

    /// @notice Paper Algorithm 6 (fog federation creation): the TAS creates a federation
    /// for (location, service) with public key FFPK under `parent`.
    /// @dev TAS only. Stores the first 24 bytes of keccak256(publicKey); the key bytes and the
    /// attribute strings are only in the FederationCreated event. Ids are sequential from 1.
    /// @param location Location attribute, 1-64 bytes.
    /// @param service Service attribute, 1-64 bytes.
    /// @param publicKey Federation public key bytes, 1-8192 bytes.
    /// @param parent Parent federation id, or 0 for a root.
    /// @return federationId The new federation's id.
    function createFederation(
        string calldata location,
        string calldata service,
        bytes calldata publicKey,
        uint32 parent
    ) external onlyTas returns (uint32 federationId) {
        _checkAttribute(location);
        _checkAttribute(service);
        if (publicKey.length == 0 || publicKey.length > MAX_PUBLIC_KEY_LENGTH) {
            revert InvalidPublicKey();
        }
        bytes32 attrsHash = keccak256(abi.encode(keccak256(bytes(location)), keccak256(bytes(service))));
        uint32 existing = _federationByAttrs[attrsHash];
        if (existing != 0) revert FederationExists(attrsHash, existing);
        uint32 count = _federationCount;
        if (parent > count) revert UnknownFederation(parent);
        federationId = count + 1;
        _federationCount = federationId;
        bytes24 commitment = bytes24(keccak256(publicKey));
        _federations[federationId] = Federation(commitment, parent, 0);
        _federationByAttrs[attrsHash] = federationId;
        emit FederationCreated(federationId, attrsHash, parent, location, service, commitment, publicKey);
    }

    /// @notice Refresh a federation's member tree: a new tree generation whose keys for every
    /// member are in one bundle in the content store (uploads must then use the new epoch).
    /// @dev TAS only. One transaction whatever the number of members; the bundle's leaves follow
    /// the order of the members' current leaves (docs/architecture.md, "Refresh").
    /// Reverts StaleEpoch unless `epoch` is still current: a removal since the TAS built the
    /// bundle (e.g. automatic, for false claims) would otherwise hand the removed node a new key.
    /// @param federationId The federation to refresh.
    /// @param epoch The federation's current epoch the bundle was built at.
    /// @param bundle sha2-256 digest inside the CIDv0 of the bundle of sealed keys (the wrapper
    /// refuses zero; unchecked here for the deployment budget).
    function bumpEpoch(uint32 federationId, uint32 epoch, bytes32 bundle) external onlyTas {
        Federation storage f = _requireFederation(federationId);
        if (epoch != f.epoch) revert StaleEpoch(federationId, epoch, f.epoch);
        _advanceEpoch(federationId, EPOCH_REKEY);
        emit TreeRefreshed(federationId, bundle);
    }

    /// @notice A federation's stored record (all zero when there is none).
    /// @param federationId The federation.
    /// @return publicKeyCommitment First 24 bytes of keccak256 of its public key bytes.
    /// @return parent Parent id (0 for a root).
    /// @return epoch Current key epoch.
    function federation(uint32 federationId)
        external
        view
        returns (bytes24 publicKeyCommitment, uint32 parent, uint32 epoch)
    {
        Federation storage f = _federations[federationId];
        return (f.publicKeyCommitment, f.parent, f.epoch);
    }

    /// @notice The id of the federation with these attributes (the TAS's Join), or 0.
    /// @param attrsHash keccak256(keccak256(location) ++ keccak256(service)).
    /// @return The federation id, 0 when none matches.
    function federationByAttributes(bytes32 attrsHash) external view returns (uint32) {
        return _federationByAttrs[attrsHash];
    }

    function _checkAttribute(string calldata value) private pure {
        uint256 n = bytes(value).length;
        if (n == 0 || n > MAX_ATTRIBUTE_LENGTH) revert InvalidAttribute();
    }
}
