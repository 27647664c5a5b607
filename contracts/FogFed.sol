// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Peers} from "./fogfed/Peers.sol";

/// @title FogFed: the on-chain record of fog federations, members, files, cached copies,
/// damage reports and rogue-node removals.
/// @notice Paper Algorithm 5 (smart contract deployment) deploys this contract. Confidentiality
/// comes from CP-ABE off chain; this contract authorizes writes, orders them and keeps an
/// audit trail in its events.
contract FogFed is Peers {
    uint16 internal constant DEFAULT_FALSE_CLAIM_THRESHOLD = 3;
    uint32 internal constant DEFAULT_MAX_CACHE_LIFETIME = 1 days;

    /// @notice The deployer becomes admin and TAS operator.
    constructor() {
        _initRoles(msg.sender);
        _setSettings(DEFAULT_FALSE_CLAIM_THRESHOLD, DEFAULT_MAX_CACHE_LIFETIME);
    }
}
