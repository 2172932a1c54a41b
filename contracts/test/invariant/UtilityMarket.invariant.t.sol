// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

import {console} from "forge-std/console.sol";
import {StdInvariant} from "forge-std/StdInvariant.sol";
import {MarketFixture} from "../utils/MarketFixture.sol";
import {MarketHandler} from "./MarketHandler.sol";

/// Invariants of one market under random sequences of MarketHandler actions: tokens are
/// conserved and move exactly as the handler's model says, the escrow is what open agreements
/// owe, nothing settles twice, sellers are paid for delivery and no more, each prosumer's provider
/// sale escrow is that of its open sales, batches skip exactly the closed entries, and every
/// abuse fails.
contract UtilityMarketInvariantTest is MarketFixture {
    /// Enough that no escrow of a run (at most 1e23 each) ever lacks funds.
    uint256 internal constant HANDLER_FUNDS = 1e30;

    MarketHandler internal handler;
    /// Every account that holds tokens besides the market.
    address[] internal actors;
    mapping(address account => uint256) internal initialBalance;
    uint256 internal minted;

    function setUp() public override {
        super.setUp();
        handler = new MarketHandler(market, operator);

        vm.startPrank(operator);
        // The fixture's provider funds would run out under a run's sales to it.
        token.mint(provider, HANDLER_FUNDS);
        for (uint256 i = 0; i < handler.PROSUMERS(); ++i) {
            address prosumer = handler.prosumers(i);
            market.registerProsumer(prosumer);
            market.registerMeter(prosumer, handler.meters(i));
            token.mint(prosumer, HANDLER_FUNDS);
            actors.push(prosumer);
        }
        vm.stopPrank();
        for (uint256 i = 0; i < actors.length; ++i) {
            _approve(actors[i]);
        }
        // The fixture's own prosumers stay idle: the invariants check their funds are left alone.
        actors.push(provider);
        actors.push(seller);
        actors.push(buyer);

        minted = token.totalSupply();
        for (uint256 i = 0; i < actors.length; ++i) {
            initialBalance[actors[i]] = token.balanceOf(actors[i]);
        }

        bytes4[] memory selectors = new bytes4[](10);
        selectors[0] = MarketHandler.openAgreement.selector;
        selectors[1] = MarketHandler.reportDelivery.selector;
        selectors[2] = MarketHandler.reportWhilePaused.selector;
        selectors[3] = MarketHandler.settle.selector;
        selectors[4] = MarketHandler.settleBatch.selector;
        selectors[5] = MarketHandler.tradeWithProvider.selector;
        selectors[6] = MarketHandler.setTariffs.selector;
        selectors[7] = MarketHandler.setProviderSaleLimit.selector;
        selectors[8] = MarketHandler.warp.selector;
        selectors[9] = MarketHandler.abuse.selector;
        targetContract(address(handler));
        targetSelector(StdInvariant.FuzzSelector({addr: address(handler), selectors: selectors}));
    }

    /// 1. No token is created or lost: the actors and the market hold exactly what was minted.
    function invariant_tokensConserved() public view {
        uint256 held = token.balanceOf(address(market));
        for (uint256 i = 0; i < actors.length; ++i) {
            held += token.balanceOf(actors[i]);
        }
        assertEq(token.totalSupply(), minted, "supply changed");
        assertEq(held, minted, "tokens outside the actors and the market");
    }

    /// 1b. Each actor's balance moved by exactly the escrows, payments and refunds the model
    /// computed from its own record of the delivery reports.
    function invariant_balancesFollowModel() public view {
        for (uint256 i = 0; i < actors.length; ++i) {
            address actor = actors[i];
            assertEq(
                token.balanceOf(actor),
                initialBalance[actor] + handler.credited(actor) - handler.debited(actor),
                "balance differs from the model"
            );
        }
    }

    /// 2. The market holds exactly what its open agreements still owe.
    function invariant_escrowMatchesOpenAgreements() public view {
        uint256 owed;
        for (uint256 i = 0; i < handler.recordCount(); ++i) {
            MarketHandler.Record memory r = handler.record(i);
            if (r.open) owed += r.terms.quantity * r.terms.unitPrice;
        }
        assertEq(token.balanceOf(address(market)), owed, "escrow differs from what open agreements owe");
    }

    /// 3. No agreement settles twice (at most one AgreementSettled each), and the market holds open
    /// exactly the agreements the model does.
    function invariant_settlesAtMostOnce() public view {
        for (uint256 i = 0; i < handler.recordCount(); ++i) {
            MarketHandler.Record memory r = handler.record(i);
            (bool open,,,) = market.agreementState(r.id);
            assertLe(r.settleCount, 1, "settled twice");
            assertEq(open, r.open, "open differs from the model");
            assertEq(r.settleCount == 0, r.open, "settle count vs open");
        }
    }

    /// 4. While open, an agreement's delivered figures never exceed the quantity and are those of
    /// the accepted reports; once settled, its slot is cleared, and it paid its seller the model's
    /// payable * price, at most the escrow, and refunded the rest.
    function invariant_sellerPaidForDeliveryOnly() public view {
        for (uint256 i = 0; i < handler.recordCount(); ++i) {
            MarketHandler.Record memory r = handler.record(i);
            (, uint256 buyerDelivered, uint256 sellerDelivered, uint256 payable_) = market.agreementState(r.id);
            uint256 escrow = r.terms.quantity * r.terms.unitPrice;
            if (r.open) {
                assertLe(buyerDelivered, r.terms.quantity, "buyer figure above quantity");
                assertLe(sellerDelivered, r.terms.quantity, "seller figure above quantity");
                assertEq(buyerDelivered, r.buyerDelivered, "buyer figure differs from the reports");
                assertEq(sellerDelivered, r.sellerDelivered, "seller figure differs from the reports");
                assertEq(payable_, handler.modelPayable(i), "payable differs from the model");
                continue;
            }
            assertEq(buyerDelivered + sellerDelivered, 0, "settled agreement not cleared");
            assertEq(r.paid, handler.modelPayable(i) * r.terms.unitPrice, "seller paid other than payable * price");
            assertLe(r.paid, escrow, "seller paid above the escrow");
            assertEq(r.paid + r.refunded, escrow, "payment and refund are not the escrow");
        }
    }

    /// 5. Every abuse attempt (replayed or forged agreement, reused nonce, second settlement,
    /// batch holding an agreement not yet settleable, terms with dirty calldata, report after
    /// settlement or from an outsider's meter, premature settlement, settlement while paused,
    /// stale or future report, trade beyond the limit price, provider trade starting in the past,
    /// sale beyond the sale limit) was refused.
    function invariant_abuseNeverSucceeds() public view {
        assertEq(handler.unexpectedSuccesses(), 0, "an abuse attempt succeeded");
    }

    /// 6. Every well-formed action went through, so the invariants above are not met by a market
    /// that refuses everything.
    function invariant_wellFormedActionsSucceed() public view {
        assertEq(handler.unexpectedReverts(), 0, vm.toString(handler.lastUnexpectedRevert()));
    }

    /// 7. Each prosumer's providerSaleEscrow is the escrow of its open sales to the provider, as
    /// summed from the model's records, and the sale limit is the one the operator last set.
    function invariant_providerSaleEscrowMatchesOpenSales() public view {
        for (uint256 p = 0; p < actors.length; ++p) {
            address prosumer = actors[p];
            uint256 open;
            for (uint256 i = 0; i < handler.recordCount(); ++i) {
                MarketHandler.Record memory r = handler.record(i);
                if (r.open && r.providerBuys && r.terms.seller == prosumer) {
                    open += r.terms.quantity * r.terms.unitPrice;
                }
            }
            assertEq(market.providerSaleEscrow(prosumer), open, "sale escrow differs from open sales to the provider");
        }
        assertEq(market.providerSaleLimit(), handler.saleLimit(), "sale limit differs from the last one set");
    }

    /// 8. Every settlement's events matched the model: a batch skipped exactly the entries already
    /// closed (settled earlier or earlier in the batch), and only known agreements settled.
    function invariant_settlementEventsFollowModel() public view {
        assertEq(handler.eventMismatches(), 0, "settlement events differ from the model");
    }

    /// Call summary, shown with -vv.
    function afterInvariant() external view {
        console.log("opened", handler.openedCount(), "provider trades", handler.providerTradeCount());
        console.log("reports", handler.reportCount(), "while paused", handler.pausedReportCount());
        console.log("settled", handler.settledCount(), "skipped in batches", handler.skippedCount());
        console.log("batches", handler.batchCount(), "abuse attempts", handler.abuseCount());
        console.log("warps", handler.warpCount());
    }
}
