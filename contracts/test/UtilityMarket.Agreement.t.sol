// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

import {IERC20Errors} from "@openzeppelin/contracts/interfaces/draft-IERC6093.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {Pausable} from "@openzeppelin/contracts/utils/Pausable.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";
import {UtilityMarket} from "../src/UtilityMarket.sol";
import {ReentrantToken} from "./utils/Attackers.sol";
import {MarketFixture} from "./utils/MarketFixture.sol";

/// Helpers shared by the agreement, report, settlement, provider and reentrancy tests below.
abstract contract AgreementTestBase is MarketFixture {
    /// Order of the secp256k1 group: s and n - s both verify, which is what makes ECDSA malleable.
    uint256 internal constant SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141;

    /// A key nobody registered: neither prosumer nor meter.
    address internal stranger;
    uint256 internal strangerKey;

    function setUp() public virtual override {
        super.setUp();
        (stranger, strangerKey) = makeAddrAndKey("stranger");
    }

    /// A second market of the same utility, with the fixture's parties registered, for replays
    /// across contracts.
    function _otherMarket() internal returns (UtilityMarket other) {
        other = new UtilityMarket(token, "biogas", "m3", operator, provider, PROVIDER_SELLS_AT, PROVIDER_BUYS_AT, GRACE);
        vm.startPrank(operator);
        other.registerProsumer(seller);
        other.registerProsumer(buyer);
        other.registerMeter(buyer, buyerMeter);
        vm.stopPrank();
    }

    /// Registers a prosumer with one meter.
    function _addProsumer(string memory name) internal returns (address account, address meter, uint256 meterKey) {
        account = makeAddr(name);
        (meter, meterKey) = makeAddrAndKey(string.concat(name, "Meter"));
        vm.startPrank(operator);
        market.registerProsumer(account);
        market.registerMeter(account, meter);
        vm.stopPrank();
    }

    /// Signs `structHash` under the domain of `on`, which need not be the market under test.
    function _signOn(UtilityMarket on, uint256 key, bytes32 structHash) internal view returns (bytes memory) {
        (uint8 v, bytes32 r, bytes32 s) =
            vm.sign(key, keccak256(abi.encodePacked("\x19\x01", on.domainSeparator(), structHash)));
        return abi.encodePacked(r, s, v);
    }

    /// Who `signature` over `structHash` recovers to under the domain of `on`: the address a
    /// market names when it refuses a signature made for something else.
    function _recoverOn(UtilityMarket on, bytes32 structHash, bytes memory signature) internal view returns (address) {
        (address recovered,,) =
            ECDSA.tryRecover(keccak256(abi.encodePacked("\x19\x01", on.domainSeparator(), structHash)), signature);
        return recovered;
    }

    function _signedReport(UtilityMarket.Agreement memory terms, uint256 meterKey, uint256 delivered, uint64 measuredAt)
        internal
        view
        returns (UtilityMarket.DeliveryReport memory report, bytes memory signature)
    {
        report = _reportFor(_agreementId(terms), delivered, measuredAt, 1);
        signature = _sign(meterKey, _reportHash(report));
    }

    /// `prosumer` trades with the provider over a window from now, as a dApp would submit it.
    function _tradeAs(address prosumer, UtilityMarket.Role role, uint256 quantity, uint256 limitPrice)
        internal
        returns (bytes32)
    {
        vm.prank(prosumer);
        return
            market.tradeWithProvider(
                role, quantity, uint64(block.timestamp), uint64(block.timestamp) + WINDOW, limitPrice
            );
    }

    /// The high-s twin of `key`'s signature of `digest`: ecrecover accepts it as readily as the
    /// original, so only the low-s rule can refuse it.
    function _highSTwin(uint256 key, bytes32 digest) internal pure returns (bytes memory) {
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(key, digest);
        bytes32 highS = bytes32(SECP256K1_N - uint256(s));
        uint8 flippedV = v == 27 ? 28 : 27;
        assertEq(ecrecover(digest, flippedV, r, highS), vm.addr(key));
        return abi.encodePacked(r, highS, flippedV);
    }

    /// `key`'s signature of `digest` in the 64-byte compact form (EIP-2098), which the market refuses.
    function _compact(uint256 key, bytes32 digest) internal pure returns (bytes memory) {
        (bytes32 r, bytes32 vs) = vm.signCompact(key, digest);
        return abi.encodePacked(r, vs);
    }

    function _pause() internal {
        vm.prank(operator);
        market.pause();
    }

    function _expectInvalidSignature(address expected, address recovered) internal {
        vm.expectRevert(
            abi.encodeWithSelector(UtilityMarket.UtilityMarketInvalidSignature.selector, expected, recovered)
        );
    }

    function _notOpen(bytes32 agreementId) internal pure returns (bytes memory) {
        return abi.encodeWithSelector(UtilityMarket.UtilityMarketAgreementNotOpen.selector, agreementId);
    }

    function _expectNotOpen(bytes32 agreementId) internal {
        vm.expectRevert(_notOpen(agreementId));
    }

    function _expectTooEarly(UtilityMarket.Agreement memory terms) internal {
        vm.expectRevert(
            abi.encodeWithSelector(
                UtilityMarket.UtilityMarketSettlementTooEarly.selector,
                _agreementId(terms),
                uint256(terms.deliveryEnd) + GRACE
            )
        );
    }

    function _assertOpen(bytes32 agreementId) internal view {
        (bool open,,,) = market.agreementState(agreementId);
        assertTrue(open);
    }

    /// Settled (or never opened): the slot is empty.
    function _assertClosed(bytes32 agreementId) internal view {
        (bool open, uint256 buyerDelivered, uint256 sellerDelivered, uint256 payable_) =
            market.agreementState(agreementId);
        assertFalse(open);
        assertEq(buyerDelivered + sellerDelivered + payable_, 0);
    }

    function _escrow(UtilityMarket.Agreement memory terms) internal pure returns (uint256) {
        return terms.quantity * terms.unitPrice;
    }
}

