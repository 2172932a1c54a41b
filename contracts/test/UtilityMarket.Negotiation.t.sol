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

    /// An open request: any prosumer may join.
    function _request(address requester, UtilityMarket.Role role) internal returns (bytes32) {
        return _request(requester, role, address(0));
    }

    function _request(address requester, UtilityMarket.Role role, address invitee) internal returns (bytes32) {
        vm.prank(requester);
        return market.requestNegotiation(NONCE, role, QUANTITY, invitee);
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

    /// Signs `offer` with `key` and posts it as its proposer.
    function _post(UtilityMarket.Offer memory offer, uint256 key) internal returns (bytes32 offerHash) {
        offerHash = _offerHash(offer);
        _send(offer.proposer, offer, _sign(key, offerHash));
    }

    /// Posts `offer` as `sender`. The signature is made beforehand: signing reads the domain from
    /// the market, which would use up the prank.
    function _send(address sender, UtilityMarket.Offer memory offer, bytes memory signature) internal {
        vm.prank(sender);
        market.postOffer(offer, signature);
    }

    /// Seller's then buyer's offer on a joined negotiation; returns both hashes.
    function _twoRounds(bytes32 negotiationId) internal returns (bytes32 first, bytes32 second) {
        first = _post(_offer(negotiationId, seller, 1, bytes32(0)), sellerKey);
        second = _post(_offer(negotiationId, buyer, 2, first), buyerKey);
    }

    function _state(bytes32 negotiationId) internal view returns (UtilityMarket.NegotiationState state) {
        (,, state,,,) = market.negotiations(negotiationId);
    }

    function _counterparty(bytes32 negotiationId) internal view returns (address counterparty) {
        (,,,, counterparty,) = market.negotiations(negotiationId);
    }

    function _lastOffer(bytes32 negotiationId) internal view returns (bytes32 lastOffer) {
        (,,,,, lastOffer) = market.negotiations(negotiationId);
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

    function _closed(bytes32 negotiationId, UtilityMarket.NegotiationState state) internal pure returns (bytes memory) {
        return abi.encodeWithSelector(UtilityMarket.UtilityMarketNegotiationClosed.selector, negotiationId, state);
    }

    function _notAParty(bytes32 negotiationId, address account) internal pure returns (bytes memory) {
        return abi.encodeWithSelector(UtilityMarket.UtilityMarketNotAParty.selector, negotiationId, account);
    }

    function _expectClosed(bytes32 negotiationId, UtilityMarket.NegotiationState state) internal {
        vm.expectRevert(_closed(negotiationId, state));
    }

    function _expectNotAParty(bytes32 negotiationId, address account) internal {
        vm.expectRevert(_notAParty(negotiationId, account));
    }

    function _expectNotInvited(bytes32 negotiationId, address account) internal {
        vm.expectRevert(abi.encodeWithSelector(UtilityMarket.UtilityMarketNotInvited.selector, negotiationId, account));
    }

    /// Opens `terms` signed by `sellerSigner` and `buyerSigner` and requires the exact revert `expected`.
    function _expectOpenReverts(
        UtilityMarket.Agreement memory terms,
        uint256 sellerSigner,
        uint256 buyerSigner,
        bytes memory expected
    ) internal {
        (bytes memory sellerSig, bytes memory buyerSig) = _signed(terms, sellerSigner, buyerSigner);
        vm.expectRevert(expected);
        market.openAgreement(terms, sellerSig, buyerSig);
    }

    /// Opens the agreement of `negotiationId` on `transcript`, expecting NegotiationConcluded.
    function _conclude(bytes32 negotiationId, bytes32 transcript) internal returns (bytes32 agreementId) {
        UtilityMarket.Agreement memory terms = _agreementFor(negotiationId, transcript, 1);
        (bytes memory sellerSig, bytes memory buyerSig) = _signed(terms, sellerKey, buyerKey);
        bytes32 expectedId = _agreementId(terms);
        // Concluded before the agreement opens, so an indexer sees the link before the agreement.
        vm.expectEmit(address(market));
        emit UtilityMarket.NegotiationConcluded(negotiationId, expectedId);
        vm.expectEmit(address(market));
        emit UtilityMarket.AgreementOpened(expectedId, seller, buyer, terms);
        agreementId = market.openAgreement(terms, sellerSig, buyerSig);
        assertEq(agreementId, expectedId);
        _assertState(negotiationId, UtilityMarket.NegotiationState.Agreed);
    }

    function _assertState(bytes32 negotiationId, UtilityMarket.NegotiationState expected) internal view {
        assertEq(uint8(_state(negotiationId)), uint8(expected));
    }

    // ------------------------------------------------------------ requestNegotiation

    function test_requestNegotiation_recordsRequest() public {
        bytes32 expectedId = keccak256(abi.encode(seller, "biogas", NONCE));
        vm.expectEmit(address(market));
        emit UtilityMarket.NegotiationRequested(expectedId, seller, UtilityMarket.Role.Seller, QUANTITY, address(0));
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

    function test_requestNegotiation_recordsInviteeAsCounterparty() public {
        bytes32 expectedId = keccak256(abi.encode(buyer, "biogas", NONCE));
        vm.expectEmit(address(market));
        emit UtilityMarket.NegotiationRequested(expectedId, buyer, UtilityMarket.Role.Buyer, QUANTITY, seller);
        bytes32 id = _request(buyer, UtilityMarket.Role.Buyer, seller);
        // Held as the counterparty from the start, so only the invitee can join or agree.
        assertEq(_counterparty(id), seller);
        _assertState(id, UtilityMarket.NegotiationState.Requested);
    }

    function test_requestNegotiation_revertsWhenInvitingSelf() public {
        vm.expectRevert(abi.encodeWithSelector(UtilityMarket.UtilityMarketSelfTrade.selector, seller));
        bytes32 id = _request(seller, UtilityMarket.Role.Seller, seller);
        _assertState(id, UtilityMarket.NegotiationState.None);
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
        market.requestNegotiation(1, UtilityMarket.Role.Seller, 0, address(0));
        vm.expectRevert(abi.encodeWithSelector(UtilityMarket.UtilityMarketInvalidQuantity.selector, tooLarge));
        market.requestNegotiation(1, UtilityMarket.Role.Seller, tooLarge, address(0));
        // The largest quantity an agreement can hold is still a valid request.
        market.requestNegotiation(1, UtilityMarket.Role.Seller, type(uint96).max, address(0));
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

    function test_joinNegotiation_acceptsInvitee() public {
        bytes32 id = _request(seller, UtilityMarket.Role.Seller, buyer);
        vm.expectEmit(address(market));
        emit UtilityMarket.NegotiationJoined(id, buyer);
        _join(id, buyer);
        assertEq(_counterparty(id), buyer);
        _assertState(id, UtilityMarket.NegotiationState.Negotiating);
    }

    function test_joinNegotiation_revertsForUninvitedProsumer() public {
        bytes32 id = _request(seller, UtilityMarket.Role.Seller, buyer);
        _expectNotInvited(id, intruder);
        _join(id, intruder);
        // The refused prosumer took nothing: the seat is still the invitee's.
        assertEq(_counterparty(id), buyer);
        _assertState(id, UtilityMarket.NegotiationState.Requested);
        _join(id, buyer);
    }

    function test_joinNegotiation_revertsForRequesterOfInvitation() public {
        // The self-trade check comes first, so the requester is not told it was not invited.
        bytes32 id = _request(seller, UtilityMarket.Role.Seller, buyer);
        vm.expectRevert(abi.encodeWithSelector(UtilityMarket.UtilityMarketSelfTrade.selector, seller));
        _join(id, seller);
    }

    function test_requestNegotiation_revertsForInviteeWhoIsNoProsumer() public {
        // An invitation no one could answer would only block the request.
        vm.expectRevert(abi.encodeWithSelector(UtilityMarket.UtilityMarketNotProsumer.selector, stranger));
        _request(seller, UtilityMarket.Role.Seller, stranger);
    }

    function test_joinNegotiation_revertsForInviteeDeregisteredSinceRequest() public {
        // An invitation does not bypass the registry.
        bytes32 id = _request(seller, UtilityMarket.Role.Seller, buyer);
        vm.prank(operator);
        market.deregisterProsumer(buyer);
        vm.expectRevert(abi.encodeWithSelector(UtilityMarket.UtilityMarketNotProsumer.selector, buyer));
        _join(id, buyer);
    }

    function test_joinNegotiation_openRequestAdmitsFirstProsumer() public {
        bytes32 id = _request(seller, UtilityMarket.Role.Seller);
        _join(id, intruder);
        assertEq(_counterparty(id), intruder);
        _expectClosed(id, UtilityMarket.NegotiationState.Negotiating);
        _join(id, buyer);
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

        // Either party may post the other's signed offer; the signature speaks for the proposer.
        UtilityMarket.Offer memory second = _offer(id, buyer, 2, firstHash);
        _send(seller, second, _sign(buyerKey, _offerHash(second)));

        (,,, uint32 lastRound,, bytes32 lastOffer) = market.negotiations(id);
        assertEq(lastRound, 2);
        assertEq(lastOffer, _offerHash(second));
        _assertState(id, UtilityMarket.NegotiationState.Negotiating);
    }

    function test_postOffer_revertsWhenSentByOutsider() public {
        // Only the parties extend their transcript: an outsider relaying a genuine signed offer
        // could otherwise pin the transcript the agreement must end with.
        bytes32 id = _negotiating();
        UtilityMarket.Offer memory offer = _offer(id, seller, 1, bytes32(0));
        bytes memory signature = _sign(sellerKey, _offerHash(offer));
        _expectNotAParty(id, stranger);
        _send(stranger, offer, signature);
        _expectNotAParty(id, intruder);
        _send(intruder, offer, signature);
        assertEq(_lastOffer(id), bytes32(0));
    }

    function test_postOffer_revertsBeforeJoin() public {
        bytes32 id = _request(seller, UtilityMarket.Role.Seller, buyer);
        UtilityMarket.Offer memory offer = _offer(id, seller, 1, bytes32(0));
        bytes memory signature = _sign(sellerKey, _offerHash(offer));
        // Even between the requester and its invitee: the invitee has not joined yet.
        _expectClosed(id, UtilityMarket.NegotiationState.Requested);
        _send(seller, offer, signature);
    }

    function test_postOffer_revertsWhenSellerIsNotRequester() public {
        bytes32 id = _negotiating();
        UtilityMarket.Offer memory offer = _offer(id, buyer, 1, bytes32(0));
        offer.seller = intruder;
        bytes memory signature = _sign(buyerKey, _offerHash(offer));
        _expectNotAParty(id, intruder);
        _send(buyer, offer, signature);
    }

    function test_postOffer_revertsWhenBuyerIsNotCounterparty() public {
        bytes32 id = _negotiating();
        UtilityMarket.Offer memory offer = _offer(id, seller, 1, bytes32(0));
        offer.buyer = intruder;
        bytes memory signature = _sign(sellerKey, _offerHash(offer));
        _expectNotAParty(id, intruder);
        _send(seller, offer, signature);
    }

    function test_postOffer_revertsWhenProposerIsNotAParty() public {
        bytes32 id = _negotiating();
        UtilityMarket.Offer memory offer = _offer(id, intruder, 1, bytes32(0));
        bytes memory signature = _sign(intruderKey, _offerHash(offer));
        // Sent by a party, so the error names the proposer, not the sender.
        _expectNotAParty(id, intruder);
        _send(seller, offer, signature);
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
        _send(seller, swapped, signature);
    }

    function test_postOffer_revertsOnUnknownPrevious() public {
        bytes32 id = _negotiating();
        bytes32 bogus = keccak256("bogus");
        UtilityMarket.Offer memory offer = _offer(id, seller, 1, bogus);
        bytes memory signature = _sign(sellerKey, _offerHash(offer));
        vm.expectRevert(
            abi.encodeWithSelector(UtilityMarket.UtilityMarketOfferOutOfOrder.selector, id, bytes32(0), bogus)
        );
        _send(seller, offer, signature);
    }

    function test_postOffer_revertsWhenRoundGoesBack() public {
        bytes32 id = _negotiating();
        (, bytes32 second) = _twoRounds(id);
        UtilityMarket.Offer memory offer = _offer(id, seller, 1, second);
        bytes memory signature = _sign(sellerKey, _offerHash(offer));
        vm.expectRevert(abi.encodeWithSelector(UtilityMarket.UtilityMarketRoundWentBack.selector, id, 1, 2));
        _send(seller, offer, signature);
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
        _send(seller, offer, signature);
        vm.expectRevert(
            abi.encodeWithSelector(
                UtilityMarket.UtilityMarketOfferOutOfOrder.selector, id, _offerHash(offer), bytes32(0)
            )
        );
        _send(seller, offer, signature);
    }

    function test_postOffer_revertsOnOtherPartysSignature() public {
        bytes32 id = _negotiating();
        UtilityMarket.Offer memory offer = _offer(id, seller, 1, bytes32(0));
        bytes memory signature = _sign(buyerKey, _offerHash(offer));
        vm.expectRevert(abi.encodeWithSelector(UtilityMarket.UtilityMarketInvalidSignature.selector, seller, buyer));
        _send(buyer, offer, signature);
    }

    function test_postOffer_revertsOnMalformedSignature() public {
        bytes32 id = _negotiating();
        UtilityMarket.Offer memory offer = _offer(id, seller, 1, bytes32(0));
        (bytes32 r, bytes32 vs) = vm.signCompact(sellerKey, _digest(_offerHash(offer)));
        // Recovers to no one; the error still names whose signature was expected.
        vm.expectRevert(
            abi.encodeWithSelector(UtilityMarket.UtilityMarketInvalidSignature.selector, seller, address(0))
        );
        _send(seller, offer, abi.encodePacked(r, vs));
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

    function test_breakOff_byInviteeBeforeJoin() public {
        // The invitee holds the counterparty's seat from the request on, so it may decline.
        bytes32 id = _request(seller, UtilityMarket.Role.Seller, buyer);
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

    function test_breakOff_revertsForUninvitedBeforeJoin() public {
        bytes32 id = _request(seller, UtilityMarket.Role.Seller, buyer);
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
        _send(seller, offer, signature);

        _expectOpenReverts(
            _agreementFor(id, last, 1), sellerKey, buyerKey, _closed(id, UtilityMarket.NegotiationState.BrokenOff)
        );
    }

    // ------------------------------------------------- openAgreement ↔ negotiation

    function test_openAgreement_concludesNegotiationOnLastOffer() public {
        bytes32 id = _negotiating();
        (, bytes32 last) = _twoRounds(id);
        bytes32 agreementId = _conclude(id, last);
        (bool open,,,) = market.agreementState(agreementId);
        assertTrue(open);
    }

    function test_openAgreement_revertsOnEarlierOfferAsTranscript() public {
        bytes32 id = _negotiating();
        (bytes32 first, bytes32 last) = _twoRounds(id);
        _expectOpenReverts(
            _agreementFor(id, first, 1),
            sellerKey,
            buyerKey,
            abi.encodeWithSelector(UtilityMarket.UtilityMarketTranscriptMismatch.selector, id, last, first)
        );
    }

    function test_openAgreement_concludesRequestedNegotiationWithoutOffers() public {
        // Nothing was posted, so there is no transcript on chain to hold the agreement to.
        bytes32 id = _request(seller, UtilityMarket.Role.Seller);
        _conclude(id, keccak256("off-chain transcript"));
    }

    function test_openAgreement_concludesInvitationWithoutJoin() public {
        // The invitee negotiated off chain and signs straight away: joining is not required.
        bytes32 id = _request(seller, UtilityMarket.Role.Seller, buyer);
        _conclude(id, keccak256("off-chain transcript"));
    }

    function test_openAgreement_revertsForOtherThanInviteeOnRequest() public {
        // Before anyone joined, the invitation already fixes the other side of the agreement.
        bytes32 id = _request(seller, UtilityMarket.Role.Seller, buyer);
        UtilityMarket.Agreement memory terms = _agreementFor(id, bytes32(0), 1);
        terms.buyer = intruder;
        _expectOpenReverts(terms, sellerKey, intruderKey, _notAParty(id, intruder));
    }

    function test_openAgreement_revertsWhenRequesterTakesOtherRole() public {
        bytes32 id = _request(seller, UtilityMarket.Role.Seller);
        UtilityMarket.Agreement memory terms = _agreementFor(id, bytes32(0), 1);
        (terms.seller, terms.buyer) = (buyer, seller);
        _expectOpenReverts(terms, buyerKey, sellerKey, _notAParty(id, buyer));
    }

    function test_openAgreement_revertsForCounterpartyOutsideNegotiation() public {
        bytes32 id = _negotiating();
        (, bytes32 last) = _twoRounds(id);
        // The seller signs with someone other than the joined buyer under this negotiation's id.
        UtilityMarket.Agreement memory terms = _agreementFor(id, last, 1);
        terms.buyer = intruder;
        _expectOpenReverts(terms, sellerKey, intruderKey, _notAParty(id, intruder));
    }

    function test_openAgreement_revertsOnSecondAgreementOfNegotiation() public {
        bytes32 id = _negotiating();
        (, bytes32 last) = _twoRounds(id);
        _open(_agreementFor(id, last, 1));
        _expectOpenReverts(
            _agreementFor(id, last, 2), sellerKey, buyerKey, _closed(id, UtilityMarket.NegotiationState.Agreed)
        );
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
