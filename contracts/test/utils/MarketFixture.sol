// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

import {Test} from "forge-std/Test.sol";
import {UtilityMarket} from "../../src/UtilityMarket.sol";
import {UtilityToken} from "../../src/UtilityToken.sol";

/// A biogas market with a registered seller and buyer (each with one meter), a provider, and the
/// signing helpers every test needs. Prices follow core/units.ts: base units per milli-unit.
abstract contract MarketFixture is Test {
    /// 35 tokens per m3 (the seed's case-study price) = 35e18 / 1000 base units per milli-m3.
    uint256 internal constant PRICE = 35e15;
    /// 100 m3 in milli-m3.
    uint256 internal constant QUANTITY = 100_000;
    uint256 internal constant PROVIDER_SELLS_AT = 80e15;
    uint256 internal constant PROVIDER_BUYS_AT = 20e15;
    uint64 internal constant GRACE = 1 hours;
    uint64 internal constant WINDOW = 4 hours;
    uint256 internal constant FUNDS = 1_000_000e18;

    UtilityToken internal token;
    UtilityMarket internal market;

    address internal operator = makeAddr("operator");
    address internal provider;
    uint256 internal providerKey;
    address internal seller;
    uint256 internal sellerKey;
    address internal buyer;
    uint256 internal buyerKey;
    address internal sellerMeter;
    uint256 internal sellerMeterKey;
    address internal buyerMeter;
    uint256 internal buyerMeterKey;

    function setUp() public virtual {
        vm.warp(1_800_000_000);
        (provider, providerKey) = makeAddrAndKey("provider");
        (seller, sellerKey) = makeAddrAndKey("seller");
        (buyer, buyerKey) = makeAddrAndKey("buyer");
        (sellerMeter, sellerMeterKey) = makeAddrAndKey("sellerMeter");
        (buyerMeter, buyerMeterKey) = makeAddrAndKey("buyerMeter");

        token = new UtilityToken(operator);
        market =
            new UtilityMarket(token, "biogas", "m3", operator, provider, PROVIDER_SELLS_AT, PROVIDER_BUYS_AT, GRACE);

        vm.startPrank(operator);
        market.registerProsumer(seller);
        market.registerProsumer(buyer);
        market.registerMeter(seller, sellerMeter);
        market.registerMeter(buyer, buyerMeter);
        token.mint(seller, FUNDS);
        token.mint(buyer, FUNDS);
        token.mint(provider, FUNDS);
        vm.stopPrank();

        _approve(seller);
        _approve(buyer);
        _approve(provider);
    }

    function _approve(address holder) internal {
        vm.prank(holder);
        token.approve(address(market), type(uint256).max);
    }

    /// Default terms: QUANTITY at PRICE, window starting now, nonce 1 for both signers.
    function _terms() internal view returns (UtilityMarket.Agreement memory) {
        return _terms(QUANTITY, PRICE, 1);
    }

    function _terms(uint256 quantity, uint256 unitPrice, uint256 nonce)
        internal
        view
        returns (UtilityMarket.Agreement memory)
    {
        return UtilityMarket.Agreement({
            negotiationId: keccak256(abi.encode("negotiation", nonce)),
            seller: seller,
            buyer: buyer,
            quantity: quantity,
            unitPrice: unitPrice,
            deliveryStart: uint64(block.timestamp),
            deliveryEnd: uint64(block.timestamp) + WINDOW,
            transcriptHash: keccak256("transcript"),
            sellerNonce: nonce,
            sellerDeadline: uint64(block.timestamp) + 10 minutes,
            buyerNonce: nonce,
            buyerDeadline: uint64(block.timestamp) + 10 minutes
        });
    }

    /// The EIP-712 digest of a struct hash under the market's domain.
    function _digest(bytes32 structHash) internal view returns (bytes32) {
        return keccak256(abi.encodePacked("\x19\x01", market.domainSeparator(), structHash));
    }

    function _sign(uint256 key, bytes32 structHash) internal view returns (bytes memory) {
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(key, _digest(structHash));
        return abi.encodePacked(r, s, v);
    }

    function _agreementId(UtilityMarket.Agreement memory terms) internal view returns (bytes32) {
        return market.agreementIdOf(terms);
    }

    function _offerHash(UtilityMarket.Offer memory offer) internal view returns (bytes32) {
        return keccak256(abi.encode(market.OFFER_TYPEHASH(), offer));
    }

    function _reportHash(UtilityMarket.DeliveryReport memory report) internal view returns (bytes32) {
        return keccak256(abi.encode(market.DELIVERY_REPORT_TYPEHASH(), report));
    }

    /// Signatures of `terms` by the given keys, made before any expectRevert is armed.
    function _signed(UtilityMarket.Agreement memory terms, uint256 signingSellerKey, uint256 signingBuyerKey)
        internal
        view
        returns (bytes memory sellerSig, bytes memory buyerSig)
    {
        bytes32 id = _agreementId(terms);
        return (_sign(signingSellerKey, id), _sign(signingBuyerKey, id));
    }

    /// Opens `terms` signed by the fixture's seller and buyer keys.
    function _open(UtilityMarket.Agreement memory terms) internal returns (bytes32) {
        bytes32 id = _agreementId(terms);
        return market.openAgreement(terms, _sign(sellerKey, id), _sign(buyerKey, id));
    }

    function _reportFor(bytes32 agreementId, uint256 delivered, uint64 measuredAt, uint64 seq)
        internal
        pure
        returns (UtilityMarket.DeliveryReport memory)
    {
        return UtilityMarket.DeliveryReport({
            agreementId: agreementId, delivered: delivered, measuredAt: measuredAt, seq: seq
        });
    }

    /// Posts a report of `delivered` measured now, signed by `meterKey`.
    function _report(UtilityMarket.Agreement memory terms, uint256 meterKey, uint256 delivered, uint64 seq) internal {
        UtilityMarket.DeliveryReport memory report =
            _reportFor(_agreementId(terms), delivered, uint64(block.timestamp), seq);
        market.reportDelivery(terms, report, _sign(meterKey, _reportHash(report)));
    }

    /// Moves past the window and its grace period, when any agreement can settle.
    function _warpPastGrace(UtilityMarket.Agreement memory terms) internal {
        vm.warp(uint256(terms.deliveryEnd) + GRACE);
    }
}