contract OpenAgreementTest is AgreementTestBase {
    /// Opens `terms` with the given signatures and requires the exact revert `expected`.
    function _expectOpenReverts(
        UtilityMarket.Agreement memory terms,
        bytes memory sellerSig,
        bytes memory buyerSig,
        bytes memory expected
    ) internal {
        vm.expectRevert(expected);
        market.openAgreement(terms, sellerSig, buyerSig);
    }

    /// Opens `terms` signed by the fixture's keys and requires the exact revert `expected`.
    function _expectSignedOpenReverts(UtilityMarket.Agreement memory terms, bytes memory expected) internal {
        (bytes memory sellerSig, bytes memory buyerSig) = _signed(terms, sellerKey, buyerKey);
        _expectOpenReverts(terms, sellerSig, buyerSig, expected);
    }

    /// Submits the default terms with `sellerSig` in place of the seller's signature; malformed
    /// and malleable signatures recover to no one, and the error names the seller as the signer
    /// expected.
    function _expectSellerSignatureRejected(bytes memory sellerSig) internal {
        UtilityMarket.Agreement memory terms = _terms();
        bytes memory buyerSig = _sign(buyerKey, _agreementId(terms));
        _expectOpenReverts(
            terms,
            sellerSig,
            buyerSig,
            abi.encodeWithSelector(UtilityMarket.UtilityMarketInvalidSignature.selector, seller, address(0))
        );
    }

    function _nonceUsed(address signer, uint256 nonce) internal pure returns (bytes memory) {
        return abi.encodeWithSelector(UtilityMarket.UtilityMarketNonceUsed.selector, signer, nonce);
    }

    // ---------------------------------------------------------------- opening

    function test_openAgreement_escrowsBuyerTokens() public {
        UtilityMarket.Agreement memory terms = _terms();
        bytes32 expectedId = _agreementId(terms);
        (bytes memory sellerSig, bytes memory buyerSig) = _signed(terms, sellerKey, buyerKey);
        uint256 escrow = _escrow(terms);

        vm.expectEmit(address(market));
        emit UtilityMarket.AgreementOpened(expectedId, seller, buyer, terms);
        vm.expectEmit(address(token));
        emit IERC20.Transfer(buyer, address(market), escrow);
        // Anyone may relay both signatures.
        vm.prank(stranger);
        bytes32 id = market.openAgreement(terms, sellerSig, buyerSig);

        assertEq(id, expectedId);
        assertEq(token.balanceOf(buyer), FUNDS - escrow);
        assertEq(token.balanceOf(address(market)), escrow);
        assertEq(token.balanceOf(seller), FUNDS);
        (bool open, uint256 buyerDelivered, uint256 sellerDelivered, uint256 payable_) = market.agreementState(id);
        assertTrue(open);
        assertEq(buyerDelivered + sellerDelivered + payable_, 0);
        assertTrue(market.isNonceUsed(seller, terms.sellerNonce));
        assertTrue(market.isNonceUsed(buyer, terms.buyerNonce));
    }

    function test_openAgreement_acceptsLargestQuantityAtLargestPrice() public {
        UtilityMarket.Agreement memory terms = _terms(type(uint96).max, type(uint128).max, 1);
        // The product is far beyond any real escrow; it must neither overflow nor be refused.
        vm.prank(operator);
        token.mint(buyer, _escrow(terms));
        bytes32 id = _open(terms);
        assertEq(token.balanceOf(address(market)), _escrow(terms));
        _assertOpen(id);
    }

    function test_openAgreement_zeroPriceNeedsNoAllowance() public {
        vm.prank(buyer);
        token.approve(address(market), 0);
        bytes32 id = _open(_terms(QUANTITY, 0, 1));
        _assertOpen(id);
        assertEq(token.balanceOf(buyer), FUNDS);
    }

    function test_openAgreement_acceptsDeadlineOfThisBlock() public {
        UtilityMarket.Agreement memory terms = _terms();
        vm.warp(terms.sellerDeadline);
        _assertOpen(_open(terms));
    }

    function test_openAgreement_revertsAfterSellerDeadline() public {
        UtilityMarket.Agreement memory terms = _terms();
        terms.buyerDeadline += 1 hours;
        vm.warp(terms.sellerDeadline + 1);
        _expectSignedOpenReverts(
            terms,
            abi.encodeWithSelector(UtilityMarket.UtilityMarketSignatureExpired.selector, seller, terms.sellerDeadline)
        );
    }

    function test_openAgreement_revertsAfterBuyerDeadline() public {
        UtilityMarket.Agreement memory terms = _terms();
        terms.sellerDeadline += 1 hours;
        vm.warp(terms.buyerDeadline + 1);
        _expectSignedOpenReverts(
            terms,
            abi.encodeWithSelector(UtilityMarket.UtilityMarketSignatureExpired.selector, buyer, terms.buyerDeadline)
        );
    }

    function test_openAgreement_revertsForDeregisteredSeller() public {
        vm.prank(operator);
        market.deregisterProsumer(seller);
        _expectSignedOpenReverts(
            _terms(), abi.encodeWithSelector(UtilityMarket.UtilityMarketNotProsumer.selector, seller)
        );
    }

    function test_openAgreement_revertsForUnregisteredBuyer() public {
        UtilityMarket.Agreement memory terms = _terms();
        terms.buyer = stranger;
        (bytes memory sellerSig, bytes memory buyerSig) = _signed(terms, sellerKey, strangerKey);
        _expectOpenReverts(
            terms,
            sellerSig,
            buyerSig,
            abi.encodeWithSelector(UtilityMarket.UtilityMarketNotProsumer.selector, stranger)
        );
    }

    function test_openAgreement_revertsOnSelfTrade() public {
        // Distinct nonces, so the single signer's nonce check passes and the self-trade check decides.
        UtilityMarket.Agreement memory terms = _terms();
        terms.buyer = seller;
        terms.buyerNonce = 2;
        (bytes memory sellerSig, bytes memory buyerSig) = _signed(terms, sellerKey, sellerKey);
        _expectOpenReverts(
            terms, sellerSig, buyerSig, abi.encodeWithSelector(UtilityMarket.UtilityMarketSelfTrade.selector, seller)
        );
    }

    function test_openAgreement_revertsOnZeroQuantity() public {
        _expectSignedOpenReverts(
            _terms(0, PRICE, 1), abi.encodeWithSelector(UtilityMarket.UtilityMarketInvalidQuantity.selector, 0)
        );
    }

    function test_openAgreement_revertsOnQuantityBeyondUint96() public {
        uint256 quantity = uint256(type(uint96).max) + 1;
        _expectSignedOpenReverts(
            _terms(quantity, 1, 1),
            abi.encodeWithSelector(UtilityMarket.UtilityMarketInvalidQuantity.selector, quantity)
        );
    }

    function test_openAgreement_revertsOnPriceBeyondUint128() public {
        uint256 price = uint256(type(uint128).max) + 1;
        _expectSignedOpenReverts(
            _terms(1, price, 1), abi.encodeWithSelector(UtilityMarket.UtilityMarketPriceTooLarge.selector, price)
        );
    }

    function test_openAgreement_revertsOnEmptyWindow() public {
        UtilityMarket.Agreement memory terms = _terms();
        terms.deliveryEnd = terms.deliveryStart;
        _expectSignedOpenReverts(
            terms,
            abi.encodeWithSelector(
                UtilityMarket.UtilityMarketInvalidWindow.selector, terms.deliveryStart, terms.deliveryEnd
            )
        );
    }

    function test_openAgreement_revertsOnWindowEndingNow() public {
        UtilityMarket.Agreement memory terms = _terms();
        terms.deliveryStart -= 1 hours;
        terms.deliveryEnd = uint64(block.timestamp);
        _expectSignedOpenReverts(
            terms,
            abi.encodeWithSelector(
                UtilityMarket.UtilityMarketInvalidWindow.selector, terms.deliveryStart, terms.deliveryEnd
            )
        );
    }

    // ------------------------------------------------------- payer's tokens

    function test_openAgreement_revertsWithoutBuyerAllowanceAndKeepsNonces() public {
        UtilityMarket.Agreement memory terms = _terms();
        (bytes memory sellerSig, bytes memory buyerSig) = _signed(terms, sellerKey, buyerKey);
        vm.prank(buyer);
        token.approve(address(market), _escrow(terms) - 1);
        _expectOpenReverts(
            terms,
            sellerSig,
            buyerSig,
            abi.encodeWithSelector(
                IERC20Errors.ERC20InsufficientAllowance.selector, address(market), _escrow(terms) - 1, _escrow(terms)
            )
        );
        // All or nothing: the failed attempt burnt no nonce, so the same signatures still open it.
        _approve(buyer);
        market.openAgreement(terms, sellerSig, buyerSig);
        assertEq(token.balanceOf(address(market)), _escrow(terms));
    }

    function test_openAgreement_revertsWhenBuyerCannotPay() public {
        UtilityMarket.Agreement memory terms = _terms(FUNDS / PRICE + 1, PRICE, 1);
        _expectSignedOpenReverts(
            terms, abi.encodeWithSelector(IERC20Errors.ERC20InsufficientBalance.selector, buyer, FUNDS, _escrow(terms))
        );
    }

    // ---------------------------------------------------------------- nonces

    function test_openAgreement_revertsOnReplay() public {
        UtilityMarket.Agreement memory terms = _terms();
        (bytes memory sellerSig, bytes memory buyerSig) = _signed(terms, sellerKey, buyerKey);
        market.openAgreement(terms, sellerSig, buyerSig);
        _expectOpenReverts(terms, sellerSig, buyerSig, _nonceUsed(seller, terms.sellerNonce));
    }

    function test_openAgreement_revertsOnReplayAfterSettlement() public {
        UtilityMarket.Agreement memory terms = _terms();
        (bytes memory sellerSig, bytes memory buyerSig) = _signed(terms, sellerKey, buyerKey);
        market.openAgreement(terms, sellerSig, buyerSig);
        _report(terms, buyerMeterKey, QUANTITY, 1);
        market.settle(terms);
        // A settled agreement must not escrow the buyer's tokens a second time.
        _expectOpenReverts(terms, sellerSig, buyerSig, _nonceUsed(seller, terms.sellerNonce));
    }

    function test_openAgreement_revertsWhenBuyerNonceUsedElsewhere() public {
        _open(_terms());
        UtilityMarket.Agreement memory terms = _terms(QUANTITY, PRICE, 2);
        terms.buyerNonce = 1;
        _expectSignedOpenReverts(terms, _nonceUsed(buyer, 1));
    }

    function test_invalidateNonce_withdrawsSignedAgreement() public {
        UtilityMarket.Agreement memory terms = _terms();
        (bytes memory sellerSig, bytes memory buyerSig) = _signed(terms, sellerKey, buyerKey);
        vm.expectEmit(address(market));
        emit UtilityMarket.NonceInvalidated(seller, terms.sellerNonce);
        vm.prank(seller);
        market.invalidateNonce(terms.sellerNonce);
        assertTrue(market.isNonceUsed(seller, terms.sellerNonce));
        _expectOpenReverts(terms, sellerSig, buyerSig, _nonceUsed(seller, terms.sellerNonce));
    }

    function test_invalidateNonce_revertsWhenAlreadyUsed() public {
        _open(_terms());
        vm.expectRevert(_nonceUsed(buyer, 1));
        vm.prank(buyer);
        market.invalidateNonce(1);
    }

    function test_isNonceUsed_tracksSignersAndBitsApart() public {
        // 256 is bit 0 of the second bitmap word: neighbours in either word stay unused.
        vm.prank(seller);
        market.invalidateNonce(256);
        assertTrue(market.isNonceUsed(seller, 256));
        assertFalse(market.isNonceUsed(seller, 255));
        assertFalse(market.isNonceUsed(seller, 257));
        assertFalse(market.isNonceUsed(seller, 0));
        assertFalse(market.isNonceUsed(buyer, 256));
    }

    // ------------------------------------------------------------ signatures

    function test_openAgreement_revertsOnStrangersSignature() public {
        UtilityMarket.Agreement memory terms = _terms();
        (bytes memory sellerSig, bytes memory buyerSig) = _signed(terms, strangerKey, buyerKey);
        _expectInvalidSignature(seller, stranger);
        market.openAgreement(terms, sellerSig, buyerSig);
    }

    function test_openAgreement_revertsOnSwappedSignatures() public {
        UtilityMarket.Agreement memory terms = _terms();
        (bytes memory sellerSig, bytes memory buyerSig) = _signed(terms, buyerKey, sellerKey);
        _expectInvalidSignature(seller, buyer);
        market.openAgreement(terms, sellerSig, buyerSig);
    }

    function test_openAgreement_revertsOnAlteredTerms() public {
        UtilityMarket.Agreement memory terms = _terms();
        (bytes memory sellerSig, bytes memory buyerSig) = _signed(terms, sellerKey, buyerKey);
        // A relayer raising the price after both signed.
        terms.unitPrice *= 2;
        _expectInvalidSignature(seller, _recoverOn(market, _agreementId(terms), sellerSig));
        market.openAgreement(terms, sellerSig, buyerSig);
    }

    function test_openAgreement_revertsOnTamperedSignature() public {
        UtilityMarket.Agreement memory terms = _terms();
        bytes32 id = _agreementId(terms);
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(sellerKey, _digest(id));
        bytes memory forged = abi.encodePacked(r, s ^ bytes32(uint256(1)), v);
        address recovered = _recoverOn(market, id, forged);
        assertTrue(recovered != seller && recovered != address(0));
        _expectOpenReverts(
            terms,
            forged,
            _sign(buyerKey, id),
            abi.encodeWithSelector(UtilityMarket.UtilityMarketInvalidSignature.selector, seller, recovered)
        );
    }

    function test_openAgreement_revertsOnOtherChain() public {
        UtilityMarket.Agreement memory terms = _terms();
        (bytes memory sellerSig, bytes memory buyerSig) = _signed(terms, sellerKey, buyerKey);
        bytes32 separator = market.domainSeparator();
        // A fork that kept the contract at the same address must not accept this chain's signatures.
        vm.chainId(block.chainid + 1);
        assertTrue(market.domainSeparator() != separator);
        _expectInvalidSignature(seller, _recoverOn(market, _agreementId(terms), sellerSig));
        market.openAgreement(terms, sellerSig, buyerSig);
    }

    function test_openAgreement_revertsOnOtherMarket() public {
        UtilityMarket other = _otherMarket();
        UtilityMarket.Agreement memory terms = _terms();
        (bytes memory sellerSig, bytes memory buyerSig) = _signed(terms, sellerKey, buyerKey);
        vm.expectRevert(
            abi.encodeWithSelector(
                UtilityMarket.UtilityMarketInvalidSignature.selector,
                seller,
                _recoverOn(other, _agreementId(terms), sellerSig)
            )
        );
        other.openAgreement(terms, sellerSig, buyerSig);
        // The signatures were good, only for the other contract.
        market.openAgreement(terms, sellerSig, buyerSig);
    }

    function test_openAgreement_revertsOnHighSSignature() public {
        _expectSellerSignatureRejected(_highSTwin(sellerKey, _digest(_agreementId(_terms()))));
    }

    function test_openAgreement_revertsOnCompactSignature() public {
        _expectSellerSignatureRejected(_compact(sellerKey, _digest(_agreementId(_terms()))));
    }

    function test_openAgreement_revertsOnPaddedSignature() public {
        _expectSellerSignatureRejected(abi.encodePacked(_sign(sellerKey, _agreementId(_terms())), bytes1(0)));
    }

    function test_openAgreement_revertsOnEmptySignature() public {
        _expectSellerSignatureRejected("");
    }

    function test_openAgreement_revertsOnInvalidV() public {
        (, bytes32 r, bytes32 s) = vm.sign(sellerKey, _digest(_agreementId(_terms())));
        _expectSellerSignatureRejected(abi.encodePacked(r, s, uint8(0)));
    }

    function test_openAgreement_namesBuyerOnMalformedBuyerSignature() public {
        // With a good seller signature, the error tells the relayer it is the buyer's that failed.
        UtilityMarket.Agreement memory terms = _terms();
        bytes32 id = _agreementId(terms);
        _expectOpenReverts(
            terms,
            _sign(sellerKey, id),
            _compact(buyerKey, _digest(id)),
            abi.encodeWithSelector(UtilityMarket.UtilityMarketInvalidSignature.selector, buyer, address(0))
        );
    }

    // ------------------------------------------------------------ EIP-712 views

    function test_domainSeparator_bindsNameVersionChainAndContract() public view {
        bytes32 expected = keccak256(
            abi.encode(
                keccak256("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"),
                keccak256("EIP Utility Market"),
                keccak256("1"),
                block.chainid,
                address(market)
            )
        );
        assertEq(market.domainSeparator(), expected);
        (, string memory name, string memory version, uint256 chainId, address verifyingContract,,) =
            market.eip712Domain();
        assertEq(name, "EIP Utility Market");
        assertEq(version, "1");
        assertEq(chainId, block.chainid);
        assertEq(verifyingContract, address(market));
    }

    function test_agreementIdOf_isEip712StructHash() public view {
        UtilityMarket.Agreement memory t = _terms();
        // Field by field, against the type string of core/messages/eip712.ts.
        bytes32 expected = keccak256(
            abi.encode(
                keccak256(
                    "Agreement(bytes32 negotiationId,address seller,address buyer,uint256 quantity,uint256 unitPrice,uint64 deliveryStart,uint64 deliveryEnd,bytes32 transcriptHash,uint256 sellerNonce,uint64 sellerDeadline,uint256 buyerNonce,uint64 buyerDeadline)"
                ),
                t.negotiationId,
                t.seller,
                t.buyer,
                t.quantity,
                t.unitPrice,
                t.deliveryStart,
                t.deliveryEnd,
                t.transcriptHash,
                t.sellerNonce,
                t.sellerDeadline,
                t.buyerNonce,
                t.buyerDeadline
            )
        );
        assertEq(market.agreementIdOf(t), expected);
    }

    function test_typehashes_matchCoreTypes() public view {
        assertEq(
            market.OFFER_TYPEHASH(),
            keccak256(
                "Offer(bytes32 negotiationId,address seller,address buyer,address proposer,uint32 round,uint256 quantity,uint256 unitPrice,bytes32 previous)"
            )
        );
        assertEq(
            market.DELIVERY_REPORT_TYPEHASH(),
            keccak256("DeliveryReport(bytes32 agreementId,uint256 delivered,uint64 measuredAt,uint64 seq)")
        );
    }
}

