// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Membership} from "./Membership.sol";

/// @title Off-chain cached copies (the paper's tracking table): announcements that expire.
/// @dev Each member appears at most once per file, so a file's holder list is bounded by its
/// federation's size; announce and withdraw are O(1) (swap-and-pop) and the view paginates.
abstract contract Caches is Membership {
    /// @notice Announce that the caller holds a copy of `fileId` until `expiresAt`; renews an
    /// existing announcement.
    /// @dev Active members of the file's federation only. `expiresAt` must be in the future and
    /// at most maxCacheLifetime seconds away.
    /// @param fileId The file.
    /// @param expiresAt Expiry, unix seconds.
    function announceCache(bytes32 fileId, uint64 expiresAt) external {
        uint32 federationId = _files[fileId].federationId;
        if (federationId == 0) revert UnknownFile(fileId);
        _requireMemberOf(msg.sender, federationId);
        uint64 latest = uint64(block.timestamp) + _maxCacheLifetime;
        if (expiresAt <= block.timestamp || expiresAt > latest) revert InvalidExpiry(expiresAt, latest);
        CacheEntry storage c = _caches[fileId][msg.sender];
        if (c.position == 0) {
            address[] storage holders = _cacheHolders[fileId];
            holders.push(msg.sender);
            c.position = uint32(holders.length);
        }
        c.expiresAt = expiresAt;
        emit CacheAnnounced(fileId, msg.sender, expiresAt);
    }

    /// @notice End an announcement: the caller's own, or anyone's stale one (expired, or its
    /// holder no longer an active member of the file's federation), which keeps lists short.
    /// @param fileId The file.
    /// @param holder The holder whose announcement ends (msg.sender to withdraw one's own).
    function withdrawCache(bytes32 fileId, address holder) external {
        bool own = holder == msg.sender;
        if (!own && _isFresh(fileId, holder, _files[fileId].federationId)) revert CacheStillFresh();
        _dropCache(fileId, holder, own ? CACHE_WITHDRAWN : CACHE_PRUNED);
    }

    /// @notice One holder's announced expiry (0: no announcement).
    /// @param fileId The file.
    /// @param holder The holder.
    /// @return Expiry in unix seconds.
    function cacheExpiry(bytes32 fileId, address holder) external view returns (uint64) {
        return _caches[fileId][holder].expiresAt;
    }

    /// @notice Paper Algorithm 9, first scenario: holders of a fresh cached copy (unexpired, still
    /// an active member of the file's federation) among announcements [offset, offset + limit).
    /// @param fileId The file.
    /// @param offset First announcement index to scan.
    /// @param limit Maximum number of announcements to scan.
    /// @return holders Fresh holders found in the scanned range.
    /// @return next Index to continue from; equals `total` when the scan is complete.
    /// @return total Number of stored announcements.
    function freshCacheHolders(bytes32 fileId, uint256 offset, uint256 limit)
        external
        view
        returns (address[] memory holders, uint256 next, uint256 total)
    {
        address[] storage all = _cacheHolders[fileId];
        total = all.length;
        next = offset >= total || limit >= total - offset ? total : offset + limit;
        uint32 federationId = _files[fileId].federationId;
        holders = new address[](next > offset ? next - offset : 0);
        uint256 found;
        for (uint256 i = offset; i < next; ++i) {
            address h = all[i];
            if (_isFresh(fileId, h, federationId)) holders[found++] = h;
        }
        assembly ("memory-safe") {
            mstore(holders, found)
        }
    }

    function _isFresh(bytes32 fileId, address holder, uint32 federationId) internal view returns (bool) {
        Member storage m = _members[holder];
        return _caches[fileId][holder].expiresAt > block.timestamp && m.active && m.federationId == federationId;
    }

    function _dropCache(bytes32 fileId, address holder, uint8 reason) internal {
        mapping(address => CacheEntry) storage entries = _caches[fileId];
        uint32 position = entries[holder].position;
        if (position == 0) revert NoCache();
        address[] storage holders = _cacheHolders[fileId];
        uint256 last = holders.length;
        if (position != last) {
            address moved = holders[last - 1];
            holders[position - 1] = moved;
            entries[moved].position = position;
        }
        holders.pop();
        delete entries[holder];
        emit CacheWithdrawn(fileId, holder, reason);
    }
}
