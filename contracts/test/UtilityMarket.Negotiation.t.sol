// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

import {UtilityMarket} from "../src/UtilityMarket.sol";
import {MarketFixture} from "./utils/MarketFixture.sol";

contract UtilityMarketNegotiationTest is MarketFixture {
    uint256 private constant NONCE = 42;

    address internal stranger = makeAddr("stranger");
    /// A registered prosumer that is not a party to the negotiations under test.
    address internal intruder;
    uint256 internal intruderKey;

    function setUp() public override {
        super.setUp();
        (intruder, intruderKey) = makeAddrAndKey("intruder");
        vm.prank(operator);
        market.registerProsumer(intruder);
    }

    function _request(address requester, UtilityMarket.Role role) internal returns (bytes32) {
        vm.prank(requester);
        return market.requestNegotiation(NONCE, role, QUANTITY);
    }

    function _join(bytes32 negotiationId, address counterparty) internal {
        vm.prank(counterparty);
        market.joinNegotiation(negotiationId);
    }

    /// The seller asks to sell and the buyer joins.
    function _negotiating() internal returns (bytes32 negotiationId) {
        negotiationId = _request(seller, UtilityMarket.Role.Seller);
        _join(negotiationId, buyer);
    }

    /// An offer between the fixture's seller and buyer; the price moves with the round, as
    /// haggling does, so every round's offer hashes differently.
    function _offer(bytes32 negotiationId, address proposer, uint32 round, bytes32 previous)
        internal
        view
        returns (UtilityMarket.Offer memory)
    {
        return UtilityMarket.Offer({
            negotiationId: negotiationId,
            seller: seller,
            buyer: buyer,
            proposer: proposer,
            round: round,
            quantity: QUANTITY,
            unitPrice: PRICE + round,
            previous: previous
        });
    }

    function _post(UtilityMarket.Offer memory offer, uint256 key) internal returns (bytes32 offerHash) {
        offerHash = _offerHash(offer);
        market.postOffer(offer, _sign(key, offerHash));
    }

    /// Seller's then buyer's offer on a joined negotiation; returns both hashes.
    function _twoRounds(bytes32 negotiationId) internal returns (bytes32 first, bytes32 second) {
        first = _post(_offer(negotiationId, seller, 1, bytes32(0)), sellerKey);
        second = _post(_offer(negotiationId, buyer, 2, first), buyerKey);
    }

    function _state(bytes32 negotiationId) internal view returns (UtilityMarket.NegotiationState state) {
        (,, state,,,) = market.negotiations(negotiationId);
    }

    function _agreementFor(bytes32 negotiationId, bytes32 transcript, uint256 nonce)
        internal
        view
        returns (UtilityMarket.Agreement memory terms)
    {
        terms = _terms(QUANTITY, PRICE, nonce);
        terms.negotiationId = negotiationId;
        terms.transcriptHash = transcript;
    }


    function _expectClosed(bytes32 negotiationId, UtilityMarket.NegotiationState state) internal {
        vm.expectRevert(
            abi.encodeWithSelector(UtilityMarket.UtilityMarketNegotiationClosed.selector, negotiationId, state)
        );
    }

    function _expectNotAParty(bytes32 negotiationId, address account) internal {
        vm.expectRevert(abi.encodeWithSelector(UtilityMarket.UtilityMarketNotAParty.selector, negotiationId, account));
    }

    function _assertState(bytes32 negotiationId, UtilityMarket.NegotiationState expected) internal view {
        assertEq(uint8(_state(negotiationId)), uint8(expected));
    }

    // ------------------------------------------------------------ requestNegotiation

    function test_requestNegotiation_recordsRequest() public {
        bytes32 expectedId = keccak256(abi.encode(seller, "biogas", NONCE));
        vm.expectEmit(address(market));
        emit UtilityMarket.NegotiationRequested(expectedId, seller, UtilityMarket.Role.Seller, QUANTITY);
        bytes32 id = _request(seller, UtilityMarket.Role.Seller);

        assertEq(id, expectedId);
        (
            address requester,
            UtilityMarket.Role role,
            UtilityMarket.NegotiationState state,
            uint32 lastRound,
            address counterparty,
            bytes32 lastOffer
        ) = market.negotiations(id);
        assertEq(requester, seller);
        assertEq(uint8(role), uint8(UtilityMarket.Role.Seller));
        assertEq(uint8(state), uint8(UtilityMarket.NegotiationState.Requested));
        assertEq(lastRound, 0);
        assertEq(counterparty, address(0));
        assertEq(lastOffer, bytes32(0));
    }

    function test_requestNegotiation_revertsForNonProsumer() public {
        vm.expectRevert(abi.encodeWithSelector(UtilityMarket.UtilityMarketNotProsumer.selector, stranger));
        _request(stranger, UtilityMarket.Role.Buyer);
    }

    function test_requestNegotiation_revertsForDeregisteredProsumer() public {
        vm.prank(operator);
        market.deregisterProsumer(seller);
        vm.expectRevert(abi.encodeWithSelector(UtilityMarket.UtilityMarketNotProsumer.selector, seller));
        _request(seller, UtilityMarket.Role.Seller);
    }

    function test_requestNegotiation_revertsOnInvalidQuantity() public {
        uint256 tooLarge = uint256(type(uint96).max) + 1;
        vm.startPrank(seller);
        vm.expectRevert(abi.encodeWithSelector(UtilityMarket.UtilityMarketInvalidQuantity.selector, 0));
        market.requestNegotiation(1, UtilityMarket.Role.Seller, 0);
        vm.expectRevert(abi.encodeWithSelector(UtilityMarket.UtilityMarketInvalidQuantity.selector, tooLarge));
        market.requestNegotiation(1, UtilityMarket.Role.Seller, tooLarge);
        // The largest quantity an agreement can hold is still a valid request.
        market.requestNegotiation(1, UtilityMarket.Role.Seller, type(uint96).max);
        vm.stopPrank();
    }

    function test_requestNegotiation_revertsWhenIdTaken() public {
        bytes32 id = _request(seller, UtilityMarket.Role.Seller);
        vm.expectRevert(abi.encodeWithSelector(UtilityMarket.UtilityMarketNegotiationExists.selector, id));
        _request(seller, UtilityMarket.Role.Buyer);
    }

    function test_requestNegotiation_revertsOnReuseOfBrokenOffId() public {
        bytes32 id = _request(seller, UtilityMarket.Role.Seller);
        vm.prank(seller);
        market.breakOff(id);
        vm.expectRevert(abi.encodeWithSelector(UtilityMarket.UtilityMarketNegotiationExists.selector, id));
        _request(seller, UtilityMarket.Role.Seller);
    }

    function test_requestNegotiation_separatesRequestersWithSameNonce() public {
        bytes32 sellersId = _request(seller, UtilityMarket.Role.Seller);
        bytes32 buyersId = _request(buyer, UtilityMarket.Role.Buyer);
        assertTrue(sellersId != buyersId);
    }

    // --------------------------------------------------------------- joinNegotiation

    function test_joinNegotiation_recordsCounterparty() public {
        bytes32 id = _request(seller, UtilityMarket.Role.Seller);
        vm.expectEmit(address(market));
        emit UtilityMarket.NegotiationJoined(id, buyer);
        _join(id, buyer);
        (,,,, address counterparty,) = market.negotiations(id);
        assertEq(counterparty, buyer);
        _assertState(id, UtilityMarket.NegotiationState.Negotiating);
    }

    function test_joinNegotiation_revertsForNonProsumer() public {
        bytes32 id = _request(seller, UtilityMarket.Role.Seller);
        vm.expectRevert(abi.encodeWithSelector(UtilityMarket.UtilityMarketNotProsumer.selector, stranger));
        _join(id, stranger);
    }

    function test_joinNegotiation_revertsForRequester() public {
        bytes32 id = _request(seller, UtilityMarket.Role.Seller);
        vm.expectRevert(abi.encodeWithSelector(UtilityMarket.UtilityMarketSelfTrade.selector, seller));
        _join(id, seller);
    }

    function test_joinNegotiation_revertsForUnknownNegotiation() public {
        bytes32 id = keccak256("unknown");
        _expectClosed(id, UtilityMarket.NegotiationState.None);
        _join(id, buyer);
    }

    function test_joinNegotiation_revertsWhenAlreadyJoined() public {
        bytes32 id = _negotiating();
        // A late prosumer must not take over the counterparty's seat.
        _expectClosed(id, UtilityMarket.NegotiationState.Negotiating);
        _join(id, intruder);
    }

    function test_joinNegotiation_revertsWhenBrokenOff() public {
        bytes32 id = _request(seller, UtilityMarket.Role.Seller);
        vm.prank(seller);
        market.breakOff(id);
        _expectClosed(id, UtilityMarket.NegotiationState.BrokenOff);
        _join(id, buyer);
    }

    // -------------------------------------------------------------------- postOffer

    function test_postOffer_chainsOffersOfBothParties() public {
        bytes32 id = _negotiating();
        UtilityMarket.Offer memory first = _offer(id, seller, 1, bytes32(0));
        bytes32 firstHash = _offerHash(first);
        vm.expectEmit(address(market));
        emit UtilityMarket.OfferPosted(id, seller, 1, QUANTITY, PRICE + 1, firstHash);
        _post(first, sellerKey);

        // Anyone may relay a signed offer; the signature, not the sender, speaks for the proposer.
        UtilityMarket.Offer memory second = _offer(id, buyer, 2, firstHash);
        bytes memory signature = _sign(buyerKey, _offerHash(second));
        vm.prank(stranger);
        market.postOffer(second, signature);

        (,,, uint32 lastRound,, bytes32 lastOffer) = market.negotiations(id);
        assertEq(lastRound, 2);
        assertEq(lastOffer, _offerHash(second));
        _assertState(id, UtilityMarket.NegotiationState.Negotiating);
    }

    function test_postOffer_revertsBeforeJoin() public {
        bytes32 id = _request(seller, UtilityMarket.Role.Seller);
        UtilityMarket.Offer memory offer = _offer(id, seller, 1, bytes32(0));
        bytes memory signature = _sign(sellerKey, _offerHash(offer));
        _expectClosed(id, UtilityMarket.NegotiationState.Requested);
        market.postOffer(offer, signature);
    }

    function test_postOffer_revertsWhenSellerIsNotRequester() public {
        bytes32 id = _negotiating();
        UtilityMarket.Offer memory offer = _offer(id, buyer, 1, bytes32(0));
        offer.seller = intruder;
        bytes memory signature = _sign(buyerKey, _offerHash(offer));
        _expectNotAParty(id, intruder);
        market.postOffer(offer, signature);
    }

    function test_postOffer_revertsWhenBuyerIsNotCounterparty() public {
        bytes32 id = _negotiating();
        UtilityMarket.Offer memory offer = _offer(id, seller, 1, bytes32(0));
        offer.buyer = intruder;
        bytes memory signature = _sign(sellerKey, _offerHash(offer));
        _expectNotAParty(id, intruder);
        market.postOffer(offer, signature);
    }

    function test_postOffer_revertsWhenProposerIsNotAParty() public {
        bytes32 id = _negotiating();
        UtilityMarket.Offer memory offer = _offer(id, intruder, 1, bytes32(0));
        bytes memory signature = _sign(intruderKey, _offerHash(offer));
        _expectNotAParty(id, intruder);
        market.postOffer(offer, signature);
    }

    function test_postOffer_revertsWhenRolesSwapped() public {
        // The buyer asked to buy and the seller joined: an offer naming them the other way round
        // does not belong to this negotiation.
        bytes32 id = _request(buyer, UtilityMarket.Role.Buyer);
        _join(id, seller);
        bytes32 first = _post(_offer(id, seller, 1, bytes32(0)), sellerKey);

        UtilityMarket.Offer memory swapped = _offer(id, seller, 2, first);
        (swapped.seller, swapped.buyer) = (buyer, seller);
        bytes memory signature = _sign(sellerKey, _offerHash(swapped));
        // The requester's (buying) side of the swapped offer names the seller.
        _expectNotAParty(id, seller);
        market.postOffer(swapped, signature);
    }

    function test_postOffer_revertsOnUnknownPrevious() public {
        bytes32 id = _negotiating();
        bytes32 bogus = keccak256("bogus");
        UtilityMarket.Offer memory offer = _offer(id, seller, 1, bogus);
        bytes memory signature = _sign(sellerKey, _offerHash(offer));
        vm.expectRevert(
            abi.encodeWithSelector(UtilityMarket.UtilityMarketOfferOutOfOrder.selector, id, bytes32(0), bogus)
        );
        market.postOffer(offer, signature);
    }

    function test_postOffer_revertsWhenRoundGoesBack() public {
        bytes32 id = _negotiating();
        (, bytes32 second) = _twoRounds(id);
        UtilityMarket.Offer memory offer = _offer(id, seller, 1, second);
        bytes memory signature = _sign(sellerKey, _offerHash(offer));
        vm.expectRevert(abi.encodeWithSelector(UtilityMarket.UtilityMarketRoundWentBack.selector, id, 1, 2));
        market.postOffer(offer, signature);
    }

    function test_postOffer_acceptsBothPartiesInOneRound() public {
        bytes32 id = _negotiating();
        bytes32 first = _post(_offer(id, seller, 1, bytes32(0)), sellerKey);
        _post(_offer(id, buyer, 1, first), buyerKey);
        (,,, uint32 lastRound,,) = market.negotiations(id);
        assertEq(lastRound, 1);
    }

    function test_postOffer_revertsOnReplay() public {
        bytes32 id = _negotiating();
        UtilityMarket.Offer memory offer = _offer(id, seller, 1, bytes32(0));
        bytes memory signature = _sign(sellerKey, _offerHash(offer));
        market.postOffer(offer, signature);
        vm.expectRevert(
            abi.encodeWithSelector(
                UtilityMarket.UtilityMarketOfferOutOfOrder.selector, id, _offerHash(offer), bytes32(0)
            )
        );
        market.postOffer(offer, signature);
    }

    function test_postOffer_revertsOnOtherPartysSignature() public {
        bytes32 id = _negotiating();
        UtilityMarket.Offer memory offer = _offer(id, seller, 1, bytes32(0));
        bytes memory signature = _sign(buyerKey, _offerHash(offer));
        vm.expectRevert(abi.encodeWithSelector(UtilityMarket.UtilityMarketInvalidSignature.selector, seller, buyer));
        market.postOffer(offer, signature);
    }

    // --------------------------------------------------------------------- breakOff

    function test_breakOff_byRequesterBeforeJoin() public {
        bytes32 id = _request(seller, UtilityMarket.Role.Seller);
        vm.expectEmit(address(market));
        emit UtilityMarket.NegotiationBrokenOff(id, seller);
        vm.prank(seller);
        market.breakOff(id);
        _assertState(id, UtilityMarket.NegotiationState.BrokenOff);
    }

    function test_breakOff_byCounterparty() public {
        bytes32 id = _negotiating();
        vm.expectEmit(address(market));
        emit UtilityMarket.NegotiationBrokenOff(id, buyer);
        vm.prank(buyer);
        market.breakOff(id);
        _assertState(id, UtilityMarket.NegotiationState.BrokenOff);
    }

    function test_breakOff_revertsForOutsider() public {
        bytes32 id = _negotiating();
        _expectNotAParty(id, intruder);
        vm.prank(intruder);
        market.breakOff(id);
    }

    function test_breakOff_revertsForUnknownNegotiation() public {
        bytes32 id = keccak256("unknown");
        _expectClosed(id, UtilityMarket.NegotiationState.None);
        vm.prank(seller);
        market.breakOff(id);
    }

    function test_breakOff_revertsWhenAlreadyBrokenOff() public {
        bytes32 id = _negotiating();
        vm.startPrank(seller);
        market.breakOff(id);
        _expectClosed(id, UtilityMarket.NegotiationState.BrokenOff);
        market.breakOff(id);
        vm.stopPrank();
    }

    function test_breakOff_stopsOffersAndAgreement() public {
        bytes32 id = _negotiating();
        (, bytes32 last) = _twoRounds(id);
        vm.prank(buyer);
        market.breakOff(id);

        UtilityMarket.Offer memory offer = _offer(id, seller, 3, last);
        bytes memory signature = _sign(sellerKey, _offerHash(offer));
        _expectClosed(id, UtilityMarket.NegotiationState.BrokenOff);
        market.postOffer(offer, signature);

        UtilityMarket.Agreement memory terms = _agreementFor(id, last, 1);
        (bytes memory sellerSig, bytes memory buyerSig) = _signed(terms, sellerKey, buyerKey);
        _expectClosed(id, UtilityMarket.NegotiationState.BrokenOff);
        market.openAgreement(terms, sellerSig, buyerSig);
    }

    // ------------------------------------------------- openAgreement ↔ negotiation

    function test_openAgreement_concludesNegotiationOnLastOffer() public {
        bytes32 id = _negotiating();
        (, bytes32 last) = _twoRounds(id);
        bytes32 agreementId = _open(_agreementFor(id, last, 1));
        _assertState(id, UtilityMarket.NegotiationState.Agreed);
        (bool open,,,) = market.agreementState(agreementId);
        assertTrue(open);
    }

    function test_openAgreement_revertsOnEarlierOfferAsTranscript() public {
        bytes32 id = _negotiating();
        (bytes32 first, bytes32 last) = _twoRounds(id);
        UtilityMarket.Agreement memory terms = _agreementFor(id, first, 1);
        (bytes memory sellerSig, bytes memory buyerSig) = _signed(terms, sellerKey, buyerKey);
        vm.expectRevert(abi.encodeWithSelector(UtilityMarket.UtilityMarketTranscriptMismatch.selector, id, last, first));
        market.openAgreement(terms, sellerSig, buyerSig);
    }

    function test_openAgreement_concludesRequestedNegotiationWithoutOffers() public {
        // Nothing was posted, so there is no transcript on chain to hold the agreement to.
        bytes32 id = _request(seller, UtilityMarket.Role.Seller);
        _open(_agreementFor(id, keccak256("off-chain transcript"), 1));
        _assertState(id, UtilityMarket.NegotiationState.Agreed);
    }

    function test_openAgreement_revertsWhenRequesterTakesOtherRole() public {
        bytes32 id = _request(seller, UtilityMarket.Role.Seller);
        UtilityMarket.Agreement memory terms = _agreementFor(id, bytes32(0), 1);
        (terms.seller, terms.buyer) = (buyer, seller);
        (bytes memory sellerSig, bytes memory buyerSig) = _signed(terms, buyerKey, sellerKey);
        _expectNotAParty(id, buyer);
        market.openAgreement(terms, sellerSig, buyerSig);
    }

    function test_openAgreement_revertsForCounterpartyOutsideNegotiation() public {
        bytes32 id = _negotiating();
        (, bytes32 last) = _twoRounds(id);
        // The seller signs with someone other than the joined buyer under this negotiation's id.
        UtilityMarket.Agreement memory terms = _agreementFor(id, last, 1);
        terms.buyer = intruder;
        (bytes memory sellerSig, bytes memory buyerSig) = _signed(terms, sellerKey, intruderKey);
        _expectNotAParty(id, intruder);
        market.openAgreement(terms, sellerSig, buyerSig);
    }

    function test_openAgreement_revertsOnSecondAgreementOfNegotiation() public {
        bytes32 id = _negotiating();
        (, bytes32 last) = _twoRounds(id);
        _open(_agreementFor(id, last, 1));

        UtilityMarket.Agreement memory again = _agreementFor(id, last, 2);
        (bytes memory sellerSig, bytes memory buyerSig) = _signed(again, sellerKey, buyerKey);
        _expectClosed(id, UtilityMarket.NegotiationState.Agreed);
        market.openAgreement(again, sellerSig, buyerSig);
    }

    function test_breakOff_revertsAfterAgreement() public {
        bytes32 id = _negotiating();
        (, bytes32 last) = _twoRounds(id);
        _open(_agreementFor(id, last, 1));
        _expectClosed(id, UtilityMarket.NegotiationState.Agreed);
        vm.prank(seller);
        market.breakOff(id);
    }
}