contract ReportDeliveryTest is AgreementTestBase {
    uint256 private constant PART = QUANTITY * 6 / 10;

    UtilityMarket.Agreement internal agreement;
    bytes32 internal agreementId;

    function setUp() public override {
        super.setUp();
        agreement = _terms();
        agreementId = _open(agreement);
        // Into the window, so reports can be measured both before and at the current block.
        vm.warp(block.timestamp + WINDOW / 2);
    }

    /// Relays `report` with `signature` for `terms` and requires the exact revert `expected`.
    function _expectRelayReverts(
        UtilityMarket.Agreement memory terms,
        UtilityMarket.DeliveryReport memory report,
        bytes memory signature,
        bytes memory expected
    ) internal {
        vm.expectRevert(expected);
        market.reportDelivery(terms, report, signature);
    }

    /// Signs a report of `delivered` measured at `measuredAt` and requires the exact revert `expected`.
    function _expectReportReverts(uint256 meterKey, uint256 delivered, uint64 measuredAt, bytes memory expected)
        internal
    {
        (UtilityMarket.DeliveryReport memory report, bytes memory signature) =
            _signedReport(agreement, meterKey, delivered, measuredAt);
        _expectRelayReverts(agreement, report, signature, expected);
    }

    function _expectReportRevertsNow(uint256 meterKey, uint256 delivered, bytes memory expected) internal {
        _expectReportReverts(meterKey, delivered, uint64(block.timestamp), expected);
    }

    /// Relays a report of PART measured now for the setUp agreement with `signature`, which the
    /// market cannot recover a signer from.
    function _expectBadReportSignature(bytes memory signature) internal {
        UtilityMarket.DeliveryReport memory report = _reportFor(agreementId, PART, uint64(block.timestamp), 1);
        _expectRelayReverts(
            agreement,
            report,
            signature,
            abi.encodeWithSelector(UtilityMarket.UtilityMarketBadReportSignature.selector, agreementId)
        );
    }

    /// The digest a meter signs for a report of PART measured now for the setUp agreement.
    function _reportDigestNow() internal view returns (bytes32) {
        return _digest(_reportHash(_reportFor(agreementId, PART, uint64(block.timestamp), 1)));
    }

    function _stale(uint256 delivered, uint256 recorded) internal view returns (bytes memory) {
        return abi.encodeWithSelector(UtilityMarket.UtilityMarketStaleReport.selector, agreementId, delivered, recorded);
    }

    function _outsideWindow(uint64 measuredAt) internal view returns (bytes memory) {
        return
            abi.encodeWithSelector(UtilityMarket.UtilityMarketMeasuredOutsideWindow.selector, agreementId, measuredAt);
    }

    function _assertDelivered(uint256 buyerFigure, uint256 sellerFigure, uint256 payableFigure) internal view {
        (, uint256 buyerDelivered, uint256 sellerDelivered, uint256 payable_) = market.agreementState(agreementId);
        assertEq(buyerDelivered, buyerFigure);
        assertEq(sellerDelivered, sellerFigure);
        assertEq(payable_, payableFigure);
    }

    // ------------------------------------------------------------ figures

    function test_reportDelivery_recordsEachSide() public {
        // The test contract relays, as the gateway would: only the meter's signature counts.
        vm.expectEmit(address(market));
        emit UtilityMarket.DeliveryReported(
            agreementId, buyerMeter, UtilityMarket.Role.Buyer, PART, uint64(block.timestamp), 1
        );
        _report(agreement, buyerMeterKey, PART, 1);
        vm.expectEmit(address(market));
        emit UtilityMarket.DeliveryReported(
            agreementId, sellerMeter, UtilityMarket.Role.Seller, PART / 2, uint64(block.timestamp), 7
        );
        _report(agreement, sellerMeterKey, PART / 2, 7);
        // Each side's figure is its own: the seller's lower one is not stale against the buyer's,
        // and the lower of the two is what is payable.
        _assertDelivered(PART, PART / 2, PART / 2);
    }

    function test_reportDelivery_acceptsRisingFigures() public {
        _report(agreement, buyerMeterKey, PART, 1);
        _report(agreement, buyerMeterKey, PART + 1, 2);
        _assertDelivered(PART + 1, 0, PART + 1);
    }

    function test_reportDelivery_makesSellersFigurePayableAlone() public {
        // A buyer's meter that never reports must not deny the seller what its own meter measured.
        _report(agreement, sellerMeterKey, PART, 1);
        _assertDelivered(0, PART, PART);
    }

    function test_reportDelivery_capsSellersFigureByBuyersLower() public {
        _report(agreement, sellerMeterKey, PART, 1);
        _report(agreement, buyerMeterKey, PART / 2, 1);
        _assertDelivered(PART / 2, PART, PART / 2);
    }

    function test_reportDelivery_capsAtQuantity() public {
        vm.expectEmit(address(market));
        emit UtilityMarket.DeliveryReported(
            agreementId, buyerMeter, UtilityMarket.Role.Buyer, QUANTITY, uint64(block.timestamp), 1
        );
        _report(agreement, buyerMeterKey, QUANTITY * 3, 1);
        _assertDelivered(QUANTITY, 0, QUANTITY);
    }

    function test_reportDelivery_acceptsZeroAsFirstFigure() public {
        // A meter that has measured nothing yet may say so once; the emitted figure is its record.
        vm.expectEmit(address(market));
        emit UtilityMarket.DeliveryReported(
            agreementId, sellerMeter, UtilityMarket.Role.Seller, 0, uint64(block.timestamp), 1
        );
        _report(agreement, sellerMeterKey, 0, 1);
        _assertDelivered(0, 0, 0);
        _report(agreement, sellerMeterKey, 1, 2);
        _assertDelivered(0, 1, 1);
    }

    function test_reportDelivery_countsBuyersZeroAsReported() public {
        // The buyer's meter said nothing arrived: that caps the seller's figure, unlike silence.
        _report(agreement, sellerMeterKey, QUANTITY, 1);
        _assertDelivered(0, QUANTITY, QUANTITY);
        _report(agreement, buyerMeterKey, 0, 1);
        _assertDelivered(0, QUANTITY, 0);
    }

    function test_reportDelivery_revertsOnSecondZero() public {
        _report(agreement, buyerMeterKey, 0, 1);
        _expectReportRevertsNow(buyerMeterKey, 0, _stale(0, 0));
    }

    function test_reportDelivery_revertsOnReplay() public {
        (UtilityMarket.DeliveryReport memory report, bytes memory signature) =
            _signedReport(agreement, buyerMeterKey, PART, uint64(block.timestamp));
        market.reportDelivery(agreement, report, signature);
        _expectRelayReverts(agreement, report, signature, _stale(PART, PART));
    }

    function test_reportDelivery_revertsOnReplayOfZero() public {
        // A first report of 0 is accepted once; replaying it is as stale as any other replay.
        (UtilityMarket.DeliveryReport memory report, bytes memory signature) =
            _signedReport(agreement, sellerMeterKey, 0, uint64(block.timestamp));
        market.reportDelivery(agreement, report, signature);
        _expectRelayReverts(agreement, report, signature, _stale(0, 0));
    }

    function test_reportDelivery_revertsOnLowerFigure() public {
        _report(agreement, buyerMeterKey, PART, 1);
        // Figures are cumulative, so one below the recorded figure can only be old or false.
        _expectReportRevertsNow(buyerMeterKey, PART - 1, _stale(PART - 1, PART));
    }

    function test_reportDelivery_revertsOnZeroAfterFigure() public {
        _report(agreement, sellerMeterKey, PART, 1);
        _expectReportRevertsNow(sellerMeterKey, 0, _stale(0, PART));
    }

    function test_reportDelivery_revertsOnceQuantityReached() public {
        _report(agreement, sellerMeterKey, QUANTITY, 1);
        _expectReportRevertsNow(sellerMeterKey, QUANTITY + 1, _stale(QUANTITY, QUANTITY));
    }

    function test_reportDelivery_recordsWhilePaused() public {
        // Deliveries go on during a pause; losing their reports would cost the seller its pay.
        _pause();
        vm.expectEmit(address(market));
        emit UtilityMarket.DeliveryReported(
            agreementId, buyerMeter, UtilityMarket.Role.Buyer, QUANTITY, uint64(block.timestamp), 1
        );
        _report(agreement, buyerMeterKey, QUANTITY, 1);
        _report(agreement, sellerMeterKey, PART, 1);
        _assertDelivered(QUANTITY, PART, PART);
        // Settlement stays paused.
        vm.expectRevert(Pausable.EnforcedPause.selector);
        market.settle(agreement);
    }

    // ------------------------------------------------------------ meters

    function test_reportDelivery_revertsForUnknownMeter() public {
        _expectReportRevertsNow(
            strangerKey, PART, abi.encodeWithSelector(UtilityMarket.UtilityMarketUnknownMeter.selector, stranger)
        );
    }

    function test_reportDelivery_revertsForPartyWalletKey() public {
        // A party's wallet is not a meter: the buyer cannot vouch for its own consumption.
        _expectReportRevertsNow(
            buyerKey, PART, abi.encodeWithSelector(UtilityMarket.UtilityMarketUnknownMeter.selector, buyer)
        );
    }

    function test_reportDelivery_revertsForRevokedMeter() public {
        _report(agreement, buyerMeterKey, PART, 1);
        vm.prank(operator);
        market.revokeMeter(buyerMeter);
        _expectReportRevertsNow(
            buyerMeterKey,
            QUANTITY,
            abi.encodeWithSelector(UtilityMarket.UtilityMarketUnknownMeter.selector, buyerMeter)
        );
        _assertDelivered(PART, 0, PART);
    }

    function test_reportDelivery_refusesReportSignedBeforeRevocationForGood() public {
        // A report signed by a key before it was revoked (and perhaps stolen) must not count,
        // which is why the key can never be registered again, to anyone.
        (UtilityMarket.DeliveryReport memory report, bytes memory signature) =
            _signedReport(agreement, sellerMeterKey, QUANTITY, uint64(block.timestamp));
        vm.startPrank(operator);
        market.revokeMeter(sellerMeter);
        vm.expectRevert(abi.encodeWithSelector(UtilityMarket.UtilityMarketMeterWasRevoked.selector, sellerMeter));
        market.registerMeter(seller, sellerMeter);
        vm.stopPrank();
        _expectRelayReverts(
            agreement,
            report,
            signature,
            abi.encodeWithSelector(UtilityMarket.UtilityMarketUnknownMeter.selector, sellerMeter)
        );
    }

    function test_reportDelivery_revertsForThirdProsumersMeter() public {
        (, address neighbourMeter, uint256 neighbourMeterKey) = _addProsumer("neighbour");
        _expectReportRevertsNow(
            neighbourMeterKey,
            PART,
            abi.encodeWithSelector(UtilityMarket.UtilityMarketMeterNotAParty.selector, agreementId, neighbourMeter)
        );
    }

    function test_reportDelivery_acceptsMeterOfDeregisteredProsumer() public {
        vm.prank(operator);
        market.deregisterProsumer(buyer);
        _report(agreement, buyerMeterKey, QUANTITY, 1);
        market.settle(agreement);
        assertEq(token.balanceOf(seller), FUNDS + _escrow(agreement));
    }

    // ------------------------------------------------------------ agreement and window

    function test_reportDelivery_revertsOnReportForOtherAgreement() public {
        UtilityMarket.Agreement memory other = _terms(QUANTITY, PRICE, 2);
        bytes32 otherId = _open(other);
        (UtilityMarket.DeliveryReport memory report, bytes memory signature) =
            _signedReport(other, buyerMeterKey, PART, uint64(block.timestamp));
        _expectRelayReverts(
            agreement,
            report,
            signature,
            abi.encodeWithSelector(UtilityMarket.UtilityMarketReportMismatch.selector, agreementId, otherId)
        );
    }

    function test_reportDelivery_revertsForUnopenedAgreement() public {
        UtilityMarket.Agreement memory unopened = _terms(QUANTITY, PRICE, 9);
        (UtilityMarket.DeliveryReport memory report, bytes memory signature) =
            _signedReport(unopened, buyerMeterKey, PART, uint64(block.timestamp));
        _expectNotOpen(_agreementId(unopened));
        market.reportDelivery(unopened, report, signature);
    }

    function test_reportDelivery_revertsAfterSettlement() public {
        _report(agreement, buyerMeterKey, QUANTITY, 1);
        market.settle(agreement);
        _expectReportRevertsNow(sellerMeterKey, PART, _notOpen(agreementId));
    }

    function test_reportDelivery_revertsWhenMeasuredInFuture() public {
        uint64 future = uint64(block.timestamp) + 1;
        _expectReportReverts(buyerMeterKey, PART, future, _outsideWindow(future));
    }

    function test_reportDelivery_revertsWhenMeasuredBeforeWindow() public {
        uint64 early = agreement.deliveryStart - 1;
        _expectReportReverts(buyerMeterKey, PART, early, _outsideWindow(early));
    }

    function test_reportDelivery_revertsWhenMeasuredAfterWindow() public {
        vm.warp(agreement.deliveryEnd + 1);
        _expectReportReverts(buyerMeterKey, PART, agreement.deliveryEnd + 1, _outsideWindow(agreement.deliveryEnd + 1));
    }

    function test_reportDelivery_acceptsLateReportMeasuredInWindow() public {
        vm.warp(agreement.deliveryEnd + GRACE - 1);
        (UtilityMarket.DeliveryReport memory report, bytes memory signature) =
            _signedReport(agreement, buyerMeterKey, PART, agreement.deliveryEnd);
        market.reportDelivery(agreement, report, signature);
        _assertDelivered(PART, 0, PART);
    }

    // ------------------------------------------------------------ signatures

    function test_reportDelivery_revertsOnCompactSignature() public {
        _expectBadReportSignature(_compact(buyerMeterKey, _reportDigestNow()));
    }

    function test_reportDelivery_revertsOnHighSSignature() public {
        _expectBadReportSignature(_highSTwin(buyerMeterKey, _reportDigestNow()));
    }

    function test_reportDelivery_revertsOnEmptySignature() public {
        _expectBadReportSignature("");
    }

    function test_reportDelivery_revertsOnSignatureForOtherMarket() public {
        UtilityMarket other = _otherMarket();
        UtilityMarket.DeliveryReport memory report = _reportFor(agreementId, PART, uint64(block.timestamp), 1);
        bytes memory signature = _signOn(other, buyerMeterKey, _reportHash(report));
        // Well formed, so it recovers to someone: a key that is no meter here.
        _expectRelayReverts(
            agreement,
            report,
            signature,
            abi.encodeWithSelector(
                UtilityMarket.UtilityMarketUnknownMeter.selector, _recoverOn(market, _reportHash(report), signature)
            )
        );
    }

    // ------------------------------------------------------------ order of checks

    function test_reportDelivery_checksReportBeforeAgreement() public {
        // A report wrong in every way, for an agreement never opened: fixing one fault at a time
        // shows the order of the checks, the report's own (id, time, signature) coming first.
        UtilityMarket.Agreement memory unopened = _terms(QUANTITY, PRICE, 9);
        bytes32 unopenedId = _agreementId(unopened);
        uint64 future = uint64(block.timestamp) + 1;
        UtilityMarket.DeliveryReport memory report = _reportFor(agreementId, PART, future, 1);
        bytes memory malformed = _compact(buyerMeterKey, _digest(_reportHash(report)));
        _expectRelayReverts(
            unopened,
            report,
            malformed,
            abi.encodeWithSelector(UtilityMarket.UtilityMarketReportMismatch.selector, unopenedId, agreementId)
        );

        report.agreementId = unopenedId;
        _expectRelayReverts(
            unopened,
            report,
            malformed,
            abi.encodeWithSelector(UtilityMarket.UtilityMarketMeasuredOutsideWindow.selector, unopenedId, future)
        );

        report.measuredAt = uint64(block.timestamp);
        _expectRelayReverts(
            unopened,
            report,
            malformed,
            abi.encodeWithSelector(UtilityMarket.UtilityMarketBadReportSignature.selector, unopenedId)
        );

        // Signed by a key that is no meter: the agreement is looked up before the meter.
        _expectRelayReverts(unopened, report, _sign(strangerKey, _reportHash(report)), _notOpen(unopenedId));
    }

    function test_reportDelivery_checksMeterBeforeFigure() public {
        _report(agreement, buyerMeterKey, PART, 1);
        // Stale for the buyer's side, but the key is no meter at all.
        _expectReportRevertsNow(
            strangerKey, PART - 1, abi.encodeWithSelector(UtilityMarket.UtilityMarketUnknownMeter.selector, stranger)
        );
        // A meter of neither party has no figure to be stale against.
        (, address neighbourMeter, uint256 neighbourMeterKey) = _addProsumer("neighbour");
        _expectReportRevertsNow(
            neighbourMeterKey,
            0,
            abi.encodeWithSelector(UtilityMarket.UtilityMarketMeterNotAParty.selector, agreementId, neighbourMeter)
        );
    }
}

