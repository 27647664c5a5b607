// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Files} from "./Files.sol";

/// @title What fog nodes need to reach each other and share across federations: peer endpoints,
/// the block of each node's latest key delivery, and files shared with other federations.
abstract contract Peers is Files {
    uint256 internal constant MAX_ENDPOINT_LENGTH = 256;

    /// @notice Publish the URL where the caller serves cached copies (paper Algorithm 9, peer branch).
    /// @dev Active members only; 1-256 bytes. The URL lives in the EndpointSet event; storage keeps
    /// only its block, so a fetching node reads it with one log query over one block.
    /// @param url The peer server's base URL, e.g. http://10.0.0.5:8123.
    function setEndpoint(string calldata url) external {
        if (!_members[msg.sender].active) revert NotActiveMember(msg.sender);
        uint256 n = bytes(url).length;
        if (n == 0 || n > MAX_ENDPOINT_LENGTH) revert InvalidEndpoint(n);
        _peerBlocks[msg.sender].endpointBlock = uint64(block.number);
        emit EndpointSet(msg.sender, url);
    }

    /// @notice Blocks of `node`'s latest KeyDelivered and EndpointSet events (0: none), so a node
    /// finds its key, or a peer's URL, with one log query over one block.
    /// @param node The node.
    /// @return keyBlock Block of the latest key delivered to it.
    /// @return endpointBlock Block of its latest endpoint.
    function peerBlocks(address node) external view returns (uint64 keyBlock, uint64 endpointBlock) {
        PeerBlocks storage b = _peerBlocks[node];
        return (b.keyBlock, b.endpointBlock);
    }

    /// @notice Let members of `federationId` read `fileId` too (its policy spans federations).
    /// @dev The uploader only, while an active member. recordAccess then grants those members.
    /// @param fileId The file.
    /// @param federationId The federation to share it with.
    function shareFile(bytes32 fileId, uint32 federationId) external {
        if (_files[fileId].uploader != msg.sender) revert NotUploader(fileId, msg.sender);
        if (!_members[msg.sender].active) revert NotActiveMember(msg.sender);
        _requireFederation(federationId);
        _shared[fileId][federationId] = true;
        emit FileShared(fileId, federationId, msg.sender);
    }

    /// @notice Whether `node` may read `fileId` now: an active member of its federation or of one it
    /// is shared with (what a peer checks before serving a cached copy).
    /// @param node The requester.
    /// @param fileId The file.
    /// @return True when it may.
    function hasAccess(address node, bytes32 fileId) external view returns (bool) {
        Member storage m = _members[node];
        uint32 federationId = _files[fileId].federationId;
        return m.active && federationId != 0 && (m.federationId == federationId || _shared[fileId][m.federationId]);
    }
}
