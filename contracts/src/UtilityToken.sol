// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";
import {ERC20Permit} from "@openzeppelin/contracts/token/ERC20/extensions/ERC20Permit.sol";

/// @title UtilityToken
/// @notice The park's unit of account: prosumers and providers hold it, the utility markets escrow
/// it. 18 decimals; one token is the value the park operator assigns to it (the seed paper ties it
/// to Ether and to units of each utility).
/// @dev Only holders of MINTER_ROLE (the park operator) create tokens. ERC-2612 permits let an
/// edge agent approve a market with a signature instead of a transaction.
contract UtilityToken is ERC20, ERC20Permit, AccessControl {
    /// @notice Role allowed to mint.
    bytes32 public constant MINTER_ROLE = keccak256("MINTER_ROLE");

    /// @param admin Receives DEFAULT_ADMIN_ROLE and MINTER_ROLE.
    constructor(address admin) ERC20("UtilityToken", "UTK") ERC20Permit("UtilityToken") {
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(MINTER_ROLE, admin);
    }

    /// @notice Creates `amount` base units for `to`.
    /// @param to Receiving wallet.
    /// @param amount Base units (10^-18 token).
    function mint(address to, uint256 amount) external onlyRole(MINTER_ROLE) {
        _mint(to, amount);
    }
}
