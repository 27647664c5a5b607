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

/// @title Mobility of fog nodes across the federation tree: handover verified by on-chain records,
/// per-federation backward-secrecy setting, and history keys for federations that share their past.
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
    mapping(uint32 => bool) private _backwardSecrecyOff; // default (false) = backward secrecy on

    /// @notice `node` moved from `fromFederation` to `toFederation`; its record was found `level`
    /// levels above the destination (0: in the destination itself, i.e. a descendant of it).
    event MemberMoved(address indexed node, uint32 indexed fromFederation, uint32 indexed toFederation, uint8 level,
        address operator);
    /// @notice A federation's backward-secrecy setting changed.
    event BackwardSecrecySet(uint32 indexed federationId, bool enabled, address operator);
    /// @notice A key for the epochs `fromEpoch`..`toEpoch` of `federationId` (history of a federation
    /// without backward secrecy), sealed to `node`'s X25519 key.
    event HistoryKeyDelivered(address indexed node, uint32 indexed federationId, uint32 fromEpoch, uint32 toEpoch,
        bytes sealedKey);

    /// @notice The caller is not a TAS operator of FogFed.
    error NotTas(address caller);
    /// @notice The zero address was given as the FogFed contract.
    error ZeroAddress();
    /// @notice No federation has this id.
    error UnknownFederation(uint32 federationId);
    /// @notice The handover check failed with `status`; the node must re-key and enrol from scratch.
    error HandoverRefused(address node, uint32 toFederation, uint8 status);
    /// @notice The node is not an active member of this federation.
    error NotFederationMember(address node, uint32 federationId);
    /// @notice A history key must cover epochs below the current one, and be 1-8192 bytes.
    error InvalidHistoryKey();

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

    /// @notice Turn backward secrecy of a federation on (newcomers cannot read files from before
    /// they joined) or off (newcomers receive a history key). Default: on.
    /// @dev TAS operators only; no event when nothing changes.
    /// @param federationId The federation.
    /// @param enabled True for backward secrecy.
    function setBackwardSecrecy(uint32 federationId, bool enabled) external onlyTas {
        if (!_exists(federationId)) revert UnknownFederation(federationId);
        if (_backwardSecrecyOff[federationId] == !enabled) return;
        _backwardSecrecyOff[federationId] = !enabled;
        emit BackwardSecrecySet(federationId, enabled, msg.sender);
    }

    /// @notice Whether a federation keeps newcomers out of its past (default true).
    /// @param federationId The federation.
    /// @return True when backward secrecy is on.
    function backwardSecrecy(uint32 federationId) external view returns (bool) {
        return !_backwardSecrecyOff[federationId];
    }

    /// @notice Post a history key (epochs `fromEpoch`..`toEpoch`) for a newcomer of a federation
    /// whose backward secrecy is off.
    /// @dev TAS operators only. `node` must be an active member of `federationId`, backward secrecy
    /// off there, and `toEpoch` below the current epoch (the current one comes with deliverKey).
    /// @param node The recipient.
    /// @param federationId Its federation.
    /// @param fromEpoch First epoch covered.
    /// @param toEpoch Last epoch covered.
    /// @param sealedKey The sealed box, 1-8192 bytes.
    function deliverHistoryKey(address node, uint32 federationId, uint32 fromEpoch, uint32 toEpoch,
        bytes calldata sealedKey) external onlyTas {
        (uint32 fid, bool active,,,,) = fogfed.member(node);
        if (!active || fid != federationId) revert NotFederationMember(node, federationId);
        (,, uint32 epoch) = fogfed.federation(federationId);
        if (!_backwardSecrecyOff[federationId] || fromEpoch > toEpoch || toEpoch >= epoch
            || sealedKey.length == 0 || sealedKey.length > 8192) revert InvalidHistoryKey();
        emit HistoryKeyDelivered(node, federationId, fromEpoch, toEpoch, sealedKey);
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
