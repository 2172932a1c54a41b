// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {Pausable} from "@openzeppelin/contracts/utils/Pausable.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";

/// @title UtilityMarket
/// @notice The market of one utility of the park (biogas, electricity or heat): the seed paper's
/// UtilityNegotiator. It keeps the registry of prosumers and their meters, records the negotiation
/// life cycle (request, will to negotiate, offers, break-off), opens supply agreements signed by
/// both parties with the buyer's tokens in escrow, takes metered delivery reports, and settles:
/// the seller is paid for what was delivered and the buyer gets the rest back. Trades with the
/// main provider at its tariffs go through the same agreements.
/// @dev Units: quantities are milli-units of the utility, prices token base units per milli-unit,
/// so escrow = quantity * unitPrice (see core/units.ts). The EIP-712 types are those of
/// core/messages/eip712.ts. An agreement's terms are not stored: its id is their EIP-712 struct
/// hash and callers pass the terms back, so opening one writes a single storage slot.
contract UtilityMarket is EIP712, AccessControl, Pausable, ReentrancyGuardTransient {
    using SafeERC20 for IERC20;

    /// @notice Role of the park operator: registry, provider, tariffs, pause.
    bytes32 public constant OPERATOR_ROLE = keccak256("OPERATOR_ROLE");
    /// @notice Most agreements one settleBatch call takes, so the loop stays well inside a block.
    uint256 public constant MAX_BATCH = 100;
    /// @notice Longest a provider trade may run from now: a sale to the provider escrows the
    /// provider's tokens on the prosumer's word, so it must not lock them for long.
    uint64 public constant MAX_PROVIDER_TRADE_WINDOW = 7 days;

    bytes32 public constant OFFER_TYPEHASH = keccak256(
        "Offer(bytes32 negotiationId,address seller,address buyer,address proposer,uint32 round,uint256 quantity,uint256 unitPrice,bytes32 previous)"
    );
    bytes32 public constant AGREEMENT_TYPEHASH = keccak256(
        "Agreement(bytes32 negotiationId,address seller,address buyer,uint256 quantity,uint256 unitPrice,uint64 deliveryStart,uint64 deliveryEnd,bytes32 transcriptHash,uint256 sellerNonce,uint64 sellerDeadline,uint256 buyerNonce,uint64 buyerDeadline)"
    );
    bytes32 public constant DELIVERY_REPORT_TYPEHASH =
        keccak256("DeliveryReport(bytes32 agreementId,uint256 delivered,uint64 measuredAt,uint64 seq)");
    bytes32 public constant PROVIDER_ORDER_TYPEHASH = keccak256(
        "ProviderOrder(address prosumer,uint8 role,uint256 quantity,uint64 deliveryStart,uint64 deliveryEnd,uint256 limitPrice,uint256 nonce,uint64 deadline)"
    );

    /// @notice A signed offer of the off-chain negotiation (EIP-712 "Offer").
    struct Offer {
        bytes32 negotiationId;
        address seller;
        address buyer;
        address proposer;
        uint32 round;
        uint256 quantity;
        uint256 unitPrice;
        bytes32 previous;
    }

    /// @notice The terms of a supply agreement (EIP-712 "Agreement"), signed by seller and buyer.
    struct Agreement {
        bytes32 negotiationId;
        address seller;
        address buyer;
        uint256 quantity;
        uint256 unitPrice;
        uint64 deliveryStart;
        uint64 deliveryEnd;
        bytes32 transcriptHash;
        uint256 sellerNonce;
        uint64 sellerDeadline;
        uint256 buyerNonce;
        uint64 buyerDeadline;
    }

    /// @notice A meter's cumulative delivery figure for one agreement (EIP-712 "DeliveryReport").
    struct DeliveryReport {
        bytes32 agreementId;
        uint256 delivered;
        uint64 measuredAt;
        uint64 seq;
    }

    enum Role {
        Seller,
        Buyer
    }

    /// @notice A prosumer's signed order to trade with the main provider (EIP-712
    /// "ProviderOrder", role as uint8), for anyone (the gateway) to place with
    /// tradeWithProviderFor, so an edge agent trades without a transaction or gas of its own.
    struct ProviderOrder {
        address prosumer;
        Role role;
        uint256 quantity;
        uint64 deliveryStart;
        uint64 deliveryEnd;
        uint256 limitPrice;
        uint256 nonce;
        uint64 deadline;
    }

    enum NegotiationState {
        None,
        Requested,
        Negotiating,
        Agreed,
        BrokenOff
    }

    struct Negotiation {
        address requester;
        Role requesterRole;
        NegotiationState state;
        uint32 lastRound;
        address counterparty;
        /// Struct hash of the last offer posted on chain: the transcript so far.
        bytes32 lastOffer;
    }

    /// One slot per open agreement, cleared when it settles (the gas refund keeps settlement cheap;
    /// the AgreementSettled event is the record). Clearing cannot let it reopen: both signers'
    /// nonces are spent, and a provider trade's signature deadlines are 0, long past. Delivered
    /// figures are cumulative, per side, capped at the quantity; a side has reported once its
    /// meter sent any figure, 0 included.
    struct AgreementState {
        bool open;
        /// A sale to the provider, which has no meter here: the seller's meter confirms delivery.
        bool providerBuys;
        bool buyerReported;
        bool sellerReported;
        uint96 buyerDelivered;
        uint96 sellerDelivered;
    }

    /// @notice The token escrowed and paid.
    IERC20 public immutable token;
    /// @notice Seconds after a provision window's end during which late reports are awaited
    /// before an incompletely delivered agreement can settle.
    uint64 public immutable gracePeriod;
    /// @notice The utility this market trades, as core names it ("biogas", "electricity", "heat").
    string public utility;
    /// @notice Its unit ("m3", "kWh"); quantities are thousandths of it.
    string public unit;
    /// @notice The main provider's wallet.
    address public provider;
    /// @notice Price at which the provider sells to prosumers, base units per milli-unit.
    uint256 public providerSellsAt;
    /// @notice Price at which the provider buys from prosumers, base units per milli-unit.
    uint256 public providerBuysAt;
    /// @notice Counter that makes each provider trade's agreement unique.
    uint256 public providerTradeNonce;
    /// @notice Most a prosumer may have in escrow, open at once, from sales to the provider: those
    /// escrow the provider's tokens and are confirmed by the prosumer's own meter alone.
    uint256 public providerSaleLimit = type(uint256).max;
    /// @notice Provider tokens in escrow for each prosumer's open sales to the provider.
    mapping(address prosumer => uint256) public providerSaleEscrow;

    /// @notice Whether an account is a registered prosumer.
    mapping(address account => bool) public isProsumer;
    /// @notice The prosumer a meter's signing key belongs to (zero if none).
    mapping(address meter => address prosumer) public meterOwner;
    /// @notice Revoked meter keys, which can never be registered again: a report signed before
    /// revocation must not count for a new owner.
    mapping(address meter => bool) public isRevokedMeter;
    /// @notice Negotiations recorded on chain, by id.
    mapping(bytes32 id => Negotiation) public negotiations;
    mapping(bytes32 agreementId => AgreementState) private _agreements;
    mapping(address signer => mapping(uint256 word => uint256 bits)) private _nonceBitmap;

    event ProsumerRegistered(address indexed account);
    event ProsumerDeregistered(address indexed account);
    event MeterRegistered(address indexed meter, address indexed prosumer);
    event MeterRevoked(address indexed meter, address indexed prosumer);
    event ProviderChanged(address indexed provider);
    event TariffsChanged(uint256 providerSellsAt, uint256 providerBuysAt);
    event NegotiationRequested(
        bytes32 indexed negotiationId, address indexed requester, Role role, uint256 quantity, address invitee
    );
    event NegotiationJoined(bytes32 indexed negotiationId, address indexed counterparty);
    event OfferPosted(
        bytes32 indexed negotiationId,
        address indexed proposer,
        uint32 round,
        uint256 quantity,
        uint256 unitPrice,
        bytes32 offerHash
    );
    event NegotiationBrokenOff(bytes32 indexed negotiationId, address indexed by);
    event NegotiationConcluded(bytes32 indexed negotiationId, bytes32 indexed agreementId);
    event ProviderSaleLimitChanged(uint256 limit);
    event SettlementSkipped(bytes32 indexed agreementId);
    event NonceInvalidated(address indexed signer, uint256 nonce);
    /// @dev Carries every term, so an indexer can rebuild the calldata that reports and settles.
    event AgreementOpened(bytes32 indexed agreementId, address indexed seller, address indexed buyer, Agreement terms);
    event ProviderTradeOpened(bytes32 indexed agreementId, address indexed prosumer, Role prosumerRole);
    event DeliveryReported(
        bytes32 indexed agreementId, address indexed meter, Role side, uint256 delivered, uint64 measuredAt, uint64 seq
    );
    event AgreementSettled(bytes32 indexed agreementId, uint256 delivered, uint256 paidToSeller, uint256 refundedToBuyer);

    error UtilityMarketZeroAddress();
    error UtilityMarketPriceTooLarge(uint256 price);
    error UtilityMarketNotProsumer(address account);
    error UtilityMarketAlreadyProsumer(address account);
    error UtilityMarketMeterTaken(address meter, address prosumer);
    error UtilityMarketUnknownMeter(address meter);
    error UtilityMarketMeterWasRevoked(address meter);
    error UtilityMarketNotInvited(bytes32 negotiationId, address account);
    error UtilityMarketProviderSaleLimit(address prosumer, uint256 escrow, uint256 limit);
    error UtilityMarketNegotiationExists(bytes32 negotiationId);
    error UtilityMarketNegotiationClosed(bytes32 negotiationId, NegotiationState state);
    error UtilityMarketNotAParty(bytes32 negotiationId, address account);
    error UtilityMarketOfferOutOfOrder(bytes32 negotiationId, bytes32 expectedPrevious, bytes32 previous);
    error UtilityMarketRoundWentBack(bytes32 negotiationId, uint32 round, uint32 lastRound);
    error UtilityMarketTranscriptMismatch(bytes32 negotiationId, bytes32 expected, bytes32 transcriptHash);
    error UtilityMarketInvalidSignature(address expected, address recovered);
    error UtilityMarketSignatureExpired(address signer, uint64 deadline);
    error UtilityMarketNonceUsed(address signer, uint256 nonce);
    error UtilityMarketSelfTrade(address account);
    error UtilityMarketInvalidQuantity(uint256 quantity);
    error UtilityMarketInvalidWindow(uint64 deliveryStart, uint64 deliveryEnd);
    error UtilityMarketAgreementExists(bytes32 agreementId);
    error UtilityMarketAgreementNotOpen(bytes32 agreementId);
    error UtilityMarketReportMismatch(bytes32 agreementId, bytes32 reportAgreementId);
    error UtilityMarketMeasuredOutsideWindow(bytes32 agreementId, uint64 measuredAt);
    error UtilityMarketMeterNotAParty(bytes32 agreementId, address meter);
    error UtilityMarketBadReportSignature(bytes32 agreementId);
    error UtilityMarketStaleReport(bytes32 agreementId, uint256 delivered, uint256 recorded);
    error UtilityMarketSettlementTooEarly(bytes32 agreementId, uint256 settleableAt);
    error UtilityMarketBatchSize(uint256 size);
    error UtilityMarketTariffBeyondLimit(uint256 tariff, uint256 limit);

    modifier onlyProsumer() {
        if (!isProsumer[msg.sender]) revert UtilityMarketNotProsumer(msg.sender);
        _;
    }

    /// @param token_ The UtilityToken.
    /// @param utility_ Utility name as core names it; part of every negotiation id.
    /// @param unit_ Unit of the utility.
    /// @param admin Receives DEFAULT_ADMIN_ROLE and OPERATOR_ROLE.
    /// @param provider_ The main provider's wallet.
    /// @param sellsAt Provider's selling tariff, base units per milli-unit.
    /// @param buysAt Provider's buying tariff, base units per milli-unit.
    /// @param gracePeriod_ Seconds to await late reports after a provision window.
    constructor(
        IERC20 token_,
        string memory utility_,
        string memory unit_,
        address admin,
        address provider_,
        uint256 sellsAt,
        uint256 buysAt,
        uint64 gracePeriod_
    ) EIP712("EIP Utility Market", "1") {
        if (address(token_) == address(0) || admin == address(0) || provider_ == address(0)) {
            revert UtilityMarketZeroAddress();
        }
        token = token_;
        utility = utility_;
        unit = unit_;
        gracePeriod = gracePeriod_;
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(OPERATOR_ROLE, admin);
        _setProvider(provider_);
        _setTariffs(sellsAt, buysAt);
    }

    // ------------------------------------------------------------------ operator

    /// @notice Admits `account` as a prosumer of this utility.
    /// @param account The prosumer's wallet, which signs its offers and agreements.
    function registerProsumer(address account) external onlyRole(OPERATOR_ROLE) {
        if (account == address(0)) revert UtilityMarketZeroAddress();
        if (isProsumer[account]) revert UtilityMarketAlreadyProsumer(account);
        isProsumer[account] = true;
        emit ProsumerRegistered(account);
    }

    /// @notice Removes a prosumer: it can no longer negotiate or open agreements. Its open
    /// agreements still report and settle.
    /// @param account The prosumer's wallet.
    function deregisterProsumer(address account) external onlyRole(OPERATOR_ROLE) {
        if (!isProsumer[account]) revert UtilityMarketNotProsumer(account);
        isProsumer[account] = false;
        emit ProsumerDeregistered(account);
    }

    /// @notice Registers the signing key of one of a prosumer's meters.
    /// @param prosumer The registered prosumer owning the meter.
    /// @param meter Address of the meter's signing key.
    function registerMeter(address prosumer, address meter) external onlyRole(OPERATOR_ROLE) {
        if (meter == address(0)) revert UtilityMarketZeroAddress();
        if (!isProsumer[prosumer]) revert UtilityMarketNotProsumer(prosumer);
        if (isRevokedMeter[meter]) revert UtilityMarketMeterWasRevoked(meter);
        address owner = meterOwner[meter];
        if (owner != address(0)) revert UtilityMarketMeterTaken(meter, owner);
        meterOwner[meter] = prosumer;
        emit MeterRegistered(meter, prosumer);
    }

    /// @notice Revokes a meter key for good (replaced or compromised meter): its reports are
    /// refused and it cannot be registered again.
    /// @param meter Address of the meter's signing key.
    function revokeMeter(address meter) external onlyRole(OPERATOR_ROLE) {
        address owner = meterOwner[meter];
        if (owner == address(0)) revert UtilityMarketUnknownMeter(meter);
        delete meterOwner[meter];
        isRevokedMeter[meter] = true;
        emit MeterRevoked(meter, owner);
    }

    /// @notice Changes the provider's wallet; open provider trades keep the old one.
    /// @param provider_ The new wallet.
    function setProvider(address provider_) external onlyRole(OPERATOR_ROLE) {
        if (provider_ == address(0)) revert UtilityMarketZeroAddress();
        _setProvider(provider_);
    }

    /// @notice Changes the provider's tariffs for future provider trades.
    /// @param sellsAt Provider's selling tariff, base units per milli-unit.
    /// @param buysAt Provider's buying tariff, base units per milli-unit.
    function setTariffs(uint256 sellsAt, uint256 buysAt) external onlyRole(OPERATOR_ROLE) {
        _setTariffs(sellsAt, buysAt);
    }

    /// @notice Caps what one prosumer may have in escrow from open sales to the provider.
    /// @param limit Token base units; open sales above it stay open.
    function setProviderSaleLimit(uint256 limit) external onlyRole(OPERATOR_ROLE) {
        providerSaleLimit = limit;
        emit ProviderSaleLimitChanged(limit);
    }

    /// @notice Stops negotiation, new agreements, provider trades and settlement until unpaused.
    /// Meter reports are still recorded, so a pause never costs a seller the deliveries made
    /// meanwhile; the registry (revokeMeter for a compromised key) and tariffs stay manageable.
    function pause() external onlyRole(OPERATOR_ROLE) {
        _pause();
    }

    /// @notice Resumes after pause.
    function unpause() external onlyRole(OPERATOR_ROLE) {
        _unpause();
    }

    // --------------------------------------------------------------- negotiation

    /// @notice Records a request to negotiate (the seed's first instance of the contract).
    /// @param nonce Any number the requester has not used; the id is
    /// keccak256(abi.encode(requester, utility, nonce)), as core's negotiationId() derives it.
    /// @param role Whether the requester sells or buys.
    /// @param quantity Milli-units the requester wants to sell or buy.
    /// @param invitee The only prosumer who may join, or zero to let any prosumer join.
    /// @return negotiationId The new negotiation's id.
    function requestNegotiation(uint256 nonce, Role role, uint256 quantity, address invitee)
        external
        whenNotPaused
        onlyProsumer
        returns (bytes32 negotiationId)
    {
        if (quantity == 0 || quantity > type(uint96).max) revert UtilityMarketInvalidQuantity(quantity);
        negotiationId = keccak256(abi.encode(msg.sender, utility, nonce));
        Negotiation storage n = negotiations[negotiationId];
        if (n.state != NegotiationState.None) revert UtilityMarketNegotiationExists(negotiationId);
        if (invitee == msg.sender) revert UtilityMarketSelfTrade(msg.sender);
        if (invitee != address(0) && !isProsumer[invitee]) revert UtilityMarketNotProsumer(invitee);
        n.requester = msg.sender;
        n.requesterRole = role;
        n.state = NegotiationState.Requested;
        n.counterparty = invitee;
        emit NegotiationRequested(negotiationId, msg.sender, role, quantity, invitee);
    }

    /// @notice Records the caller's will to negotiate on a requested negotiation: the invitee's,
    /// or, on an open request, the first prosumer's to answer.
    /// @param negotiationId The requested negotiation.
    function joinNegotiation(bytes32 negotiationId) external whenNotPaused onlyProsumer {
        Negotiation storage n = negotiations[negotiationId];
        if (n.state != NegotiationState.Requested) revert UtilityMarketNegotiationClosed(negotiationId, n.state);
        if (n.requester == msg.sender) revert UtilityMarketSelfTrade(msg.sender);
        address invitee = n.counterparty;
        if (invitee != address(0) && invitee != msg.sender) revert UtilityMarketNotInvited(negotiationId, msg.sender);
        n.counterparty = msg.sender;
        n.state = NegotiationState.Negotiating;
        emit NegotiationJoined(negotiationId, msg.sender);
    }

    /// @notice Posts one signed offer of a negotiation recorded on chain. Offers must follow each
    /// other (each names the previous one's hash, and its round is never below the previous
    /// one's: in a round the opener moves, then the responder), so the chain holds the transcript.
    /// Only the two parties post, so no one else can extend their transcript.
    /// @param offer The offer, signed by its proposer.
    /// @param signature The proposer's EIP-712 signature.
    function postOffer(Offer calldata offer, bytes calldata signature) external whenNotPaused {
        Negotiation storage n = negotiations[offer.negotiationId];
        if (n.state != NegotiationState.Negotiating) {
            revert UtilityMarketNegotiationClosed(offer.negotiationId, n.state);
        }
        _checkParties(offer.negotiationId, n, offer.seller, offer.buyer);
        if (offer.proposer != offer.seller && offer.proposer != offer.buyer) {
            revert UtilityMarketNotAParty(offer.negotiationId, offer.proposer);
        }
        if (msg.sender != offer.seller && msg.sender != offer.buyer) {
            revert UtilityMarketNotAParty(offer.negotiationId, msg.sender);
        }
        if (offer.previous != n.lastOffer) {
            revert UtilityMarketOfferOutOfOrder(offer.negotiationId, n.lastOffer, offer.previous);
        }
        if (offer.round < n.lastRound) revert UtilityMarketRoundWentBack(offer.negotiationId, offer.round, n.lastRound);
        bytes32 offerHash = _offerHash(offer);
        _checkSignature(offerHash, signature, offer.proposer);
        n.lastOffer = offerHash;
        n.lastRound = offer.round;
        emit OfferPosted(offer.negotiationId, offer.proposer, offer.round, offer.quantity, offer.unitPrice, offerHash);
    }

    /// @notice Ends a negotiation without agreement. Either party may call it.
    /// @param negotiationId The negotiation.
    function breakOff(bytes32 negotiationId) external whenNotPaused {
        Negotiation storage n = negotiations[negotiationId];
        if (n.state != NegotiationState.Requested && n.state != NegotiationState.Negotiating) {
            revert UtilityMarketNegotiationClosed(negotiationId, n.state);
        }
        if (msg.sender != n.requester && msg.sender != n.counterparty) {
            revert UtilityMarketNotAParty(negotiationId, msg.sender);
        }
        n.state = NegotiationState.BrokenOff;
        emit NegotiationBrokenOff(negotiationId, msg.sender);
    }

    /// @notice Burns one of the caller's signing nonces, withdrawing any agreement signed with it
    /// that has not been opened yet.
    /// @param nonce The nonce.
    function invalidateNonce(uint256 nonce) external {
        _useNonce(msg.sender, nonce);
        emit NonceInvalidated(msg.sender, nonce);
    }

    // ---------------------------------------------------------------- agreements

    /// @notice Opens a supply agreement signed by both parties and escrows quantity * unitPrice of
    /// the buyer's tokens (the buyer must have approved this market). Anyone may relay it.
    /// @dev If the negotiation was recorded on chain, the parties must match it, the transcript
    /// must end with its last posted offer, and it becomes Agreed.
    /// @param terms The agreement.
    /// @param sellerSignature The seller's EIP-712 signature of `terms`.
    /// @param buyerSignature The buyer's EIP-712 signature of `terms`.
    /// @return agreementId The EIP-712 struct hash of `terms`.
    function openAgreement(Agreement calldata terms, bytes calldata sellerSignature, bytes calldata buyerSignature)
        external
        nonReentrant
        whenNotPaused
        returns (bytes32 agreementId)
    {
        if (!isProsumer[terms.seller]) revert UtilityMarketNotProsumer(terms.seller);
        if (!isProsumer[terms.buyer]) revert UtilityMarketNotProsumer(terms.buyer);
        if (terms.sellerDeadline < block.timestamp) {
            revert UtilityMarketSignatureExpired(terms.seller, terms.sellerDeadline);
        }
        if (terms.buyerDeadline < block.timestamp) {
            revert UtilityMarketSignatureExpired(terms.buyer, terms.buyerDeadline);
        }
        agreementId = agreementIdOf(terms);
        _checkSignature(agreementId, sellerSignature, terms.seller);
        _checkSignature(agreementId, buyerSignature, terms.buyer);
        _useNonce(terms.seller, terms.sellerNonce);
        _useNonce(terms.buyer, terms.buyerNonce);

        Negotiation storage n = negotiations[terms.negotiationId];
        if (n.state != NegotiationState.None) _concludeNegotiation(terms, n, agreementId);

        _open(agreementId, terms, false);
    }

    /// @notice Buys from or sells to the main provider at its current tariff. The trade is an
    /// agreement like any other: escrowed, metered and settled by delivery. Its window starts now
    /// at the earliest and ends within MAX_PROVIDER_TRADE_WINDOW. When the prosumer sells, the
    /// provider's tokens are escrowed (the provider must have approved this market), the
    /// prosumer's meter confirms the delivery, and the prosumer's open sales may escrow at most
    /// providerSaleLimit.
    /// @param prosumerRole Buyer to buy from the provider, Seller to sell to it.
    /// @param quantity Milli-units.
    /// @param deliveryStart Start of the provision window, unix seconds.
    /// @param deliveryEnd End of the provision window, unix seconds.
    /// @param limitPrice Highest tariff accepted when buying, lowest when selling, guarding
    /// against a tariff change between signing and mining.
    /// @return agreementId The agreement's id; its terms are in the AgreementOpened event.
    function tradeWithProvider(
        Role prosumerRole,
        uint256 quantity,
        uint64 deliveryStart,
        uint64 deliveryEnd,
        uint256 limitPrice
    ) external nonReentrant whenNotPaused onlyProsumer returns (bytes32 agreementId) {
        return _tradeWithProvider(msg.sender, prosumerRole, quantity, deliveryStart, deliveryEnd, limitPrice);
    }

    /// @notice Places a prosumer's signed order with the main provider, as if it had called
    /// tradeWithProvider itself. Anyone may relay it. The order's nonce comes from the same
    /// space as its agreement nonces and is spent; an order whose window has begun by the time
    /// it is mined starts now.
    /// @param order The order.
    /// @param signature The prosumer's EIP-712 signature of `order`.
    /// @return agreementId The agreement's id; its terms are in the AgreementOpened event.
    function tradeWithProviderFor(ProviderOrder calldata order, bytes calldata signature)
        external
        nonReentrant
        whenNotPaused
        returns (bytes32 agreementId)
    {
        if (!isProsumer[order.prosumer]) revert UtilityMarketNotProsumer(order.prosumer);
        if (order.deadline < block.timestamp) revert UtilityMarketSignatureExpired(order.prosumer, order.deadline);
        _checkSignature(keccak256(abi.encode(PROVIDER_ORDER_TYPEHASH, order)), signature, order.prosumer);
        _useNonce(order.prosumer, order.nonce);
        // forge-lint: disable-next-line(unsafe-typecast) block timestamps fit 64 bits for ages
        uint64 start = order.deliveryStart < block.timestamp ? uint64(block.timestamp) : order.deliveryStart;
        return _tradeWithProvider(order.prosumer, order.role, order.quantity, start, order.deliveryEnd, order.limitPrice);
    }

    function _tradeWithProvider(
        address prosumer,
        Role prosumerRole,
        uint256 quantity,
        uint64 deliveryStart,
        uint64 deliveryEnd,
        uint256 limitPrice
    ) private returns (bytes32 agreementId) {
        address provider_ = provider;
        bool buying = prosumerRole == Role.Buyer;
        uint256 tariff = buying ? providerSellsAt : providerBuysAt;
        if (buying ? tariff > limitPrice : tariff < limitPrice) {
            revert UtilityMarketTariffBeyondLimit(tariff, limitPrice);
        }
        // The window starts now at the earliest: deliveries are measured as they happen.
        if (deliveryStart < block.timestamp || deliveryEnd > block.timestamp + MAX_PROVIDER_TRADE_WINDOW) {
            revert UtilityMarketInvalidWindow(deliveryStart, deliveryEnd);
        }
        uint256 nonce = ++providerTradeNonce;
        // Deadlines 0: no one signed these terms, and openAgreement can never accept them.
        Agreement memory terms = Agreement({
            negotiationId: bytes32(0),
            seller: buying ? provider_ : prosumer,
            buyer: buying ? prosumer : provider_,
            quantity: quantity,
            unitPrice: tariff,
            deliveryStart: deliveryStart,
            deliveryEnd: deliveryEnd,
            transcriptHash: bytes32(0),
            sellerNonce: nonce,
            sellerDeadline: 0,
            buyerNonce: nonce,
            buyerDeadline: 0
        });
        agreementId = keccak256(abi.encode(AGREEMENT_TYPEHASH, terms));
        _open(agreementId, terms, !buying);
        emit ProviderTradeOpened(agreementId, prosumer, prosumerRole);
    }

    /// @notice Records a meter's cumulative delivery for an open agreement. The report must be
    /// signed by a registered meter of the buyer or of the seller and measured inside the
    /// provision window. Anyone may relay it (the gateway does), also while the market is paused.
    /// Figures above the quantity count as the quantity. A side's first figure may be 0; after
    /// it, a figure not above the one recorded for that side is refused, which also makes every
    /// earlier report unreplayable (so `seq` need not be stored).
    /// @param terms The agreement's terms.
    /// @param report The meter's report.
    /// @param signature The meter key's EIP-712 signature of `report`.
    function reportDelivery(Agreement calldata terms, DeliveryReport calldata report, bytes calldata signature)
        external
    {
        bytes32 agreementId = agreementIdOf(terms);
        if (report.agreementId != agreementId) revert UtilityMarketReportMismatch(agreementId, report.agreementId);
        if (
            report.measuredAt < terms.deliveryStart || report.measuredAt > terms.deliveryEnd
                || report.measuredAt > block.timestamp
        ) {
            revert UtilityMarketMeasuredOutsideWindow(agreementId, report.measuredAt);
        }
        address meter = _recover(_reportHash(report), signature);
        if (meter == address(0)) revert UtilityMarketBadReportSignature(agreementId);
        // forge-lint: disable-next-line(unsafe-typecast) capped at quantity < 2^96 (see _open)
        uint96 delivered = uint96(report.delivered < terms.quantity ? report.delivered : terms.quantity);
        Role side = _recordDelivery(agreementId, terms, meter, delivered);
        emit DeliveryReported(agreementId, meter, side, delivered, report.measuredAt, report.seq);
    }

    /// Records `delivered` for the side `meter` belongs to; returns that side.
    function _recordDelivery(bytes32 agreementId, Agreement calldata terms, address meter, uint96 delivered)
        private
        returns (Role side)
    {
        AgreementState memory state = _agreements[agreementId];
        if (!state.open) revert UtilityMarketAgreementNotOpen(agreementId);
        address owner = meterOwner[meter];
        if (owner == address(0)) revert UtilityMarketUnknownMeter(meter);
        bool reported;
        uint96 recorded;
        if (owner == terms.buyer) {
            (side, reported, recorded) = (Role.Buyer, state.buyerReported, state.buyerDelivered);
            (state.buyerReported, state.buyerDelivered) = (true, delivered);
        } else if (owner == terms.seller) {
            (side, reported, recorded) = (Role.Seller, state.sellerReported, state.sellerDelivered);
            (state.sellerReported, state.sellerDelivered) = (true, delivered);
        } else {
            revert UtilityMarketMeterNotAParty(agreementId, meter);
        }
        if (reported && delivered <= recorded) revert UtilityMarketStaleReport(agreementId, delivered, recorded);
        _agreements[agreementId] = state;
    }

    /// @notice Settles an open agreement once the buyer's meter has confirmed full delivery (in
    /// a sale to the provider, the seller's), or once its window has ended and the grace period
    /// for late reports has passed. Delivered is the lower of the two sides' figures where both
    /// meters reported, else the one side's that did; the seller receives delivered * unitPrice
    /// and the buyer the rest of the escrow. No report at all means a full refund. Anyone may
    /// call it.
    /// @param terms The agreement's terms.
    function settle(Agreement calldata terms) external nonReentrant whenNotPaused {
        _settle(terms, false);
    }

    /// @notice Settles up to MAX_BATCH agreements in one transaction. One that is no longer open
    /// (someone settled it first) is skipped with SettlementSkipped; one not yet settleable
    /// reverts the whole batch.
    /// @param terms The agreements' terms.
    function settleBatch(Agreement[] calldata terms) external nonReentrant whenNotPaused {
        if (terms.length == 0 || terms.length > MAX_BATCH) revert UtilityMarketBatchSize(terms.length);
        for (uint256 i = 0; i < terms.length; ++i) {
            _settle(terms[i], true);
        }
    }

    // --------------------------------------------------------------------- views

    /// @notice An agreement's id: the EIP-712 struct hash of its terms (core's structHash).
    /// @param terms The agreement's terms.
    function agreementIdOf(Agreement calldata terms) public pure returns (bytes32) {
        uint256 offset;
        assembly ("memory-safe") {
            offset := terms
        }
        return _hashCalldataStruct(AGREEMENT_TYPEHASH, offset, 12 * 32);
    }

    /// @notice The state of an agreement.
    /// @param agreementId The agreement's id.
    /// @return open Whether it is open: false before it opens and after it settles.
    /// @return buyerDelivered Cumulative delivery reported by the buyer's meters, milli-units.
    /// @return sellerDelivered Cumulative delivery reported by the seller's meters, milli-units.
    /// @return payable_ The delivery settlement pays for.
    function agreementState(bytes32 agreementId)
        external
        view
        returns (bool open, uint256 buyerDelivered, uint256 sellerDelivered, uint256 payable_)
    {
        AgreementState memory state = _agreements[agreementId];
        return (state.open, state.buyerDelivered, state.sellerDelivered, _payableDelivered(state));
    }

    /// @notice Whether `signer` has used or invalidated `nonce`.
    /// @param signer The signer.
    /// @param nonce The nonce.
    function isNonceUsed(address signer, uint256 nonce) external view returns (bool) {
        return _nonceBitmap[signer][nonce >> 8] & (1 << (nonce & 0xff)) != 0;
    }

    /// @notice The EIP-712 domain separator signatures of this market are bound to.
    function domainSeparator() external view returns (bytes32) {
        return _domainSeparatorV4();
    }

    // ------------------------------------------------------------------ internals

    function _setProvider(address provider_) private {
        provider = provider_;
        emit ProviderChanged(provider_);
    }

    function _setTariffs(uint256 sellsAt, uint256 buysAt) private {
        if (sellsAt > type(uint128).max) revert UtilityMarketPriceTooLarge(sellsAt);
        if (buysAt > type(uint128).max) revert UtilityMarketPriceTooLarge(buysAt);
        providerSellsAt = sellsAt;
        providerBuysAt = buysAt;
        emit TariffsChanged(sellsAt, buysAt);
    }

    /// Validates terms, stores the agreement as open and escrows from its buyer (checks, effects,
    /// then the token call).
    function _open(bytes32 agreementId, Agreement memory terms, bool providerBuys) private {
        if (terms.seller == terms.buyer) revert UtilityMarketSelfTrade(terms.seller);
        if (terms.quantity == 0 || terms.quantity > type(uint96).max) {
            revert UtilityMarketInvalidQuantity(terms.quantity);
        }
        if (terms.unitPrice > type(uint128).max) revert UtilityMarketPriceTooLarge(terms.unitPrice);
        if (terms.deliveryStart >= terms.deliveryEnd || terms.deliveryEnd <= block.timestamp) {
            revert UtilityMarketInvalidWindow(terms.deliveryStart, terms.deliveryEnd);
        }
        AgreementState storage state = _agreements[agreementId];
        if (state.open) revert UtilityMarketAgreementExists(agreementId);
        state.open = true;
        state.providerBuys = providerBuys;
        emit AgreementOpened(agreementId, terms.seller, terms.buyer, terms);
        // Bounded above: quantity < 2^96 and unitPrice < 2^128, so no overflow.
        uint256 escrow = terms.quantity * terms.unitPrice;
        if (providerBuys) {
            uint256 open = providerSaleEscrow[terms.seller] + escrow;
            if (open > providerSaleLimit) revert UtilityMarketProviderSaleLimit(terms.seller, open, providerSaleLimit);
            providerSaleEscrow[terms.seller] = open;
        }
        if (escrow != 0) token.safeTransferFrom(terms.buyer, address(this), escrow);
    }

    function _concludeNegotiation(Agreement calldata terms, Negotiation storage n, bytes32 agreementId) private {
        if (n.state != NegotiationState.Requested && n.state != NegotiationState.Negotiating) {
            revert UtilityMarketNegotiationClosed(terms.negotiationId, n.state);
        }
        _checkParties(terms.negotiationId, n, terms.seller, terms.buyer);
        if (n.lastOffer != bytes32(0) && n.lastOffer != terms.transcriptHash) {
            revert UtilityMarketTranscriptMismatch(terms.negotiationId, n.lastOffer, terms.transcriptHash);
        }
        n.state = NegotiationState.Agreed;
        emit NegotiationConcluded(terms.negotiationId, agreementId);
    }

    /// The requester must hold its requested role; a joined counterparty must hold the other.
    function _checkParties(bytes32 negotiationId, Negotiation storage n, address seller, address buyer)
        private
        view
    {
        (address requesterSide, address otherSide) =
            n.requesterRole == Role.Seller ? (seller, buyer) : (buyer, seller);
        if (requesterSide != n.requester) revert UtilityMarketNotAParty(negotiationId, requesterSide);
        address counterparty = n.counterparty;
        if (counterparty != address(0) && otherSide != counterparty) {
            revert UtilityMarketNotAParty(negotiationId, otherSide);
        }
    }

    function _settle(Agreement calldata terms, bool skipClosed) private {
        bytes32 agreementId = agreementIdOf(terms);
        AgreementState memory state = _agreements[agreementId];
        if (!state.open) {
            if (!skipClosed) revert UtilityMarketAgreementNotOpen(agreementId);
            emit SettlementSkipped(agreementId);
            return;
        }
        uint256 delivered = _payableDelivered(state);
        // Early settlement needs the receiving side's meter to confirm everything arrived.
        bool confirmed = state.providerBuys ? state.sellerReported : state.buyerReported;
        if (!confirmed || delivered != terms.quantity) {
            uint256 settleableAt = uint256(terms.deliveryEnd) + gracePeriod;
            if (block.timestamp < settleableAt) revert UtilityMarketSettlementTooEarly(agreementId, settleableAt);
        }
        delete _agreements[agreementId];
        uint256 paid = delivered * terms.unitPrice;
        uint256 refunded = (terms.quantity - delivered) * terms.unitPrice;
        if (state.providerBuys) providerSaleEscrow[terms.seller] -= terms.quantity * terms.unitPrice;
        emit AgreementSettled(agreementId, delivered, paid, refunded);
        if (paid != 0) token.safeTransfer(terms.seller, paid);
        if (refunded != 0) token.safeTransfer(terms.buyer, refunded);
    }

    /// What settlement pays for: the lower of the two sides' figures where both meters reported
    /// (the buyer never pays for more than either side measured), else the figure of the side
    /// that reported. Each party's meter thus guards that party: a silent buyer's meter cannot
    /// deny the seller a delivery its own meter measured, and a buyer's meter caps a seller's.
    function _payableDelivered(AgreementState memory state) private pure returns (uint256) {
        if (!state.buyerReported) return state.sellerDelivered;
        if (!state.sellerReported) return state.buyerDelivered;
        return state.buyerDelivered < state.sellerDelivered ? state.buyerDelivered : state.sellerDelivered;
    }

    function _offerHash(Offer calldata offer) private pure returns (bytes32) {
        uint256 offset;
        assembly ("memory-safe") {
            offset := offer
        }
        return _hashCalldataStruct(OFFER_TYPEHASH, offset, 8 * 32);
    }

    function _reportHash(DeliveryReport calldata report) private pure returns (bytes32) {
        uint256 offset;
        assembly ("memory-safe") {
            offset := report
        }
        return _hashCalldataStruct(DELIVERY_REPORT_TYPEHASH, offset, 4 * 32);
    }

    /// EIP-712 hashStruct of a struct of static fields straight from calldata: keccak256 of the
    /// type hash and the fields' 32-byte words, which is what abi.encode would produce, without the
    /// copy through memory. A field with dirty high bits hashes to an id no agreement has, and the
    /// fields the contract reads are validated by the ABI decoder when read.
    function _hashCalldataStruct(bytes32 typeHash, uint256 offset, uint256 size) private pure returns (bytes32 hash) {
        assembly ("memory-safe") {
            let ptr := mload(0x40)
            mstore(ptr, typeHash)
            calldatacopy(add(ptr, 0x20), offset, size)
            hash := keccak256(ptr, add(size, 0x20))
        }
    }

    function _useNonce(address signer, uint256 nonce) private {
        mapping(uint256 => uint256) storage words = _nonceBitmap[signer];
        uint256 bit = 1 << (nonce & 0xff);
        uint256 bits = words[nonce >> 8];
        if (bits & bit != 0) revert UtilityMarketNonceUsed(signer, nonce);
        words[nonce >> 8] = bits | bit;
    }

    function _checkSignature(bytes32 structHash, bytes calldata signature, address expected) private view {
        address recovered = _recover(structHash, signature);
        if (recovered != expected) revert UtilityMarketInvalidSignature(expected, recovered);
    }

    /// Recovers the signer of a struct hash under this market's domain. Malformed and malleable
    /// (high-s) signatures recover to the zero address, which callers refuse naming whose
    /// signature it was.
    function _recover(bytes32 structHash, bytes calldata signature) private view returns (address) {
        (address recovered, ECDSA.RecoverError err,) =
            ECDSA.tryRecoverCalldata(_hashTypedDataV4(structHash), signature);
        return err == ECDSA.RecoverError.NoError ? recovered : address(0);
    }
}