contract SettleTest is AgreementTestBase {
    UtilityMarket.Agreement internal agreement;
    bytes32 internal agreementId;

    function setUp() public override {
        super.setUp();
        agreement = _terms();
        agreementId = _open(agreement);
    }

    /// Opens `count` agreements with nonces from 2 (1 is the setUp's), the i-th with a buyer
    /// figure of (i + 1) / count of its quantity, so only the last is complete.
    function _openMany(uint256 count) internal returns (UtilityMarket.Agreement[] memory batch) {
        batch = new UtilityMarket.Agreement[](count);
        for (uint256 i = 0; i < count; ++i) {
            batch[i] = _terms(QUANTITY, PRICE, i + 2);
            _open(batch[i]);
            _report(batch[i], buyerMeterKey, QUANTITY * (i + 1) / count, 1);
        }
    }

    /// Settles the setUp agreement expecting `delivered` to be paid for, and checks every balance.
    function _settleAndCheck(uint256 delivered) internal {
        uint256 paid = delivered * PRICE;
        uint256 refunded = (QUANTITY - delivered) * PRICE;
        vm.expectEmit(address(market));
        emit UtilityMarket.AgreementSettled(agreementId, delivered, paid, refunded);
        vm.prank(stranger);
        market.settle(agreement);
        assertEq(token.balanceOf(seller), FUNDS + paid);
        assertEq(token.balanceOf(buyer), FUNDS - _escrow(agreement) + refunded);
        assertEq(token.balanceOf(address(market)), 0);
        _assertClosed(agreementId);
    }

    function test_settle_paysFullDeliveryAtOnce() public {
        _report(agreement, buyerMeterKey, QUANTITY, 1);
        _settleAndCheck(QUANTITY);
    }

    function test_settle_paysAtOnceWhenBothMetersReportFull() public {
        _report(agreement, sellerMeterKey, QUANTITY, 1);
        _report(agreement, buyerMeterKey, QUANTITY, 1);
        _settleAndCheck(QUANTITY);
    }

    function test_settle_paysBuyerFigureAloneAfterGrace() public {
        _report(agreement, buyerMeterKey, 60_000, 1);
        _warpPastGrace(agreement);
        _settleAndCheck(60_000);
    }

    function test_settle_paysBuyerFigureWhenLower() public {
        _report(agreement, buyerMeterKey, 60_000, 1);
        _report(agreement, sellerMeterKey, 70_000, 1);
        _warpPastGrace(agreement);
        _settleAndCheck(60_000);
    }

    function test_settle_capsAtSellerFigure() public {
        _report(agreement, buyerMeterKey, 80_000, 1);
        _report(agreement, sellerMeterKey, 50_000, 1);
        _warpPastGrace(agreement);
        _settleAndCheck(50_000);
    }

    function test_settle_refundsEverythingWithoutReports() public {
        _warpPastGrace(agreement);
        _settleAndCheck(0);
    }

    function test_settle_paysSellerFigureAloneOnlyAfterGrace() public {
        // Payable on the seller's word, but only the buyer's meter can confirm early that it all
        // arrived: the buyer's meter gets the grace period to report a lower figure.
        _report(agreement, sellerMeterKey, QUANTITY, 1);
        (,,, uint256 payable_) = market.agreementState(agreementId);
        assertEq(payable_, QUANTITY);
        vm.warp(uint256(agreement.deliveryEnd) + GRACE - 1);
        _expectTooEarly(agreement);
        market.settle(agreement);
        vm.warp(uint256(agreement.deliveryEnd) + GRACE);
        _settleAndCheck(QUANTITY);
    }

    function test_settle_buyersLateZeroOutweighsSellersFigure() public {
        _report(agreement, sellerMeterKey, QUANTITY, 1);
        // In the grace period, the buyer's meter reports, measured in the window, that nothing came.
        vm.warp(agreement.deliveryEnd + GRACE / 2);
        UtilityMarket.DeliveryReport memory report = _reportFor(agreementId, 0, agreement.deliveryEnd, 1);
        market.reportDelivery(agreement, report, _sign(buyerMeterKey, _reportHash(report)));
        _warpPastGrace(agreement);
        _settleAndCheck(0);
    }

    function test_settle_waitsWhenSellerFigureFallsShort() public {
        _report(agreement, buyerMeterKey, QUANTITY, 1);
        _report(agreement, sellerMeterKey, 90_000, 1);
        _expectTooEarly(agreement);
        market.settle(agreement);
        _warpPastGrace(agreement);
        _settleAndCheck(90_000);
    }

    function test_settle_revertsUntilGraceEnds() public {
        _report(agreement, buyerMeterKey, 60_000, 1);
        vm.warp(uint256(agreement.deliveryEnd) + GRACE - 1);
        _expectTooEarly(agreement);
        market.settle(agreement);
    }

    function test_settle_revertsWhenSettledTwice() public {
        _report(agreement, buyerMeterKey, QUANTITY, 1);
        market.settle(agreement);
        _expectNotOpen(agreementId);
        market.settle(agreement);
    }

    function test_settle_revertsOnAlteredTerms() public {
        _report(agreement, buyerMeterKey, QUANTITY, 1);
        // Doubling the price on the way in would double the seller's pay; it names no agreement.
        UtilityMarket.Agreement memory altered = agreement;
        altered.unitPrice *= 2;
        _expectNotOpen(_agreementId(altered));
        market.settle(altered);
    }

    function test_settle_refusesTermsWithDirtyHighBits() public {
        _report(agreement, buyerMeterKey, QUANTITY, 1);
        // The id is hashed from the raw calldata words, and settle never reads deliveryStart: with
        // high bits set there, the terms must name no agreement rather than the one they decode to.
        bytes32[12] memory words = abi.decode(abi.encode(agreement), (bytes32[12]));
        words[5] |= bytes32(uint256(1) << 255);
        bytes32 dirtyId = keccak256(abi.encodePacked(market.AGREEMENT_TYPEHASH(), words));
        (bool ok, bytes memory returned) = address(market).call(abi.encodePacked(market.settle.selector, words));
        assertFalse(ok);
        assertEq(returned, abi.encodeWithSelector(UtilityMarket.UtilityMarketAgreementNotOpen.selector, dirtyId));
        _assertOpen(agreementId);
    }

    function test_settleBatch_settlesTwentyAgreements() public {
        UtilityMarket.Agreement[] memory batch = _openMany(20);
        uint256 delivered;
        for (uint256 i = 0; i < batch.length; ++i) {
            delivered += QUANTITY * (i + 1) / batch.length;
        }
        _warpPastGrace(batch[0]);
        vm.expectEmit(address(market));
        emit UtilityMarket.AgreementSettled(_agreementId(batch[19]), QUANTITY, QUANTITY * PRICE, 0);
        market.settleBatch(batch);

        for (uint256 i = 0; i < batch.length; ++i) {
            _assertClosed(_agreementId(batch[i]));
        }
        assertEq(token.balanceOf(seller), FUNDS + delivered * PRICE);
        // Only the setUp agreement's escrow is left.
        assertEq(token.balanceOf(address(market)), _escrow(agreement));
    }

    function test_settleBatch_acceptsMaxBatch() public {
        UtilityMarket.Agreement[] memory batch = _openMany(market.MAX_BATCH());
        _warpPastGrace(batch[0]);
        market.settleBatch(batch);
        _assertClosed(_agreementId(batch[batch.length - 1]));
        assertEq(token.balanceOf(address(market)), _escrow(agreement));
    }

    function test_settleBatch_revertsWhenEmpty() public {
        vm.expectRevert(abi.encodeWithSelector(UtilityMarket.UtilityMarketBatchSize.selector, 0));
        market.settleBatch(new UtilityMarket.Agreement[](0));
    }

    function test_settleBatch_revertsBeyondMaxBatch() public {
        uint256 size = market.MAX_BATCH() + 1;
        UtilityMarket.Agreement[] memory batch = new UtilityMarket.Agreement[](size);
        vm.expectRevert(abi.encodeWithSelector(UtilityMarket.UtilityMarketBatchSize.selector, size));
        market.settleBatch(batch);
    }

    function test_settleBatch_skipsDuplicate() public {
        _report(agreement, buyerMeterKey, QUANTITY, 1);
        UtilityMarket.Agreement[] memory batch = new UtilityMarket.Agreement[](2);
        (batch[0], batch[1]) = (agreement, agreement);
        vm.expectEmit(address(market));
        emit UtilityMarket.AgreementSettled(agreementId, QUANTITY, _escrow(agreement), 0);
        vm.expectEmit(address(market));
        emit UtilityMarket.SettlementSkipped(agreementId);
        market.settleBatch(batch);
        // Paid once.
        assertEq(token.balanceOf(seller), FUNDS + _escrow(agreement));
        assertEq(token.balanceOf(address(market)), 0);
        _assertClosed(agreementId);
    }

    function test_settleBatch_skipsAgreementSettledFirst() public {
        // A keeper's batch must not fail because someone settled one of its agreements meanwhile.
        UtilityMarket.Agreement memory other = _terms(QUANTITY, PRICE, 2);
        bytes32 otherId = _open(other);
        _report(agreement, buyerMeterKey, QUANTITY, 1);
        _report(other, buyerMeterKey, QUANTITY, 1);
        market.settle(agreement);

        UtilityMarket.Agreement[] memory batch = new UtilityMarket.Agreement[](2);
        (batch[0], batch[1]) = (agreement, other);
        vm.expectEmit(address(market));
        emit UtilityMarket.SettlementSkipped(agreementId);
        vm.expectEmit(address(market));
        emit UtilityMarket.AgreementSettled(otherId, QUANTITY, _escrow(other), 0);
        market.settleBatch(batch);
        assertEq(token.balanceOf(seller), FUNDS + _escrow(agreement) + _escrow(other));
        assertEq(token.balanceOf(address(market)), 0);
    }

    function test_settleBatch_skipsTermsOfNoOpenAgreement() public {
        // Altered terms name an id that was never opened, which the batch cannot tell from one
        // settled earlier: skipped too, and nothing moves.
        UtilityMarket.Agreement memory altered = agreement;
        altered.unitPrice *= 2;
        UtilityMarket.Agreement[] memory batch = new UtilityMarket.Agreement[](1);
        batch[0] = altered;
        vm.expectEmit(address(market));
        emit UtilityMarket.SettlementSkipped(_agreementId(altered));
        market.settleBatch(batch);
        _assertOpen(agreementId);
        assertEq(token.balanceOf(address(market)), _escrow(agreement));
    }

    function test_settleBatch_revertsWhenOneIsTooEarly() public {
        UtilityMarket.Agreement memory settled = _terms(QUANTITY, PRICE, 2);
        _open(settled);
        _report(settled, buyerMeterKey, QUANTITY, 1);
        market.settle(settled);
        _report(agreement, buyerMeterKey, QUANTITY, 1);
        UtilityMarket.Agreement[] memory batch = new UtilityMarket.Agreement[](3);
        (batch[0], batch[1], batch[2]) = (settled, agreement, _terms(QUANTITY, PRICE, 3));
        _open(batch[2]);
        // Skipping is for agreements already closed; one still running fails the whole batch.
        _expectTooEarly(batch[2]);
        market.settleBatch(batch);
        _assertOpen(agreementId);
    }
}

