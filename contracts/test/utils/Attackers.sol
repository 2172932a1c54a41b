// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";

/// An ERC20 that, once armed, makes one arbitrary call from inside its next balance update: it
/// stands for any token whose transfer hands control to an attacker while the market is moving
/// escrow. The call's outcome is recorded rather than bubbled, so the transfer itself goes through
/// and a test can tell what the market did with the reentrant call.
contract ReentrantToken is ERC20 {
    address private _target;
    bytes private _payload;

    /// Whether the armed call was made, whether it succeeded, and its return or revert data.
    bool public reentered;
    bool public reentrySucceeded;
    bytes public reentryResult;

    constructor() ERC20("Reentrant", "RNT") {}

    function mint(address to, uint256 amount) external {
        _mint(to, amount);
    }

    /// Makes the next transfer call `target` with `payload` before moving the balance.
    function arm(address target, bytes calldata payload) external {
        _target = target;
        _payload = payload;
    }

    function _update(address from, address to, uint256 value) internal override {
        address target = _target;
        if (target != address(0)) {
            // Disarmed first so the reentrant call's own transfers, if any, do not recurse.
            delete _target;
            reentered = true;
            (reentrySucceeded, reentryResult) = target.call(_payload);
        }
        super._update(from, to, value);
    }
}
