// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @dev The part of FogFed this contract uses (FogFed's own ABI, unchanged).
interface IFogFedForMobility {
    function member(address node)
        external
        view
        returns (uint32 federationId, bool active, uint16 falseClaims, uint32 generation, uint64 joinedAt,
            bytes32 encryptionKey);
    function federation(uint32 federationId)
        external
        view
        returns (bytes24 publicKeyCommitment, uint32 parent, uint32 epoch);
    function isOperator(address account) external view returns (bool);
    function removeMember(address node, string calldata note) external;
    function addMember(uint32 federationId, address node, bytes32 encryptionKey) external;
}

/// @title Mobility of fog nodes across the federation tree: handover verified by on-chain records.
/// @dev Backward secrecy needs nothing here: an upload's cover holds only the leaves assigned when it
/// was registered, so the leaf a move opens in the destination is outside every older file's policy.
/// @notice Deployed on its own with the FogFed address; FogFed's admin must grant this contract the
/// TAS operator role (setOperator) so that moveMember can call removeMember and addMember.
/// @dev Kept out of FogFed because FogFed's deployment must stay under 2,000,000 gas.
contract FogFedMobility {
    /// @notice Handover check results (checkHandover, HandoverRefused).
    uint8 public constant HANDOVER_OK = 0;
    uint8 public constant NO_RECORD = 1; // never enrolled
    uint8 public constant REVOKED = 2; // record exists but the node was removed
    uint8 public constant KEY_MISMATCH = 3; // the presented key is not the one on chain
    uint8 public constant NOT_IN_HIERARCHY = 4; // no common ancestor within MAX_DEPTH levels
    uint8 public constant UNKNOWN_DESTINATION = 5;
    uint8 public constant SAME_FEDERATION = 6;
    uint8 public constant UNDER_SUSPICION = 7; // false claims counted: a move must not wash them away

    /// @notice Levels searched above the destination (and above the node's federation).
    uint256 public constant MAX_DEPTH = 16;

    IFogFedForMobility public immutable fogfed;

    /// @notice `node` moved from `fromFederation` to `toFederation`; its record was found `level`
    /// levels above the destination (0: in the destination itself, i.e. a descendant of it).
    event MemberMoved(address indexed node, uint32 indexed fromFederation, uint32 indexed toFederation, uint8 level,
        address operator);

    /// @notice The caller is not a TAS operator of FogFed.
    error NotTas(address caller);
    /// @notice The zero address was given as the FogFed contract.
    error ZeroAddress();
    /// @notice The handover check failed with `status`; the node must re-key and enrol from scratch.
    error HandoverRefused(address node, uint32 toFederation, uint8 status);

    modifier onlyTas() {
        if (!fogfed.isOperator(msg.sender)) revert NotTas(msg.sender);
        _;
    }

    /// @param fogfed_ The FogFed contract whose members move.
    constructor(address fogfed_) {
        if (fogfed_ == address(0)) revert ZeroAddress();
        fogfed = IFogFedForMobility(fogfed_);
    }

    /// @notice The handover check, free through eth_call: is `node`'s record valid for a move to
    /// `toFederation` with the key `expectedKey` it presented?
    /// @dev The record must be active, carry `expectedKey` and no false claims. It is looked up from
    /// the destination upwards: level 0 is the destination, level k its k-th ancestor; the first
    /// federation whose subtree holds the node's current federation answers.
    /// @param node The moving node.
    /// @param toFederation The destination federation.
    /// @param expectedKey The X25519 key the node presented in its signed move request.
    /// @return status HANDOVER_OK or the reason of the refusal.
    /// @return level Where the record was found (meaningful for HANDOVER_OK).
    /// @return fromFederation The node's current (or last) federation.
    function checkHandover(address node, uint32 toFederation, bytes32 expectedKey)
        public
        view
        returns (uint8 status, uint8 level, uint32 fromFederation)
    {
        (uint32 current, bool active, uint16 claims,,, bytes32 key) = fogfed.member(node);
        fromFederation = current;
        if (current == 0) return (NO_RECORD, 0, 0);
        if (!active) return (REVOKED, 0, current);
        if (key != expectedKey || key == bytes32(0)) return (KEY_MISMATCH, 0, current);
        if (claims != 0) return (UNDER_SUSPICION, 0, current);
        if (!_exists(toFederation)) return (UNKNOWN_DESTINATION, 0, current);
        if (toFederation == current) return (SAME_FEDERATION, 0, current);
        uint32[] memory up = _ancestry(current); // current, parent, grandparent, ...
        uint32 at = toFederation;
        for (uint256 l = 0; l <= MAX_DEPTH && at != 0; ++l) {
            for (uint256 i = 0; i < up.length; ++i) {
                if (up[i] == at) return (HANDOVER_OK, uint8(l), current);
            }
            (, at,) = fogfed.federation(at);
        }
        return (NOT_IN_HIERARCHY, 0, current);
    }

    /// @notice Hand `node` over to `toFederation` with the device keys it already has.
    /// @dev TAS operators only; needs the operator role in FogFed for this contract. Reverts
    /// HandoverRefused unless checkHandover answers HANDOVER_OK. The old membership is closed with
    /// FogFed.removeMember (its federation's epoch advances: forward secrecy) and a new one opened
    /// with FogFed.addMember and the same key (a new generation); both stay in FogFed's events.
    /// @param node The moving node.
    /// @param toFederation The destination federation.
    /// @param expectedKey The X25519 key from the node's signed move request.
    /// @return level Where the record was found.
    function moveMember(address node, uint32 toFederation, bytes32 expectedKey) external onlyTas returns (uint8 level) {
        uint8 status;
        uint32 from;
        (status, level, from) = checkHandover(node, toFederation, expectedKey);
        if (status != HANDOVER_OK) revert HandoverRefused(node, toFederation, status);
        fogfed.removeMember(node, "");
        fogfed.addMember(toFederation, node, expectedKey);
        emit MemberMoved(node, from, toFederation, level, msg.sender);
    }

    function _exists(uint32 federationId) private view returns (bool) {
        if (federationId == 0) return false;
        (bytes24 commitment,,) = fogfed.federation(federationId);
        return commitment != bytes24(0);
    }

    /// @dev `start` and its ancestors, at most MAX_DEPTH + 1 of them (parents have smaller ids in
    /// FogFed, so the walk always ends; the bound keeps the gas bounded).
    function _ancestry(uint32 start) private view returns (uint32[] memory out) {
        uint32[] memory buf = new uint32[](MAX_DEPTH + 1);
        uint256 n = 0;
        for (uint32 at = start; at != 0 && n <= MAX_DEPTH; ++n) {
            buf[n] = at;
            (, at,) = fogfed.federation(at);
        }
        out = new uint32[](n);
        for (uint256 i = 0; i < n; ++i) out[i] = buf[i];
    }
}