contract ProviderTradeTest is AgreementTestBase {
    uint256 private constant PART = QUANTITY * 4 / 10;

    /// The terms tradeWithProvider builds for `prosumer`'s next trade in `role`, if mined now.
    function _providerTerms(UtilityMarket.Role role, address prosumer, uint256 quantity)
        internal
        view
        returns (UtilityMarket.Agreement memory terms)
    {
        bool buying = role == UtilityMarket.Role.Buyer;
        uint256 nonce = market.providerTradeNonce() + 1;
        terms = _terms(quantity, buying ? market.providerSellsAt() : market.providerBuysAt(), nonce);
        terms.negotiationId = bytes32(0);
        terms.transcriptHash = bytes32(0);
        (terms.seller, terms.buyer) = buying ? (market.provider(), prosumer) : (prosumer, market.provider());
        terms.sellerDeadline = 0;
        terms.buyerDeadline = 0;
    }

    /// Trades QUANTITY at the current tariff as the limit; checks the id against the expected terms.
    function _trade(UtilityMarket.Role role, address prosumer) internal returns (UtilityMarket.Agreement memory terms) {
        terms = _providerTerms(role, prosumer, QUANTITY);
        assertEq(_tradeAs(prosumer, role, QUANTITY, terms.unitPrice), _agreementId(terms));
    }

    function _assertTradeEscrows(UtilityMarket.Role role, address prosumer, address payer) internal {
        UtilityMarket.Agreement memory expected = _providerTerms(role, prosumer, QUANTITY);
        bytes32 id = _agreementId(expected);
        vm.expectEmit(address(market));
        emit UtilityMarket.AgreementOpened(id, expected.seller, expected.buyer, expected);
        vm.expectEmit(address(token));
        emit IERC20.Transfer(payer, address(market), _escrow(expected));
        vm.expectEmit(address(market));
        emit UtilityMarket.ProviderTradeOpened(id, prosumer, role);
        _trade(role, prosumer);
        assertEq(token.balanceOf(payer), FUNDS - _escrow(expected));
        assertEq(market.providerTradeNonce(), 1);
        _assertOpen(id);
    }

    function _expectTariffBeyondLimit(uint256 tariff, uint256 limit) internal {
        vm.expectRevert(abi.encodeWithSelector(UtilityMarket.UtilityMarketTariffBeyondLimit.selector, tariff, limit));
    }

    function _expectInvalidWindow(uint64 start, uint64 end) internal {
        vm.expectRevert(abi.encodeWithSelector(UtilityMarket.UtilityMarketInvalidWindow.selector, start, end));
    }

    function _expectSaleLimit(address prosumer, uint256 wouldBeOpen, uint256 limit) internal {
        vm.expectRevert(
            abi.encodeWithSelector(UtilityMarket.UtilityMarketProviderSaleLimit.selector, prosumer, wouldBeOpen, limit)
        );
    }

    /// The provider's escrow for a sale of `quantity` at the fixture's buying tariff.
    function _saleEscrow(uint256 quantity) internal pure returns (uint256) {
        return quantity * PROVIDER_BUYS_AT;
    }

    /// `prosumer` sells `quantity` to the provider at the fixture's buying tariff.
    function _sell(address prosumer, uint256 quantity) internal returns (UtilityMarket.Agreement memory terms) {
        terms = _providerTerms(UtilityMarket.Role.Seller, prosumer, quantity);
        assertEq(_tradeAs(prosumer, UtilityMarket.Role.Seller, quantity, PROVIDER_BUYS_AT), _agreementId(terms));
    }

    function _setSaleLimit(uint256 limit) internal {
        vm.prank(operator);
        market.setProviderSaleLimit(limit);
    }

    /// `prosumer`'s order for QUANTITY in `role` at the current tariff, its window starting now.
    function _order(address prosumer, UtilityMarket.Role role, uint256 nonce)
        internal
        view
        returns (UtilityMarket.ProviderOrder memory)
    {
        return UtilityMarket.ProviderOrder({
            prosumer: prosumer,
            role: role,
            quantity: QUANTITY,
            deliveryStart: uint64(block.timestamp),
            deliveryEnd: uint64(block.timestamp) + WINDOW,
            limitPrice: role == UtilityMarket.Role.Buyer ? market.providerSellsAt() : market.providerBuysAt(),
            nonce: nonce,
            deadline: uint64(block.timestamp) + 10 minutes
        });
    }

    function _signOrder(uint256 key, UtilityMarket.ProviderOrder memory order) internal view returns (bytes memory) {
        return _sign(key, keccak256(abi.encode(market.PROVIDER_ORDER_TYPEHASH(), order)));
    }

    /// Places `order` signed by `key`, relayed by the operator (anyone may relay).
    function _placeOrder(UtilityMarket.ProviderOrder memory order, uint256 key) internal returns (bytes32) {
        bytes memory signature = _signOrder(key, order);
        vm.prank(operator);
        return market.tradeWithProviderFor(order, signature);
    }

    /// Registers the provider as a prosumer with a meter of its own, which the fixture's provider lacks.
    function _meterProvider() internal returns (uint256 providerMeterKey) {
        address providerMeter;
        (providerMeter, providerMeterKey) = makeAddrAndKey("providerMeter");
        vm.startPrank(operator);
        market.registerProsumer(provider);
        market.registerMeter(provider, providerMeter);
        vm.stopPrank();
    }

    function test_tradeWithProvider_buyingEscrowsProsumerTokens() public {
        _assertTradeEscrows(UtilityMarket.Role.Buyer, buyer, buyer);
    }

    function test_tradeWithProvider_sellingEscrowsProviderTokens() public {
        _assertTradeEscrows(UtilityMarket.Role.Seller, seller, provider);
    }

    function test_tradeWithProvider_buyingPaysBuyersMeterFigure() public {
        UtilityMarket.Agreement memory terms = _trade(UtilityMarket.Role.Buyer, buyer);
        _report(terms, buyerMeterKey, PART, 1);
        _warpPastGrace(terms);
        market.settle(terms);
        assertEq(token.balanceOf(provider), FUNDS + PART * PROVIDER_SELLS_AT);
        assertEq(token.balanceOf(buyer), FUNDS - PART * PROVIDER_SELLS_AT);
    }

    function test_tradeWithProvider_sellingSettlesAtOnceOnSellersFullFigure() public {
        // The provider has no meter here: in a sale to it, the seller's meter confirms delivery.
        UtilityMarket.Agreement memory terms = _trade(UtilityMarket.Role.Seller, seller);
        _report(terms, sellerMeterKey, QUANTITY, 1);
        market.settle(terms);
        assertEq(token.balanceOf(seller), FUNDS + _saleEscrow(QUANTITY));
        assertEq(token.balanceOf(provider), FUNDS - _saleEscrow(QUANTITY));
    }

    function test_tradeWithProvider_sellingPaysSellersPartAfterGrace() public {
        UtilityMarket.Agreement memory terms = _trade(UtilityMarket.Role.Seller, seller);
        _report(terms, sellerMeterKey, PART, 1);
        _expectTooEarly(terms);
        market.settle(terms);
        _warpPastGrace(terms);
        market.settle(terms);
        assertEq(token.balanceOf(seller), FUNDS + _saleEscrow(PART));
        assertEq(token.balanceOf(provider), FUNDS - _saleEscrow(PART));
    }

    function test_tradeWithProvider_providersOwnMeterCapsSale() public {
        // Should the provider have a meter here after all, it guards the provider as any buyer's
        // meter guards its buyer: the lower figure is payable.
        uint256 providerMeterKey = _meterProvider();
        UtilityMarket.Agreement memory terms = _trade(UtilityMarket.Role.Seller, seller);
        _report(terms, providerMeterKey, PART, 1);
        _report(terms, sellerMeterKey, QUANTITY, 1);
        (,,, uint256 payable_) = market.agreementState(_agreementId(terms));
        assertEq(payable_, PART);
        _expectTooEarly(terms);
        market.settle(terms);
        _warpPastGrace(terms);
        market.settle(terms);
        assertEq(token.balanceOf(seller), FUNDS + _saleEscrow(PART));
    }

    function test_tradeWithProvider_providersMeterCannotConfirmSaleEarly() public {
        // Early settlement of a sale to the provider waits for the seller's meter, not the buyer's.
        uint256 providerMeterKey = _meterProvider();
        UtilityMarket.Agreement memory terms = _trade(UtilityMarket.Role.Seller, seller);
        _report(terms, providerMeterKey, QUANTITY, 1);
        _expectTooEarly(terms);
        market.settle(terms);
        _warpPastGrace(terms);
        market.settle(terms);
        assertEq(token.balanceOf(seller), FUNDS + _saleEscrow(QUANTITY));
    }

    function test_tradeWithProvider_buyingSettlesAtOnceOnlyOnBuyersFullFigure() public {
        // A purchase from the provider is an ordinary agreement: its seller's meter cannot confirm.
        uint256 providerMeterKey = _meterProvider();
        UtilityMarket.Agreement memory terms = _trade(UtilityMarket.Role.Buyer, buyer);
        _report(terms, providerMeterKey, QUANTITY, 1);
        _expectTooEarly(terms);
        market.settle(terms);
        _report(terms, buyerMeterKey, QUANTITY, 1);
        market.settle(terms);
        assertEq(token.balanceOf(provider), FUNDS + QUANTITY * PROVIDER_SELLS_AT);
    }

    function test_tradeWithProvider_sellingRefundsProviderWithoutSellersReport() public {
        UtilityMarket.Agreement memory terms = _trade(UtilityMarket.Role.Seller, seller);
        _warpPastGrace(terms);
        market.settle(terms);
        assertEq(token.balanceOf(provider), FUNDS);
        assertEq(token.balanceOf(seller), FUNDS);
    }

    function test_tradeWithProvider_makesEachTradeUnique() public {
        bytes32 first = _agreementId(_trade(UtilityMarket.Role.Buyer, buyer));
        bytes32 second = _agreementId(_trade(UtilityMarket.Role.Buyer, buyer));
        assertTrue(first != second);
        assertEq(market.providerTradeNonce(), 2);
    }

    function test_tradeWithProvider_keepsProviderOfOpenTrade() public {
        UtilityMarket.Agreement memory terms = _trade(UtilityMarket.Role.Buyer, buyer);
        vm.startPrank(operator);
        market.setProvider(stranger);
        market.setTariffs(1, 1);
        vm.stopPrank();
        _report(terms, buyerMeterKey, QUANTITY, 1);
        market.settle(terms);
        assertEq(token.balanceOf(provider), FUNDS + QUANTITY * PROVIDER_SELLS_AT);
        assertEq(token.balanceOf(stranger), 0);
    }

    function test_tradeWithProvider_revertsWhenBuyingAboveLimit() public {
        _expectTariffBeyondLimit(PROVIDER_SELLS_AT, PROVIDER_SELLS_AT - 1);
        _tradeAs(buyer, UtilityMarket.Role.Buyer, QUANTITY, PROVIDER_SELLS_AT - 1);
    }

    function test_tradeWithProvider_revertsWhenSellingBelowLimit() public {
        _expectTariffBeyondLimit(PROVIDER_BUYS_AT, PROVIDER_BUYS_AT + 1);
        _tradeAs(seller, UtilityMarket.Role.Seller, QUANTITY, PROVIDER_BUYS_AT + 1);
    }

    function test_tradeWithProvider_revertsAfterTariffRaise() public {
        // The buyer signed its transaction at the old tariff; the operator raised it before mining.
        vm.prank(operator);
        market.setTariffs(PROVIDER_SELLS_AT + 1, PROVIDER_BUYS_AT);
        _expectTariffBeyondLimit(PROVIDER_SELLS_AT + 1, PROVIDER_SELLS_AT);
        _tradeAs(buyer, UtilityMarket.Role.Buyer, QUANTITY, PROVIDER_SELLS_AT);
    }

    function test_tradeWithProvider_revertsForNonProsumer() public {
        vm.expectRevert(abi.encodeWithSelector(UtilityMarket.UtilityMarketNotProsumer.selector, stranger));
        _tradeAs(stranger, UtilityMarket.Role.Buyer, QUANTITY, PROVIDER_SELLS_AT);
    }

    function test_tradeWithProvider_revertsForProviderItself() public {
        vm.prank(operator);
        market.registerProsumer(provider);
        vm.expectRevert(abi.encodeWithSelector(UtilityMarket.UtilityMarketSelfTrade.selector, provider));
        _tradeAs(provider, UtilityMarket.Role.Buyer, QUANTITY, PROVIDER_SELLS_AT);
    }

    function test_tradeWithProvider_revertsOnZeroQuantity() public {
        vm.expectRevert(abi.encodeWithSelector(UtilityMarket.UtilityMarketInvalidQuantity.selector, 0));
        _tradeAs(buyer, UtilityMarket.Role.Buyer, 0, PROVIDER_SELLS_AT);
    }

    function test_tradeWithProvider_revertsOnPastWindow() public {
        uint64 start = uint64(block.timestamp) - WINDOW;
        uint64 end = uint64(block.timestamp);
        _expectInvalidWindow(start, end);
        vm.prank(buyer);
        market.tradeWithProvider(UtilityMarket.Role.Buyer, QUANTITY, start, end, PROVIDER_SELLS_AT);
    }

    function test_tradeWithProvider_revertsOnWindowStartedBeforeNow() public {
        // A second in the past would let a meter report deliveries made before the trade existed.
        uint64 start = uint64(block.timestamp) - 1;
        uint64 end = uint64(block.timestamp) + WINDOW;
        _expectInvalidWindow(start, end);
        vm.prank(seller);
        market.tradeWithProvider(UtilityMarket.Role.Seller, QUANTITY, start, end, PROVIDER_BUYS_AT);
    }

    function test_tradeWithProvider_acceptsLaterWindowUpToLimit() public {
        uint64 start = uint64(block.timestamp) + 1 days;
        uint64 end = uint64(block.timestamp) + market.MAX_PROVIDER_TRADE_WINDOW();
        UtilityMarket.Agreement memory terms = _providerTerms(UtilityMarket.Role.Seller, seller, QUANTITY);
        (terms.deliveryStart, terms.deliveryEnd) = (start, end);
        vm.prank(seller);
        bytes32 id = market.tradeWithProvider(UtilityMarket.Role.Seller, QUANTITY, start, end, PROVIDER_BUYS_AT);
        assertEq(id, _agreementId(terms));
        _assertOpen(id);
    }

    function test_tradeWithProvider_revertsWithoutProviderAllowance() public {
        vm.prank(provider);
        token.approve(address(market), 0);
        uint256 escrow = QUANTITY * PROVIDER_BUYS_AT;
        vm.expectRevert(
            abi.encodeWithSelector(IERC20Errors.ERC20InsufficientAllowance.selector, address(market), 0, escrow)
        );
        _tradeAs(seller, UtilityMarket.Role.Seller, QUANTITY, PROVIDER_BUYS_AT);
    }

    function test_tradeWithProvider_termsCanNeverBeOpenedBySignature() public {
        // The provider, registered as a prosumer too, signs with the buyer exactly the terms of a
        // provider trade that has settled in this very block: their deadlines of 0 refuse them, so
        // clearing the settled slot cannot let the same agreement escrow and pay twice.
        vm.prank(operator);
        market.registerProsumer(provider);
        UtilityMarket.Agreement memory terms = _trade(UtilityMarket.Role.Buyer, buyer);
        _report(terms, buyerMeterKey, QUANTITY, 1);
        market.settle(terms);

        (bytes memory sellerSig, bytes memory buyerSig) = _signed(terms, providerKey, buyerKey);
        vm.expectRevert(abi.encodeWithSelector(UtilityMarket.UtilityMarketSignatureExpired.selector, provider, 0));
        market.openAgreement(terms, sellerSig, buyerSig);
    }

    function test_tradeWithProvider_revertsOnWindowBeyondLimit() public {
        uint64 start = uint64(block.timestamp);
        uint64 end = start + market.MAX_PROVIDER_TRADE_WINDOW() + 1;
        _expectInvalidWindow(start, end);
        vm.prank(seller);
        market.tradeWithProvider(UtilityMarket.Role.Seller, QUANTITY, start, end, PROVIDER_BUYS_AT);
    }

    // ------------------------------------------------------ provider sale limit

    function test_tradeWithProvider_sellingRecordsProviderSaleEscrow() public {
        _sell(seller, QUANTITY);
        _sell(seller, PART);
        assertEq(market.providerSaleEscrow(seller), _saleEscrow(QUANTITY + PART));
        // Purchases from the provider escrow the prosumer's own tokens: not counted.
        _trade(UtilityMarket.Role.Buyer, buyer);
        assertEq(market.providerSaleEscrow(buyer), 0);
    }

    function test_tradeWithProvider_acceptsSalesUpToLimit() public {
        uint256 limit = _saleEscrow(2 * QUANTITY);
        _setSaleLimit(limit);
        _sell(seller, QUANTITY);
        _sell(seller, QUANTITY);
        assertEq(market.providerSaleEscrow(seller), limit);
        // One milli-unit more would leave more than the limit in escrow at once.
        _expectSaleLimit(seller, limit + _saleEscrow(1), limit);
        _tradeAs(seller, UtilityMarket.Role.Seller, 1, PROVIDER_BUYS_AT);
        assertEq(market.providerTradeNonce(), 2);
        assertEq(token.balanceOf(provider), FUNDS - limit);
    }

    function test_tradeWithProvider_limitsEachProsumerApart() public {
        uint256 limit = _saleEscrow(QUANTITY);
        _setSaleLimit(limit);
        _sell(seller, QUANTITY);
        // The buyer of the fixture sells too, with a limit of its own.
        _sell(buyer, QUANTITY);
        assertEq(market.providerSaleEscrow(buyer), limit);
        _expectSaleLimit(seller, limit + _saleEscrow(QUANTITY), limit);
        _tradeAs(seller, UtilityMarket.Role.Seller, QUANTITY, PROVIDER_BUYS_AT);
    }

    function test_tradeWithProvider_doesNotLimitPurchases() public {
        _setSaleLimit(0);
        _trade(UtilityMarket.Role.Buyer, seller);
        assertEq(market.providerSaleEscrow(seller), 0);
    }

    function test_tradeWithProvider_zeroLimitStillAcceptsSaleEscrowingNothing() public {
        // The limit bounds the provider's tokens at stake; a sale at a zero tariff stakes none.
        vm.startPrank(operator);
        market.setProviderSaleLimit(0);
        market.setTariffs(PROVIDER_SELLS_AT, 0);
        vm.stopPrank();
        vm.prank(seller);
        market.tradeWithProvider(
            UtilityMarket.Role.Seller, QUANTITY, uint64(block.timestamp), uint64(block.timestamp) + WINDOW, 0
        );
        assertEq(market.providerSaleEscrow(seller), 0);
    }

    function test_settle_freesWholeSaleEscrowOfPartDelivery() public {
        uint256 limit = _saleEscrow(QUANTITY);
        _setSaleLimit(limit);
        UtilityMarket.Agreement memory terms = _sell(seller, QUANTITY);
        _report(terms, sellerMeterKey, PART, 1);
        _warpPastGrace(terms);
        market.settle(terms);
        // Paid for the part, refunded the rest: none of the provider's tokens is at stake any more.
        assertEq(market.providerSaleEscrow(seller), 0);
        _sell(seller, QUANTITY);
        assertEq(market.providerSaleEscrow(seller), limit);
    }

    function test_settleBatch_freesSaleEscrow() public {
        UtilityMarket.Agreement[] memory batch = new UtilityMarket.Agreement[](2);
        batch[0] = _sell(seller, QUANTITY);
        batch[1] = _sell(seller, PART);
        _report(batch[0], sellerMeterKey, QUANTITY, 1);
        _report(batch[1], sellerMeterKey, PART, 1);
        market.settleBatch(batch);
        assertEq(market.providerSaleEscrow(seller), 0);
    }

    function test_setProviderSaleLimit_belowOpenSalesKeepsThemOpen() public {
        UtilityMarket.Agreement memory terms = _sell(seller, QUANTITY);
        _setSaleLimit(0);
        _expectSaleLimit(seller, _saleEscrow(QUANTITY + 1), 0);
        _tradeAs(seller, UtilityMarket.Role.Seller, 1, PROVIDER_BUYS_AT);
        // The open sale is not undone: it is delivered and settles as agreed.
        _report(terms, sellerMeterKey, QUANTITY, 1);
        market.settle(terms);
        assertEq(token.balanceOf(seller), FUNDS + _saleEscrow(QUANTITY));
        assertEq(market.providerSaleEscrow(seller), 0);
    }

    function test_tradeWithProviderFor_tradesForTheProsumerWhoSigned() public {
        UtilityMarket.ProviderOrder memory order = _order(buyer, UtilityMarket.Role.Buyer, 7);
        UtilityMarket.Agreement memory expected = _providerTerms(UtilityMarket.Role.Buyer, buyer, QUANTITY);
        bytes32 id = _agreementId(expected);
        vm.expectEmit(address(market));
        emit UtilityMarket.AgreementOpened(id, provider, buyer, expected);
        vm.expectEmit(address(market));
        emit UtilityMarket.ProviderTradeOpened(id, buyer, UtilityMarket.Role.Buyer);
        assertEq(_placeOrder(order, buyerKey), id);
        assertTrue(market.isNonceUsed(buyer, 7));
        assertEq(token.balanceOf(buyer), FUNDS - _escrow(expected));
        _assertOpen(id);
    }

    function test_tradeWithProviderFor_sellsForTheProsumerWhoSigned() public {
        UtilityMarket.ProviderOrder memory order = _order(seller, UtilityMarket.Role.Seller, 8);
        UtilityMarket.Agreement memory expected = _providerTerms(UtilityMarket.Role.Seller, seller, QUANTITY);
        assertEq(_placeOrder(order, sellerKey), _agreementId(expected));
        assertEq(market.providerSaleEscrow(seller), _saleEscrow(QUANTITY));
    }

    function test_tradeWithProviderFor_refusesAnotherSigner() public {
        UtilityMarket.ProviderOrder memory order = _order(buyer, UtilityMarket.Role.Buyer, 7);
        bytes memory signature = _signOrder(sellerKey, order);
        vm.expectRevert(abi.encodeWithSelector(UtilityMarket.UtilityMarketInvalidSignature.selector, buyer, seller));
        market.tradeWithProviderFor(order, signature);
    }

    function test_tradeWithProviderFor_refusesAReplay() public {
        UtilityMarket.ProviderOrder memory order = _order(buyer, UtilityMarket.Role.Buyer, 7);
        _placeOrder(order, buyerKey);
        bytes memory signature = _signOrder(buyerKey, order);
        vm.expectRevert(abi.encodeWithSelector(UtilityMarket.UtilityMarketNonceUsed.selector, buyer, 7));
        market.tradeWithProviderFor(order, signature);
    }

    function test_tradeWithProviderFor_refusesAnExpiredOrder() public {
        UtilityMarket.ProviderOrder memory order = _order(buyer, UtilityMarket.Role.Buyer, 7);
        bytes memory signature = _signOrder(buyerKey, order);
        vm.warp(order.deadline + 1);
        vm.expectRevert(
            abi.encodeWithSelector(UtilityMarket.UtilityMarketSignatureExpired.selector, buyer, order.deadline)
        );
        market.tradeWithProviderFor(order, signature);
    }

    function test_tradeWithProviderFor_refusesAStranger() public {
        (address stranger, uint256 strangerKey) = makeAddrAndKey("stranger");
        UtilityMarket.ProviderOrder memory order = _order(stranger, UtilityMarket.Role.Buyer, 7);
        bytes memory signature = _signOrder(strangerKey, order);
        vm.expectRevert(abi.encodeWithSelector(UtilityMarket.UtilityMarketNotProsumer.selector, stranger));
        market.tradeWithProviderFor(order, signature);
    }

    function test_tradeWithProviderFor_startsAWindowThatHasBegunNow() public {
        UtilityMarket.ProviderOrder memory order = _order(buyer, UtilityMarket.Role.Buyer, 7);
        bytes memory signature = _signOrder(buyerKey, order);
        vm.warp(block.timestamp + 60);
        UtilityMarket.Agreement memory expected = _providerTerms(UtilityMarket.Role.Buyer, buyer, QUANTITY);
        expected.deliveryStart = uint64(block.timestamp);
        expected.deliveryEnd = order.deliveryEnd;
        assertEq(market.tradeWithProviderFor(order, signature), _agreementId(expected));
    }
}

