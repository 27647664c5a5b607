// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {FogFedStorage} from "./FogFedStorage.sol";

/// @title TAS roles (one admin with two-step hand-over, any number of TAS operators) and settings.
/// @dev The admin manages operators and is itself always a TAS operator; operators run the
/// TAS functions. The deployer starts as admin.
abstract contract Roles is FogFedStorage {
    modifier onlyAdmin() {
        if (msg.sender != _admin) revert NotAdmin();
        _;
    }

    modifier onlyTas() {
        _checkTas();
        _;
    }

    // The admin is always a TAS operator; checking it first keeps slot 0 warm for
    // createFederation's counter update.
    function _checkTas() private view {
        if (msg.sender != _admin && !_operators[msg.sender]) revert NotTas();
    }

    function _initRoles(address firstAdmin) internal {
        _admin = firstAdmin;
        emit AdminTransferred(address(0), firstAdmin);
    }

    /// @notice The contract's roles and settings in one call.
    /// @return admin_ The admin.
    /// @return pendingAdmin The account named to take over as admin, or zero.
    /// @return federationCount Number of federations; ids run from 1 to this.
    /// @return falseClaimThreshold False claims at which a member is removed automatically.
    /// @return maxCacheLifetime Longest allowed cache announcement, in seconds.
    function settings()
        external
        view
        returns (
            address admin_,
            address pendingAdmin,
            uint32 federationCount,
            uint16 falseClaimThreshold,
            uint32 maxCacheLifetime
        )
    {
        return (_admin, _pendingAdmin, _federationCount, _falseClaimThreshold, _maxCacheLifetime);
    }

    /// @notice Whether `account` may run TAS functions (the admin or a granted operator).
    /// @param account The account to check.
    /// @return True for an operator.
    function isOperator(address account) external view returns (bool) {
        return account == _admin || _operators[account];
    }

    /// @notice Step one of handing over the admin role: name the successor (zero cancels).
    /// @dev Admin only. The role moves only when the successor calls acceptAdmin, so a typo
    /// cannot lock the contract.
    /// @param newAdmin The successor, or the zero address to cancel a pending hand-over.
    function beginAdminTransfer(address newAdmin) external onlyAdmin {
        _pendingAdmin = newAdmin;
        emit AdminTransferStarted(msg.sender, newAdmin);
    }

    /// @notice Step two: the named successor takes the admin role.
    function acceptAdmin() external {
        if (msg.sender != _pendingAdmin || msg.sender == address(0)) revert NotPendingAdmin();
        address previous = _admin;
        _admin = msg.sender;
        _pendingAdmin = address(0);
        emit AdminTransferred(previous, msg.sender);
    }

    /// @notice Grant (`enabled`) or revoke the TAS operator role of `account`.
    /// @dev Admin only; no event when nothing changes.
    /// @param account The account.
    /// @param enabled True to grant, false to revoke.
    function setOperator(address account, bool enabled) external onlyAdmin {
        if (account == address(0)) revert ZeroAddress();
        if (_operators[account] == enabled) return;
        _operators[account] = enabled;
        emit OperatorChanged(account, enabled, msg.sender);
    }

    /// @notice Set the false-claim threshold (automatic removal) and the longest cache announcement.
    /// @dev TAS only. Both at least 1; the threshold applies from the next counted claim.
    /// @param falseClaimThreshold False claims at which a member is removed.
    /// @param maxCacheLifetime Seconds.
    function configure(uint16 falseClaimThreshold, uint32 maxCacheLifetime) external onlyTas {
        if (falseClaimThreshold == 0) revert InvalidThreshold();
        if (maxCacheLifetime == 0) revert InvalidCacheLifetime();
        _setSettings(falseClaimThreshold, maxCacheLifetime);
    }

    function _setSettings(uint16 falseClaimThreshold, uint32 maxCacheLifetime) internal {
        _falseClaimThreshold = falseClaimThreshold;
        _maxCacheLifetime = maxCacheLifetime;
        emit SettingsChanged(falseClaimThreshold, maxCacheLifetime, msg.sender);
    }
}
