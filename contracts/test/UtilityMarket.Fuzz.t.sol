// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

import {Vm} from "forge-std/Vm.sol";
import {UtilityMarket} from "../src/UtilityMarket.sol";
import {MarketFixture} from "./utils/MarketFixture.sol";

contract UtilityMarketFuzzTest is MarketFixture {
    /// Reports per fuzzed agreement: enough for rises, repeats and drops on both sides.
    uint256 private constant REPORTS = 8;
    /// Largest valid secp256k1 private key.
    uint256 private constant MAX_KEY = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364140;

    /// Opens an agreement of `quantity` at `price`, minting the buyer its escrow beforehand.
    function _openFunded(uint256 quantity, uint256 price) internal returns (UtilityMarket.Agreement memory terms) {
        terms = _terms(quantity, price, 1);
        vm.prank(operator);
        token.mint(buyer, quantity * price);
        _open(terms);
    }

    /// The terms of the last AgreementOpened among the recorded logs, rebuilt as an indexer would.
    function _openedTerms() internal returns (UtilityMarket.Agreement memory terms) {
        Vm.Log[] memory logs = vm.getRecordedLogs();
        for (uint256 i = logs.length; i > 0; --i) {
            if (logs[i - 1].topics[0] == UtilityMarket.AgreementOpened.selector) {
                return abi.decode(logs[i - 1].data, (UtilityMarket.Agreement));
            }
        }
        revert("no AgreementOpened");
    }

    /// The balances of the parties to `terms` (the provider may be one) and of the market.
    function _holdings(UtilityMarket.Agreement memory terms)
        internal
        view
        returns (uint256 sellers, uint256 buyers, uint256 escrowed)
    {
        return (token.balanceOf(terms.seller), token.balanceOf(terms.buyer), token.balanceOf(address(market)));
    }

    function _min(uint256 a, uint256 b) internal pure returns (uint256) {
        return a < b ? a : b;
    }

    /// What the model knows of one side's meter: whether it has reported, and its figure.
    struct Side {
        bool reported;
        uint256 figure;
    }

    /// The payable delivery: the lower figure where both meters reported, else the one side's
    /// that did, else nothing.
    function _payable(Side memory buyerSide, Side memory sellerSide) internal pure returns (uint256) {
        if (!buyerSide.reported) return sellerSide.figure;
        if (!sellerSide.reported) return buyerSide.figure;
        return _min(buyerSide.figure, sellerSide.figure);
    }

    /// Posts one report measured now and predicts its outcome from `side`, the model of the
    /// reporting side so far: its first figure may be anything, 0 included; after that, only a
    /// figure above the recorded one counts. Returns the side afterwards.
    function _reportAndPredict(
        UtilityMarket.Agreement memory terms,
        uint256 meterKey,
        uint256 figure,
        Side memory side,
        uint64 seq
    ) internal returns (Side memory) {
        bytes32 id = _agreementId(terms);
        UtilityMarket.DeliveryReport memory report = _reportFor(id, figure, uint64(block.timestamp), seq);
        bytes memory signature = _sign(meterKey, _reportHash(report));
        uint256 counted = _min(figure, terms.quantity);
        if (side.reported && counted <= side.figure) {
            vm.expectRevert(
                abi.encodeWithSelector(UtilityMarket.UtilityMarketStaleReport.selector, id, counted, side.figure)
            );
            market.reportDelivery(terms, report, signature);
            return side;
        }
        market.reportDelivery(terms, report, signature);
        return Side({reported: true, figure: counted});
    }

    /// Sends the fuzzed reports in the fuzzed order: bit i of `sellerSides` picks whose meter
    /// sends report i, and bit i of `skipped` leaves report i out, so either meter may stay
    /// silent. Returns each side as the model expects the market to record it.
    function _reportAll(
        UtilityMarket.Agreement memory terms,
        uint256[REPORTS] memory figures,
        uint8 sellerSides,
        uint8 skipped
    ) internal returns (Side memory buyerSide, Side memory sellerSide) {
        for (uint64 i = 0; i < REPORTS; ++i) {
            if ((skipped >> i) & 1 == 1) continue;
            uint256 figure = bound(figures[i], 0, terms.quantity * 2);
            if ((sellerSides >> i) & 1 == 1) {
                sellerSide = _reportAndPredict(terms, sellerMeterKey, figure, sellerSide, i);
            } else {
                buyerSide = _reportAndPredict(terms, buyerMeterKey, figure, buyerSide, i);
            }
        }
    }

    /// Settles and checks that the seller got exactly payable * price, the buyer the rest of the
    /// escrow, and that no token was created, lost or left behind.
    function _settleAndCheck(UtilityMarket.Agreement memory terms, uint256 payable_) internal {
        (uint256 sellers, uint256 buyers, uint256 escrow) = _holdings(terms);
        uint256 supply = token.totalSupply();
        market.settle(terms);
        (uint256 sellersAfter, uint256 buyersAfter, uint256 escrowAfter) = _holdings(terms);
        assertEq(sellersAfter, sellers + payable_ * terms.unitPrice);
        assertEq(buyersAfter, buyers + (terms.quantity - payable_) * terms.unitPrice);
        assertEq(escrowAfter, 0);
        assertEq(sellersAfter + buyersAfter, sellers + buyers + escrow);
        assertEq(token.totalSupply(), supply);
    }

    /// Settles at once if `confirmed` (the receiving side's meter reported) and the whole
    /// quantity is payable; otherwise requires the TooEarly revert, then settles after grace.
    function _settleWhenDue(UtilityMarket.Agreement memory terms, bool confirmed, uint256 payable_) internal {
        if (!confirmed || payable_ != terms.quantity) {
            uint256 settleableAt = uint256(terms.deliveryEnd) + GRACE;
            vm.expectRevert(
                abi.encodeWithSelector(
                    UtilityMarket.UtilityMarketSettlementTooEarly.selector, _agreementId(terms), settleableAt
                )
            );
            market.settle(terms);
            vm.warp(settleableAt);
        }
        _settleAndCheck(terms, payable_);
    }

    function testFuzz_settle_paysPayableAndRefundsTheRest(
        uint256 quantity,
        uint256 price,
        uint256[REPORTS] memory figures,
        uint8 sellerSides,
        uint8 skipped
    ) public {
        quantity = bound(quantity, 1, type(uint96).max);
        price = bound(price, 0, type(uint128).max);
        UtilityMarket.Agreement memory terms = _openFunded(quantity, price);
        assertEq(token.balanceOf(address(market)), quantity * price);

        (Side memory buyerSide, Side memory sellerSide) = _reportAll(terms, figures, sellerSides, skipped);
        (, uint256 buyerDelivered, uint256 sellerDelivered, uint256 payable_) =
            market.agreementState(_agreementId(terms));
        assertEq(buyerDelivered, buyerSide.figure);
        assertEq(sellerDelivered, sellerSide.figure);
        assertLe(buyerDelivered, quantity);
        assertLe(sellerDelivered, quantity);
        assertEq(payable_, _payable(buyerSide, sellerSide));

        // In an agreement between prosumers, the buyer's meter is the one that confirms early.
        _settleWhenDue(terms, buyerSide.reported, payable_);
    }

    function testFuzz_tradeWithProvider_saleToProviderPaysSellersFigure(
        uint256 quantity,
        uint256 tariff,
        uint256 sellerFigure,
        bool sellerReports
    ) public {
        quantity = bound(quantity, 1, type(uint96).max);
        tariff = bound(tariff, 0, type(uint128).max);
        sellerFigure = bound(sellerFigure, 0, quantity * 2);
        vm.startPrank(operator);
        market.setTariffs(PROVIDER_SELLS_AT, tariff);
        token.mint(provider, quantity * tariff);
        vm.stopPrank();
        uint256 providersBefore = token.balanceOf(provider);

        vm.recordLogs();
        vm.prank(seller);
        bytes32 id = market.tradeWithProvider(
            UtilityMarket.Role.Seller, quantity, uint64(block.timestamp), uint64(block.timestamp) + WINDOW, tariff
        );
        UtilityMarket.Agreement memory terms = _openedTerms();
        assertEq(_agreementId(terms), id);
        assertEq(market.providerSaleEscrow(seller), quantity * tariff);
        if (sellerReports) _report(terms, sellerMeterKey, sellerFigure, 1);

        // The provider has no meter here: the seller's meter alone measures, and confirms early.
        uint256 payable_ = sellerReports ? _min(sellerFigure, quantity) : 0;
        (,,, uint256 marketPayable) = market.agreementState(id);
        assertEq(marketPayable, payable_);
        _settleWhenDue(terms, sellerReports, payable_);
        assertEq(token.balanceOf(seller), FUNDS + payable_ * tariff);
        assertEq(token.balanceOf(provider), providersBefore - payable_ * tariff);
        assertEq(market.providerSaleEscrow(seller), 0);
    }

    function testFuzz_tradeWithProvider_keepsSaleEscrowWithinLimit(uint256 limit, uint256[4] memory quantities) public {
        limit = bound(limit, 0, 4 * QUANTITY * PROVIDER_BUYS_AT);
        vm.prank(operator);
        market.setProviderSaleLimit(limit);
        uint256 open;
        for (uint256 i = 0; i < quantities.length; ++i) {
            uint256 quantity = bound(quantities[i], 1, 2 * QUANTITY);
            uint256 wouldBeOpen = open + quantity * PROVIDER_BUYS_AT;
            bool refused = wouldBeOpen > limit;
            if (refused) {
                vm.expectRevert(
                    abi.encodeWithSelector(
                        UtilityMarket.UtilityMarketProviderSaleLimit.selector, seller, wouldBeOpen, limit
                    )
                );
            }
            vm.prank(seller);
            market.tradeWithProvider(
                UtilityMarket.Role.Seller,
                quantity,
                uint64(block.timestamp),
                uint64(block.timestamp) + WINDOW,
                PROVIDER_BUYS_AT
            );
            if (!refused) open = wouldBeOpen;
            assertEq(market.providerSaleEscrow(seller), open);
        }
        assertLe(open, limit);
        assertEq(token.balanceOf(address(market)), open);
    }

    function testFuzz_tradeWithProvider_windowStartsNowAtEarliest(uint256 startSeed, uint256 lengthSeed, bool buying)
        public
    {
        uint64 start = uint64(bound(startSeed, block.timestamp - 1 days, block.timestamp + 8 days));
        uint64 end = start + uint64(bound(lengthSeed, 1, 8 days));
        bool refused = start < block.timestamp || end > block.timestamp + market.MAX_PROVIDER_TRADE_WINDOW();
        if (refused) {
            vm.expectRevert(abi.encodeWithSelector(UtilityMarket.UtilityMarketInvalidWindow.selector, start, end));
        }
        vm.prank(buying ? buyer : seller);
        market.tradeWithProvider(
            buying ? UtilityMarket.Role.Buyer : UtilityMarket.Role.Seller,
            QUANTITY,
            start,
            end,
            buying ? PROVIDER_SELLS_AT : PROVIDER_BUYS_AT
        );
        assertEq(market.providerTradeNonce(), refused ? 0 : 1);
    }

    function testFuzz_reportDelivery_refusesFigureNotAboveRecorded(uint256 first, uint256 second, bool bySellersMeter)
        public
    {
        UtilityMarket.Agreement memory terms = _terms();
        _open(terms);
        uint256 meterKey = bySellersMeter ? sellerMeterKey : buyerMeterKey;
        // The first figure counts whatever it is, 0 included.
        first = bound(first, 0, QUANTITY * 2);
        second = bound(second, 0, first);
        Side memory recorded = _reportAndPredict(terms, meterKey, first, Side(false, 0), 1);
        assertTrue(recorded.reported);
        assertEq(recorded.figure, _min(first, QUANTITY));
        // _reportAndPredict expects the StaleReport revert: second never counts for more.
        assertEq(_reportAndPredict(terms, meterKey, second, recorded, 2).figure, recorded.figure);
    }

    function testFuzz_reportDelivery_acceptsOnlyPartiesMeters(uint256 key, bool useBuyersMeter) public {
        UtilityMarket.Agreement memory terms = _terms();
        bytes32 id = _open(terms);
        uint256 signerKey = useBuyersMeter ? buyerMeterKey : bound(key, 1, MAX_KEY);
        address signer = vm.addr(signerKey);
        UtilityMarket.DeliveryReport memory report = _reportFor(id, QUANTITY, uint64(block.timestamp), 1);
        bytes memory signature = _sign(signerKey, _reportHash(report));

        bool isPartysMeter = signer == buyerMeter || signer == sellerMeter;
        if (!isPartysMeter) {
            vm.expectRevert(abi.encodeWithSelector(UtilityMarket.UtilityMarketUnknownMeter.selector, signer));
        }
        market.reportDelivery(terms, report, signature);
        (, uint256 buyerDelivered, uint256 sellerDelivered,) = market.agreementState(id);
        assertEq(buyerDelivered + sellerDelivered, isPartysMeter ? QUANTITY : 0);
    }

    function testFuzz_openAgreement_acceptsOnlyPartiesSignatures(
        uint256 sellerSide,
        uint256 buyerSide,
        bool sellerSigns,
        bool buyerSigns
    ) public {
        UtilityMarket.Agreement memory terms = _terms();
        bytes32 id = _agreementId(terms);
        uint256 sellerSigner = sellerSigns ? sellerKey : bound(sellerSide, 1, MAX_KEY);
        uint256 buyerSigner = buyerSigns ? buyerKey : bound(buyerSide, 1, MAX_KEY);
        bytes memory sellerSig = _sign(sellerSigner, id);
        bytes memory buyerSig = _sign(buyerSigner, id);

        bool accepted = vm.addr(sellerSigner) == seller && vm.addr(buyerSigner) == buyer;
        if (vm.addr(sellerSigner) != seller) {
            vm.expectRevert(
                abi.encodeWithSelector(
                    UtilityMarket.UtilityMarketInvalidSignature.selector, seller, vm.addr(sellerSigner)
                )
            );
        } else if (!accepted) {
            vm.expectRevert(
                abi.encodeWithSelector(
                    UtilityMarket.UtilityMarketInvalidSignature.selector, buyer, vm.addr(buyerSigner)
                )
            );
        }
        market.openAgreement(terms, sellerSig, buyerSig);
        (bool open,,,) = market.agreementState(id);
        assertEq(open, accepted);
        assertEq(token.balanceOf(address(market)), accepted ? QUANTITY * PRICE : 0);
    }

    function testFuzz_settle_waitsForGraceUnlessComplete(uint256 delivered, uint256 when) public {
        UtilityMarket.Agreement memory terms = _terms();
        bytes32 id = _open(terms);
        delivered = bound(delivered, 1, QUANTITY - 1);
        _report(terms, buyerMeterKey, delivered, 1);
        uint256 settleableAt = uint256(terms.deliveryEnd) + GRACE;
        vm.warp(bound(when, block.timestamp, settleableAt - 1));
        vm.expectRevert(
            abi.encodeWithSelector(UtilityMarket.UtilityMarketSettlementTooEarly.selector, id, settleableAt)
        );
        market.settle(terms);
    }

    function testFuzz_tradeWithProvider_honoursLimitPrice(uint256 limit, bool buying) public {
        UtilityMarket.Role role = buying ? UtilityMarket.Role.Buyer : UtilityMarket.Role.Seller;
        uint256 tariff = buying ? PROVIDER_SELLS_AT : PROVIDER_BUYS_AT;
        limit = bound(limit, 0, tariff * 2);
        // A buyer refuses a tariff above its limit, a seller one below it.
        bool refused = buying ? tariff > limit : tariff < limit;
        if (refused) {
            vm.expectRevert(
                abi.encodeWithSelector(UtilityMarket.UtilityMarketTariffBeyondLimit.selector, tariff, limit)
            );
        }
        vm.prank(buying ? buyer : seller);
        market.tradeWithProvider(role, QUANTITY, uint64(block.timestamp), uint64(block.timestamp) + WINDOW, limit);
        assertEq(market.providerTradeNonce(), refused ? 0 : 1);
    }

    function testFuzz_invalidateNonce_marksOnlyThatNonce(uint256 nonce, uint256 other) public {
        vm.expectEmit(address(market));
        emit UtilityMarket.NonceInvalidated(seller, nonce);
        vm.prank(seller);
        market.invalidateNonce(nonce);
        assertTrue(market.isNonceUsed(seller, nonce));
        assertEq(market.isNonceUsed(seller, other), other == nonce);
        assertFalse(market.isNonceUsed(buyer, nonce));
        vm.expectRevert(abi.encodeWithSelector(UtilityMarket.UtilityMarketNonceUsed.selector, seller, nonce));
        vm.prank(seller);
        market.invalidateNonce(nonce);
    }
}