/// A market over a token that calls back into it mid-transfer: nonReentrant must refuse every
/// reentrant entry into a function that moves tokens.
contract ReentrancyTest is AgreementTestBase {
    ReentrantToken internal evil;
    /// Complete and ready to settle.
    UtilityMarket.Agreement internal ready;
    /// The reentrant call's target: complete too, so only the guard can stop it.
    UtilityMarket.Agreement internal victim;

    function setUp() public override {
        super.setUp();
        evil = new ReentrantToken();
        market = new UtilityMarket(
            IERC20(address(evil)), "biogas", "m3", operator, provider, PROVIDER_SELLS_AT, PROVIDER_BUYS_AT, GRACE
        );
        vm.startPrank(operator);
        market.registerProsumer(seller);
        market.registerProsumer(buyer);
        market.registerMeter(seller, sellerMeter);
        market.registerMeter(buyer, buyerMeter);
        vm.stopPrank();
        address[3] memory holders = [seller, buyer, provider];
        for (uint256 i = 0; i < holders.length; ++i) {
            evil.mint(holders[i], FUNDS);
            vm.prank(holders[i]);
            evil.approve(address(market), type(uint256).max);
        }

        ready = _terms(QUANTITY, PRICE, 1);
        victim = _terms(QUANTITY, PRICE, 2);
        _open(ready);
        _open(victim);
        _report(ready, buyerMeterKey, QUANTITY, 1);
        _report(victim, buyerMeterKey, QUANTITY, 1);
        evil.arm(address(market), abi.encodeCall(market.settle, (victim)));
    }

    function _assertReentryBlocked() internal view {
        assertTrue(evil.reentered());
        assertFalse(evil.reentrySucceeded());
        assertEq(
            evil.reentryResult(), abi.encodeWithSelector(ReentrancyGuardTransient.ReentrancyGuardReentrantCall.selector)
        );
        _assertOpen(_agreementId(victim));
    }

    function test_settle_blocksReentrantSettle() public {
        market.settle(ready);
        _assertReentryBlocked();
        _assertClosed(_agreementId(ready));
        // Paid once, for the agreement actually settled.
        assertEq(evil.balanceOf(seller), FUNDS + _escrow(ready));
    }

    function test_settleBatch_blocksReentrantSettle() public {
        UtilityMarket.Agreement[] memory batch = new UtilityMarket.Agreement[](1);
        batch[0] = ready;
        market.settleBatch(batch);
        _assertReentryBlocked();
    }

    function test_openAgreement_blocksReentrantSettle() public {
        _open(_terms(QUANTITY, PRICE, 3));
        _assertReentryBlocked();
    }

    function test_tradeWithProvider_blocksReentrantSettle() public {
        _tradeAs(buyer, UtilityMarket.Role.Buyer, QUANTITY, PROVIDER_SELLS_AT);
        _assertReentryBlocked();
    }

    function test_settle_closesAgreementBeforePaying() public {
        // reportDelivery has no guard; the slot, cleared before the payout, refuses it.
        UtilityMarket.DeliveryReport memory report =
            _reportFor(_agreementId(ready), QUANTITY, uint64(block.timestamp), 2);
        evil.arm(
            address(market),
            abi.encodeCall(market.reportDelivery, (ready, report, _sign(sellerMeterKey, _reportHash(report))))
        );
        market.settle(ready);
        assertEq(
            evil.reentryResult(),
            abi.encodeWithSelector(UtilityMarket.UtilityMarketAgreementNotOpen.selector, _agreementId(ready))
        );
    }
}
