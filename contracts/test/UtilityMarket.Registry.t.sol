// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

import {IAccessControl} from "@openzeppelin/contracts/access/IAccessControl.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {Pausable} from "@openzeppelin/contracts/utils/Pausable.sol";
import {UtilityMarket} from "../src/UtilityMarket.sol";
import {MarketFixture} from "./utils/MarketFixture.sol";

contract UtilityMarketRegistryTest is MarketFixture {
    uint256 private constant TOO_LARGE_PRICE = uint256(type(uint128).max) + 1;

    address internal stranger = makeAddr("stranger");
    address internal newcomer = makeAddr("newcomer");
    address internal spareMeter = makeAddr("spareMeter");

    function _deploy(IERC20 token_, address admin, address provider_, uint256 sellsAt, uint256 buysAt)
        internal
        returns (UtilityMarket)
    {
        return new UtilityMarket(token_, "heat", "kWh", admin, provider_, sellsAt, buysAt, GRACE);
    }

    /// Calls the market as `caller` and requires the exact revert data `expected`; used where one
    /// test sweeps many functions for the same guard.
    function _assertReverts(address caller, bytes memory call, bytes memory expected) internal {
        vm.prank(caller);
        (bool ok, bytes memory returned) = address(market).call(call);
        assertFalse(ok);
        assertEq(returned, expected);
    }

    function _unauthorized(address account, bytes32 role) internal pure returns (bytes memory) {
        return abi.encodeWithSelector(IAccessControl.AccessControlUnauthorizedAccount.selector, account, role);
    }

    // ------------------------------------------------------------------ constructor

    function test_constructor_setsState() public view {
        assertEq(address(market.token()), address(token));
        assertEq(market.utility(), "biogas");
        assertEq(market.unit(), "m3");
        assertEq(market.gracePeriod(), GRACE);
        assertEq(market.provider(), provider);
        assertEq(market.providerSellsAt(), PROVIDER_SELLS_AT);
        assertEq(market.providerBuysAt(), PROVIDER_BUYS_AT);
        assertEq(market.providerTradeNonce(), 0);
        // No limit on sales to the provider until the operator sets one.
        assertEq(market.providerSaleLimit(), type(uint256).max);
        assertEq(market.MAX_BATCH(), 100);
        assertEq(market.OPERATOR_ROLE(), keccak256("OPERATOR_ROLE"));
        assertTrue(market.hasRole(market.DEFAULT_ADMIN_ROLE(), operator));
        assertTrue(market.hasRole(market.OPERATOR_ROLE(), operator));
        assertFalse(market.paused());
    }

    function test_constructor_emitsProviderAndTariffs() public {
        address expected = vm.computeCreateAddress(address(this), vm.getNonce(address(this)));
        vm.expectEmit(expected);
        emit UtilityMarket.ProviderChanged(provider);
        vm.expectEmit(expected);
        emit UtilityMarket.TariffsChanged(1, 2);
        _deploy(token, operator, provider, 1, 2);
    }

    function test_constructor_revertsOnZeroAddresses() public {
        vm.expectRevert(UtilityMarket.UtilityMarketZeroAddress.selector);
        _deploy(IERC20(address(0)), operator, provider, 1, 2);
        vm.expectRevert(UtilityMarket.UtilityMarketZeroAddress.selector);
        _deploy(token, address(0), provider, 1, 2);
        vm.expectRevert(UtilityMarket.UtilityMarketZeroAddress.selector);
        _deploy(token, operator, address(0), 1, 2);
    }

    function test_constructor_revertsOnTooLargeTariffs() public {
        vm.expectRevert(abi.encodeWithSelector(UtilityMarket.UtilityMarketPriceTooLarge.selector, TOO_LARGE_PRICE));
        _deploy(token, operator, provider, TOO_LARGE_PRICE, 2);
        vm.expectRevert(abi.encodeWithSelector(UtilityMarket.UtilityMarketPriceTooLarge.selector, TOO_LARGE_PRICE));
        _deploy(token, operator, provider, 1, TOO_LARGE_PRICE);
    }

    // ------------------------------------------------------------------ prosumers

    function test_registerProsumer_admitsAccount() public {
        vm.expectEmit(address(market));
        emit UtilityMarket.ProsumerRegistered(newcomer);
        vm.prank(operator);
        market.registerProsumer(newcomer);
        assertTrue(market.isProsumer(newcomer));
    }

    function test_registerProsumer_revertsOnZeroAddress() public {
        vm.expectRevert(UtilityMarket.UtilityMarketZeroAddress.selector);
        vm.prank(operator);
        market.registerProsumer(address(0));
    }

    function test_registerProsumer_revertsWhenAlreadyRegistered() public {
        vm.expectRevert(abi.encodeWithSelector(UtilityMarket.UtilityMarketAlreadyProsumer.selector, seller));
        vm.prank(operator);
        market.registerProsumer(seller);
    }

    function test_deregisterProsumer_removesAccountButKeepsItsMeters() public {
        vm.expectEmit(address(market));
        emit UtilityMarket.ProsumerDeregistered(seller);
        vm.prank(operator);
        market.deregisterProsumer(seller);
        assertFalse(market.isProsumer(seller));
        // Its open agreements must still be able to report, so the meter stays registered.
        assertEq(market.meterOwner(sellerMeter), seller);
    }

    function test_deregisterProsumer_revertsForNonProsumer() public {
        vm.expectRevert(abi.encodeWithSelector(UtilityMarket.UtilityMarketNotProsumer.selector, newcomer));
        vm.prank(operator);
        market.deregisterProsumer(newcomer);
    }

    function test_registerProsumer_readmitsDeregisteredAccount() public {
        vm.startPrank(operator);
        market.deregisterProsumer(seller);
        market.registerProsumer(seller);
        vm.stopPrank();
        assertTrue(market.isProsumer(seller));
    }

    // ------------------------------------------------------------------ meters

    function test_registerMeter_assignsMeterToProsumer() public {
        vm.expectEmit(address(market));
        emit UtilityMarket.MeterRegistered(spareMeter, seller);
        vm.prank(operator);
        market.registerMeter(seller, spareMeter);
        assertEq(market.meterOwner(spareMeter), seller);
    }

    function test_registerMeter_revertsOnZeroMeter() public {
        vm.expectRevert(UtilityMarket.UtilityMarketZeroAddress.selector);
        vm.prank(operator);
        market.registerMeter(seller, address(0));
    }

    function test_registerMeter_revertsForNonProsumer() public {
        vm.expectRevert(abi.encodeWithSelector(UtilityMarket.UtilityMarketNotProsumer.selector, newcomer));
        vm.prank(operator);
        market.registerMeter(newcomer, spareMeter);
    }

    function test_registerMeter_revertsWhenMeterTaken() public {
        // A meter key that already speaks for the buyer must not be handed to the seller.
        vm.expectRevert(abi.encodeWithSelector(UtilityMarket.UtilityMarketMeterTaken.selector, buyerMeter, buyer));
        vm.prank(operator);
        market.registerMeter(seller, buyerMeter);
    }

    function test_revokeMeter_removesMeterForGood() public {
        assertFalse(market.isRevokedMeter(sellerMeter));
        vm.expectEmit(address(market));
        emit UtilityMarket.MeterRevoked(sellerMeter, seller);
        vm.prank(operator);
        market.revokeMeter(sellerMeter);
        assertEq(market.meterOwner(sellerMeter), address(0));
        assertTrue(market.isRevokedMeter(sellerMeter));
        assertFalse(market.isRevokedMeter(buyerMeter));
    }

    function test_revokeMeter_revertsForUnknownMeter() public {
        vm.expectRevert(abi.encodeWithSelector(UtilityMarket.UtilityMarketUnknownMeter.selector, spareMeter));
        vm.prank(operator);
        market.revokeMeter(spareMeter);
    }

    function test_registerMeter_revertsForRevokedMeter() public {
        // A report signed before revocation must never count again, for another owner or its own.
        bytes memory wasRevoked =
            abi.encodeWithSelector(UtilityMarket.UtilityMarketMeterWasRevoked.selector, sellerMeter);
        vm.startPrank(operator);
        market.revokeMeter(sellerMeter);
        vm.expectRevert(wasRevoked);
        market.registerMeter(buyer, sellerMeter);
        vm.expectRevert(wasRevoked);
        market.registerMeter(seller, sellerMeter);
        vm.stopPrank();
        assertEq(market.meterOwner(sellerMeter), address(0));
    }

    function test_revokeMeter_revertsWhenAlreadyRevoked() public {
        vm.startPrank(operator);
        market.revokeMeter(sellerMeter);
        vm.expectRevert(abi.encodeWithSelector(UtilityMarket.UtilityMarketUnknownMeter.selector, sellerMeter));
        market.revokeMeter(sellerMeter);
        vm.stopPrank();
    }

    // ------------------------------------------------------------ provider, tariffs

    function test_setProvider_changesProvider() public {
        vm.expectEmit(address(market));
        emit UtilityMarket.ProviderChanged(newcomer);
        vm.prank(operator);
        market.setProvider(newcomer);
        assertEq(market.provider(), newcomer);
    }

    function test_setProvider_revertsOnZeroAddress() public {
        vm.expectRevert(UtilityMarket.UtilityMarketZeroAddress.selector);
        vm.prank(operator);
        market.setProvider(address(0));
    }

    function test_setTariffs_changesTariffsUpToUint128() public {
        uint256 max = type(uint128).max;
        vm.expectEmit(address(market));
        emit UtilityMarket.TariffsChanged(max, 0);
        vm.prank(operator);
        market.setTariffs(max, 0);
        assertEq(market.providerSellsAt(), max);
        assertEq(market.providerBuysAt(), 0);
    }

    function test_setTariffs_revertsOnTooLargeTariffs() public {
        vm.startPrank(operator);
        vm.expectRevert(abi.encodeWithSelector(UtilityMarket.UtilityMarketPriceTooLarge.selector, TOO_LARGE_PRICE));
        market.setTariffs(TOO_LARGE_PRICE, 1);
        vm.expectRevert(abi.encodeWithSelector(UtilityMarket.UtilityMarketPriceTooLarge.selector, TOO_LARGE_PRICE));
        market.setTariffs(1, TOO_LARGE_PRICE);
        vm.stopPrank();
    }

    function test_setProviderSaleLimit_changesLimit() public {
        vm.startPrank(operator);
        vm.expectEmit(address(market));
        emit UtilityMarket.ProviderSaleLimitChanged(0);
        market.setProviderSaleLimit(0);
        assertEq(market.providerSaleLimit(), 0);
        // Back to no limit at all.
        vm.expectEmit(address(market));
        emit UtilityMarket.ProviderSaleLimitChanged(type(uint256).max);
        market.setProviderSaleLimit(type(uint256).max);
        vm.stopPrank();
        assertEq(market.providerSaleLimit(), type(uint256).max);
    }

    // -------------------------------------------------------------------- pause

    function test_pause_emitsAndPauses() public {
        vm.expectEmit(address(market));
        emit Pausable.Paused(operator);
        vm.prank(operator);
        market.pause();
        assertTrue(market.paused());
    }

    function test_pause_revertsWhenPaused() public {
        vm.startPrank(operator);
        market.pause();
        vm.expectRevert(Pausable.EnforcedPause.selector);
        market.pause();
        vm.stopPrank();
    }

    function test_unpause_emitsAndResumesTrading() public {
        vm.startPrank(operator);
        market.pause();
        vm.expectEmit(address(market));
        emit Pausable.Unpaused(operator);
        market.unpause();
        vm.stopPrank();
        assertFalse(market.paused());

        (bool open,,,) = market.agreementState(_open(_terms()));
        assertTrue(open);
    }

    function test_unpause_revertsWhenNotPaused() public {
        vm.expectRevert(Pausable.ExpectedPause.selector);
        vm.prank(operator);
        market.unpause();
    }

    function test_pause_blocksEveryTradingFunction() public {
        // Well-formed, signed arguments; the exact EnforcedPause error shows that the pause, checked
        // before anything else, is what refuses each call. Reports are not among them (see
        // ReportDeliveryTest.test_reportDelivery_recordsWhilePaused).
        UtilityMarket.Agreement memory terms = _terms();
        bytes32 id = _agreementId(terms);
        bytes memory sellerSig = _sign(sellerKey, id);
        bytes memory buyerSig = _sign(buyerKey, id);
        vm.prank(seller);
        bytes32 negotiationId = market.requestNegotiation(7, UtilityMarket.Role.Seller, QUANTITY, address(0));
        UtilityMarket.Offer memory offer = UtilityMarket.Offer({
            negotiationId: negotiationId,
            seller: seller,
            buyer: buyer,
            proposer: seller,
            round: 1,
            quantity: QUANTITY,
            unitPrice: PRICE,
            previous: bytes32(0)
        });
        UtilityMarket.Agreement[] memory batch = new UtilityMarket.Agreement[](1);
        batch[0] = terms;

        bytes[] memory calls = new bytes[](8);
        calls[0] = abi.encodeCall(market.requestNegotiation, (8, UtilityMarket.Role.Buyer, QUANTITY, buyer));
        calls[1] = abi.encodeCall(market.joinNegotiation, (negotiationId));
        calls[2] = abi.encodeCall(market.postOffer, (offer, _sign(sellerKey, _offerHash(offer))));
        calls[3] = abi.encodeCall(market.breakOff, (negotiationId));
        calls[4] = abi.encodeCall(market.openAgreement, (terms, sellerSig, buyerSig));
        calls[5] = abi.encodeCall(
            market.tradeWithProvider,
            (UtilityMarket.Role.Buyer, QUANTITY, terms.deliveryStart, terms.deliveryEnd, PROVIDER_SELLS_AT)
        );
        calls[6] = abi.encodeCall(market.settle, (terms));
        calls[7] = abi.encodeCall(market.settleBatch, (batch));

        vm.prank(operator);
        market.pause();
        for (uint256 i = 0; i < calls.length; ++i) {
            _assertReverts(seller, calls[i], abi.encodeWithSelector(Pausable.EnforcedPause.selector));
        }
    }

    function test_pause_keepsRegistryAndNonceWithdrawalAvailable() public {
        vm.startPrank(operator);
        market.pause();
        market.registerProsumer(newcomer);
        market.registerMeter(newcomer, spareMeter);
        // A compromised meter key must be revocable at once, since reports flow during a pause.
        market.revokeMeter(sellerMeter);
        market.setTariffs(1, 1);
        market.setProviderSaleLimit(1);
        vm.stopPrank();
        // A prosumer must be able to withdraw a signed agreement even while trading is halted.
        vm.prank(seller);
        market.invalidateNonce(1);
        assertTrue(market.isProsumer(newcomer));
        assertTrue(market.isRevokedMeter(sellerMeter));
        assertEq(market.providerSaleLimit(), 1);
        assertTrue(market.isNonceUsed(seller, 1));
    }

    // ----------------------------------------------------------- access control

    function test_operatorFunctions_revertForNonOperator() public {
        bytes[] memory calls = new bytes[](9);
        calls[0] = abi.encodeCall(market.registerProsumer, (newcomer));
        calls[1] = abi.encodeCall(market.deregisterProsumer, (seller));
        calls[2] = abi.encodeCall(market.registerMeter, (seller, spareMeter));
        calls[3] = abi.encodeCall(market.revokeMeter, (sellerMeter));
        calls[4] = abi.encodeCall(market.setProvider, (newcomer));
        calls[5] = abi.encodeCall(market.setTariffs, (1, 1));
        calls[6] = abi.encodeCall(market.pause, ());
        calls[7] = abi.encodeCall(market.unpause, ());
        calls[8] = abi.encodeCall(market.setProviderSaleLimit, (0));
        bytes memory unauthorized = _unauthorized(seller, market.OPERATOR_ROLE());
        // A registered prosumer is the likeliest impostor.
        for (uint256 i = 0; i < calls.length; ++i) {
            _assertReverts(seller, calls[i], unauthorized);
        }
    }

    function test_supportsInterface_reportsAccessControl() public view {
        assertTrue(market.supportsInterface(type(IAccessControl).interfaceId));
        assertFalse(market.supportsInterface(0xffffffff));
    }

    function test_grantRole_letsAdminAppointOperator() public {
        bytes32 operatorRole = market.OPERATOR_ROLE();
        assertEq(market.getRoleAdmin(operatorRole), market.DEFAULT_ADMIN_ROLE());
        vm.prank(operator);
        market.grantRole(operatorRole, newcomer);
        vm.prank(newcomer);
        market.registerProsumer(stranger);
        assertTrue(market.isProsumer(stranger));
    }

    function test_revokeRole_removesOperatorRights() public {
        bytes32 operatorRole = market.OPERATOR_ROLE();
        vm.prank(operator);
        market.revokeRole(operatorRole, operator);
        vm.expectRevert(_unauthorized(operator, operatorRole));
        vm.prank(operator);
        market.registerProsumer(newcomer);
    }

    function test_grantRole_revertsForOperatorWithoutAdminRole() public {
        bytes32 operatorRole = market.OPERATOR_ROLE();
        vm.prank(operator);
        market.grantRole(operatorRole, newcomer);
        // An appointed operator must not be able to appoint others.
        vm.expectRevert(_unauthorized(newcomer, market.DEFAULT_ADMIN_ROLE()));
        vm.prank(newcomer);
        market.grantRole(operatorRole, stranger);
    }
}
