// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {ERC721} from "@openzeppelin/contracts/token/ERC721/ERC721.sol";
import {ERC721URIStorage} from "@openzeppelin/contracts/token/ERC721/extensions/ERC721URIStorage.sol";

/// @title The Breathe token family: ERC-721 tokens minted exactly once per off-chain request.
/// @notice The relay mints on behalf of devices. Every mint carries a request id (a hash the
/// relay derives from the device and its message id), and a second mint for the same request is
/// refused, so a relay that crashed between sending and seeing the receipt can always retry.
/// Concrete contracts (achievements now, pattern tokens later) add the public mint with their own
/// extra rules; this base holds the bookkeeping they share.
abstract contract BreatheTokens is ERC721URIStorage, AccessControl {
    bytes32 public constant MINTER_ROLE = keccak256("MINTER_ROLE");

    /// @dev Token ids start at 1, so 0 in `_tokenOfRequest` means "not minted".
    uint256 private _lastTokenId;
    mapping(bytes32 requestId => uint256 tokenId) private _tokenOfRequest;

    /// @notice A token was minted for an off-chain request (one event per request, ever).
    event RequestMinted(bytes32 indexed requestId, uint256 indexed tokenId, address indexed to);

    /// @notice `requestId` was minted before, as `tokenId`; nothing was minted now.
    error RequestAlreadyMinted(bytes32 requestId, uint256 tokenId);
    /// @notice The zero request id is reserved (it cannot be told apart from "none").
    error InvalidRequestId();

    constructor(string memory name_, string memory symbol_, address admin, address minter)
        ERC721(name_, symbol_)
    {
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(MINTER_ROLE, minter);
    }

    /// @notice The token minted for `requestId`, or 0 when there is none yet.
    function tokenOfRequest(bytes32 requestId) public view returns (uint256) {
        return _tokenOfRequest[requestId];
    }

    /// @notice Whether `requestId` has been minted.
    function minted(bytes32 requestId) public view returns (bool) {
        return _tokenOfRequest[requestId] != 0;
    }

    /// @notice How many tokens exist (ids run 1..totalMinted; none is ever burned).
    function totalMinted() public view returns (uint256) {
        return _lastTokenId;
    }

    /// @dev Mint the next token for `requestId` to `to` with metadata `uri`, once per request.
    /// State is written before `_safeMint` calls a receiving contract.
    function _mintOnce(address to, bytes32 requestId, string calldata uri)
        internal
        returns (uint256 tokenId)
    {
        if (requestId == bytes32(0)) revert InvalidRequestId();
        uint256 earlier = _tokenOfRequest[requestId];
        if (earlier != 0) revert RequestAlreadyMinted(requestId, earlier);
        tokenId = ++_lastTokenId;
        _tokenOfRequest[requestId] = tokenId;
        _setTokenURI(tokenId, uri);
        emit RequestMinted(requestId, tokenId, to);
        _safeMint(to, tokenId);
    }

    function supportsInterface(bytes4 interfaceId)
        public
        view
        virtual
        override(ERC721URIStorage, AccessControl)
        returns (bool)
    {
        return super.supportsInterface(interfaceId);
    }
}
