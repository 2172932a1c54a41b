// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

import {IAccessControl} from "@openzeppelin/contracts/access/IAccessControl.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {ERC20Permit} from "@openzeppelin/contracts/token/ERC20/extensions/ERC20Permit.sol";
import {Test} from "forge-std/Test.sol";
import {UtilityToken} from "../src/UtilityToken.sol";

contract UtilityTokenTest is Test {
    bytes32 private constant PERMIT_TYPEHASH =
        keccak256("Permit(address owner,address spender,uint256 value,uint256 nonce,uint256 deadline)");
    uint256 private constant AMOUNT = 500e18;

    UtilityToken internal token;
    address internal admin = makeAddr("admin");
    address internal spender = makeAddr("spender");
    address internal stranger;
    uint256 internal strangerKey;
    address internal holder;
    uint256 internal holderKey;

    function setUp() public {
        (holder, holderKey) = makeAddrAndKey("holder");
        (stranger, strangerKey) = makeAddrAndKey("stranger");
        token = new UtilityToken(admin);
    }

    function _permitDigest(uint256 value, uint256 nonce, uint256 deadline) internal view returns (bytes32) {
        bytes32 structHash = keccak256(abi.encode(PERMIT_TYPEHASH, holder, spender, value, nonce, deadline));
        return keccak256(abi.encodePacked("\x19\x01", token.DOMAIN_SEPARATOR(), structHash));
    }

    function _signPermit(uint256 key, uint256 nonce, uint256 deadline)
        internal
        view
        returns (uint8 v, bytes32 r, bytes32 s)
    {
        return vm.sign(key, _permitDigest(AMOUNT, nonce, deadline));
    }

    /// Submits a permit for `holder`, as a relayer would.
    function _submitPermit(uint256 deadline, uint8 v, bytes32 r, bytes32 s) internal {
        vm.prank(stranger);
        token.permit(holder, spender, AMOUNT, deadline, v, r, s);
    }

    function _expectUnauthorized(address account, bytes32 role) internal {
        vm.expectRevert(abi.encodeWithSelector(IAccessControl.AccessControlUnauthorizedAccount.selector, account, role));
    }

    function test_constructor_setsMetadataAndRoles() public view {
        assertEq(token.name(), "UtilityToken");
        assertEq(token.symbol(), "UTK");
        assertEq(token.decimals(), 18);
        assertEq(token.totalSupply(), 0);
        assertTrue(token.hasRole(token.DEFAULT_ADMIN_ROLE(), admin));
        assertTrue(token.hasRole(token.MINTER_ROLE(), admin));
        assertEq(token.MINTER_ROLE(), keccak256("MINTER_ROLE"));
    }

    function test_DOMAIN_SEPARATOR_bindsNameVersionChainAndToken() public view {
        bytes32 expected = keccak256(
            abi.encode(
                keccak256("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"),
                keccak256("UtilityToken"),
                keccak256("1"),
                block.chainid,
                address(token)
            )
        );
        assertEq(token.DOMAIN_SEPARATOR(), expected);
    }

    function test_mint_creditsRecipient() public {
        vm.expectEmit(address(token));
        emit IERC20.Transfer(address(0), holder, AMOUNT);
        vm.prank(admin);
        token.mint(holder, AMOUNT);
        assertEq(token.balanceOf(holder), AMOUNT);
        assertEq(token.totalSupply(), AMOUNT);
    }

    function test_mint_revertsWithoutMinterRole() public {
        _expectUnauthorized(stranger, token.MINTER_ROLE());
        vm.prank(stranger);
        token.mint(stranger, AMOUNT);
    }

    function test_grantRole_letsAdminAddMinter() public {
        bytes32 minterRole = token.MINTER_ROLE();
        vm.prank(admin);
        token.grantRole(minterRole, stranger);
        vm.prank(stranger);
        token.mint(holder, AMOUNT);
        assertEq(token.balanceOf(holder), AMOUNT);
    }

    function test_grantRole_revertsForMinterWithoutAdminRole() public {
        bytes32 minterRole = token.MINTER_ROLE();
        vm.prank(admin);
        token.grantRole(minterRole, stranger);
        // Minting rights must not let a minter hand them on.
        _expectUnauthorized(stranger, token.DEFAULT_ADMIN_ROLE());
        vm.prank(stranger);
        token.grantRole(minterRole, holder);
    }

    function test_revokeRole_stopsMinting() public {
        bytes32 minterRole = token.MINTER_ROLE();
        vm.prank(admin);
        token.revokeRole(minterRole, admin);
        _expectUnauthorized(admin, minterRole);
        vm.prank(admin);
        token.mint(holder, AMOUNT);
    }

    function test_permit_setsAllowanceFromSignature() public {
        (uint8 v, bytes32 r, bytes32 s) = _signPermit(holderKey, 0, block.timestamp);
        _submitPermit(block.timestamp, v, r, s);
        assertEq(token.allowance(holder, spender), AMOUNT);
        assertEq(token.nonces(holder), 1);
    }

    function test_permit_revertsWhenExpired() public {
        uint256 deadline = block.timestamp - 1;
        (uint8 v, bytes32 r, bytes32 s) = _signPermit(holderKey, 0, deadline);
        vm.expectRevert(abi.encodeWithSelector(ERC20Permit.ERC2612ExpiredSignature.selector, deadline));
        _submitPermit(deadline, v, r, s);
    }

    function test_permit_revertsForWrongSigner() public {
        (uint8 v, bytes32 r, bytes32 s) = _signPermit(strangerKey, 0, block.timestamp);
        vm.expectRevert(abi.encodeWithSelector(ERC20Permit.ERC2612InvalidSigner.selector, stranger, holder));
        _submitPermit(block.timestamp, v, r, s);
    }

    function test_permit_revertsOnReplay() public {
        uint256 deadline = block.timestamp;
        (uint8 v, bytes32 r, bytes32 s) = _signPermit(holderKey, 0, deadline);
        _submitPermit(deadline, v, r, s);
        // The nonce moved on, so the old signature now recovers to an unrelated address.
        address recovered = ecrecover(_permitDigest(AMOUNT, 1, deadline), v, r, s);
        vm.expectRevert(abi.encodeWithSelector(ERC20Permit.ERC2612InvalidSigner.selector, recovered, holder));
        _submitPermit(deadline, v, r, s);
    }

    function testFuzz_transferFrom_conservesSupply(uint256 minted, uint256 allowed, uint256 moved) public {
        minted = bound(minted, 0, type(uint128).max);
        allowed = bound(allowed, 0, minted);
        moved = bound(moved, 0, allowed);
        vm.prank(admin);
        token.mint(holder, minted);
        vm.prank(holder);
        token.approve(spender, allowed);

        vm.prank(spender);
        assertTrue(token.transferFrom(holder, stranger, moved));

        assertEq(token.balanceOf(holder) + token.balanceOf(stranger), minted);
        assertEq(token.balanceOf(stranger), moved);
        assertEq(token.allowance(holder, spender), allowed - moved);
        assertEq(token.totalSupply(), minted);
    }
}
