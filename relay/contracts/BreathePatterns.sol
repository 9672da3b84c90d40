// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {BreatheTokens} from "./BreatheTokens.sol";

/// @title Breathe pattern tokens: one original per breathing pattern.
/// @notice A creator mints a published pattern. The metadata (a data: URI) holds the pattern's
/// phases and its content hash, the sha256 of the four phase lengths, so a renamed copy has the
/// same hash. The contract keeps one token per content hash: the first mint is the original,
/// and every later mint of the same phases is refused, whoever asks.
contract BreathePatterns is BreatheTokens {
    mapping(bytes32 contentHash => uint256 tokenId) private _tokenOfContent;

    /// @notice The original of the pattern with `contentHash` is `tokenId` (once per hash, ever).
    event PatternMinted(bytes32 indexed contentHash, uint256 indexed tokenId);

    /// @notice A pattern with `contentHash` was minted before, as `tokenId`; nothing was minted.
    error PatternAlreadyMinted(bytes32 contentHash, uint256 tokenId);
    /// @notice The zero content hash is reserved (it cannot be told apart from "none").
    error InvalidContentHash();

    constructor(address admin, address minter)
        BreatheTokens("Breathe Patterns", "BREATHEPAT", admin, minter)
    {}

    /// @notice The original token of the pattern with `contentHash`, or 0 when there is none.
    function tokenOfContent(bytes32 contentHash) public view returns (uint256) {
        return _tokenOfContent[contentHash];
    }

    /// @notice Mint the original of pattern `contentHash` for off-chain request `requestId`.
    /// @dev A repeated request reverts with `RequestAlreadyMinted` (checked first, so a retry
    /// is told it succeeded before); another request for a minted hash reverts with
    /// `PatternAlreadyMinted`. The hash is recorded before `_mintOnce` calls a receiver.
    function mint(address to, bytes32 requestId, bytes32 contentHash, string calldata uri)
        external
        onlyRole(MINTER_ROLE)
        returns (uint256 tokenId)
    {
        if (contentHash == bytes32(0)) revert InvalidContentHash();
        if (!minted(requestId)) {
            uint256 original = _tokenOfContent[contentHash];
            if (original != 0) revert PatternAlreadyMinted(contentHash, original);
        }
        // _mintOnce numbers tokens totalMinted() + 1 (or reverts, undoing this write)
        tokenId = totalMinted() + 1;
        _tokenOfContent[contentHash] = tokenId;
        emit PatternMinted(contentHash, tokenId);
        uint256 mintedId = _mintOnce(to, requestId, uri);
        assert(mintedId == tokenId);
    }
}
