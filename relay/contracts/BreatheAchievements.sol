// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {BreatheTokens} from "./BreatheTokens.sol";

/// @title Breathe achievement tokens.
/// @notice One token per achievement a device owner chose to mint. The metadata (a data: URI)
/// names the achievement and the day and holds a salted commitment to the session summary;
/// nothing personal is stored on chain.
contract BreatheAchievements is BreatheTokens {
    constructor(address admin, address minter)
        BreatheTokens("Breathe Achievements", "BREATHE", admin, minter)
    {}

    /// @notice Mint the achievement token for off-chain request `requestId` to `to`.
    /// @dev Reverts with `RequestAlreadyMinted` when that request was minted before.
    function mint(address to, bytes32 requestId, string calldata uri)
        external
        onlyRole(MINTER_ROLE)
        returns (uint256)
    {
        return _mintOnce(to, requestId, uri);
    }
}
