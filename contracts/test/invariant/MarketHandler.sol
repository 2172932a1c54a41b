// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

import {Math} from "@openzeppelin/contracts/utils/math/Math.sol";
import {CommonBase} from "forge-std/Base.sol";
import {StdCheats} from "forge-std/StdCheats.sol";
import {StdUtils} from "forge-std/StdUtils.sol";
import {Vm} from "forge-std/Vm.sol";
import {UtilityMarket} from "../../src/UtilityMarket.sol";

/// What the invariant fuzzer calls: bounded, well-formed market actions between four prosumers
/// (each with one meter) and the provider, interleaved with time warps, tariff and sale-limit
/// changes, reports during a pause, and abuse attempts. Beside driving the market it keeps an
/// independent model of every agreement (its terms, whether it is open, which meters reported and
/// their figures) and of every token movement, which the invariants compare with the contract.
/// The fuzzer runs without fail_on_revert, so a revert here would go unnoticed: every market call
/// goes through _call, which counts the outcomes the model did not predict instead.
contract MarketHandler is CommonBase, StdCheats, StdUtils {
    uint256 public constant PROSUMERS = 4;
    /// 1000 units of the utility, in milli-units.
    uint256 private constant MAX_QUANTITY = 1_000_000;
    /// 100 tokens per unit, in base units per milli-unit: with MAX_QUANTITY, at most 1e23 per escrow.
    uint256 private constant MAX_PRICE = 1e17;
    uint256 private constant MAX_BATCH = 5;
    uint64 private constant SIGNATURE_TTL = 10 minutes;
    uint256 private constant ABUSE_KINDS = 11;
    /// Sale limits the operator sets: up to three sales of the largest escrow (MAX_QUANTITY at
    /// MAX_PRICE), so that runs both fill them and stay below them.
    uint256 private constant MAX_SALE_LIMIT = 3 * MAX_QUANTITY * MAX_PRICE;

    /// The model of one opened agreement.
    struct Record {
        UtilityMarket.Agreement terms;
        bytes32 id;
        bool withProvider;
        /// A sale to the provider, which has no meter: the seller's meter confirms delivery, and
        /// the escrow counts against the seller's sale limit while open.
        bool providerBuys;
        bool open;
        /// Whether each side's meter has reported (0 included), and its figure.
        bool buyerReported;
        bool sellerReported;
        uint256 buyerDelivered;
        uint256 sellerDelivered;
        /// AgreementSettled events the market emitted for this agreement.
        uint256 settleCount;
        /// Sums of what the AgreementSettled events for this agreement reported.
        uint256 paid;
        uint256 refunded;
    }

    UtilityMarket public immutable market;
    address public immutable provider;
    address private immutable operator;

    address[PROSUMERS] public prosumers;
    address[PROSUMERS] public meters;
    uint256[PROSUMERS] private prosumerKeys;
    uint256[PROSUMERS] private meterKeys;

    mapping(address signer => uint256) private lastNonce;
    uint64 private reportSeq;
    /// The sale limit the model has the operator set; the market starts with none.
    uint256 public saleLimit = type(uint256).max;

    Record[] private records;
    mapping(bytes32 agreementId => uint256) private indexPlusOne;

    /// Tokens the model says left or reached each account through the market.
    mapping(address account => uint256) public debited;
    mapping(address account => uint256) public credited;

    /// Calls the model said must revert but succeeded.
    uint256 public unexpectedSuccesses;
    /// Well-formed calls the model said must succeed but reverted; the last one's revert data.
    uint256 public unexpectedReverts;
    bytes public lastUnexpectedRevert;
    /// Successful settlements whose events disagreed with the model: a batch skipping other
    /// entries than those the model found closed, or an AgreementSettled for an unknown id.
    uint256 public eventMismatches;

    /// Call summary.
    uint256 public openedCount;
    uint256 public providerTradeCount;
    uint256 public reportCount;
    uint256 public settledCount;
    uint256 public skippedCount;
    uint256 public pausedReportCount;
    uint256 public batchCount;
    uint256 public abuseCount;
    uint256 public warpCount;

    constructor(UtilityMarket market_, address operator_) {
        market = market_;
        provider = market_.provider();
        operator = operator_;
        for (uint256 i = 0; i < PROSUMERS; ++i) {
            string memory suffix = vm.toString(i);
            (prosumers[i], prosumerKeys[i]) = makeAddrAndKey(string.concat("prosumer", suffix));
            (meters[i], meterKeys[i]) = makeAddrAndKey(string.concat("meter", suffix));
        }
    }

    // ------------------------------------------------------------------ actions

    /// Opens an agreement between two distinct prosumers; a window that has already ended must be refused.
    function openAgreement(
        uint256 sellerSeed,
        uint256 buyerSeed,
        uint256 quantitySeed,
        uint256 priceSeed,
        uint256 startSeed,
        uint256 lengthSeed
    ) external {
        (uint256 s, uint256 b) = _pair(sellerSeed, buyerSeed);
        (uint64 start, uint64 end) = _window(startSeed, lengthSeed);
        UtilityMarket.Agreement memory terms = _freshTerms(s, b, quantitySeed, priceSeed, start, end);
        _open(terms, prosumerKeys[b], end > block.timestamp);
    }

    /// A meter of one party reports a cumulative figure that may be stale, beyond the quantity,
    /// or measured before the window has started; a side's first figure may be 0.
    function reportDelivery(uint256 agreementSeed, uint256 sideSeed, uint256 figureSeed, uint256 timeSeed) external {
        if (_reportDelivery(agreementSeed, sideSeed, figureSeed, timeSeed)) ++reportCount;
    }

    /// The operator pauses the market; a report goes through all the same (deliveries go on),
    /// while settling any open agreement, even a settleable one, is refused. Then it unpauses,
    /// so the other actions always meet a running market.
    function reportWhilePaused(uint256 agreementSeed, uint256 sideSeed, uint256 figureSeed, uint256 timeSeed) external {
        _call(operator, abi.encodeCall(market.pause, ()), true);
        if (_reportDelivery(agreementSeed, sideSeed, figureSeed, timeSeed)) ++pausedReportCount;
        (bool found, uint256 i) = _pick(agreementSeed, _isOpen);
        if (found) _settleOne(i, false);
        _call(operator, abi.encodeCall(market.unpause, ()), true);
    }

    /// Settles one open agreement, which must be refused until its receiving side's meter
    /// confirmed full delivery or its grace period is over.
    function settle(uint256 agreementSeed) external {
        (bool found, uint256 i) = _pick(agreementSeed, _isOpen);
        if (found) _settleOne(i, _settleable(records[i]));
    }

    /// Settles up to MAX_BATCH settleable agreements at once, possibly naming the first of them
    /// twice and an agreement settled earlier: both must be skipped, not fail the batch.
    function settleBatch(uint256 seed, uint256 sizeSeed, bool duplicate, bool withSettled) external {
        uint256[] memory indices = _settleableIndices(seed, _bound(sizeSeed, 1, MAX_BATCH));
        if (indices.length == 0) return;
        if (duplicate) indices = _append(indices, indices[0]);
        (bool anySettled, uint256 settled) = _pick(seed, _isSettled);
        if (withSettled && anySettled) indices = _append(indices, settled);
        if (_settle(abi.encodeCall(market.settleBatch, (_termsAt(indices))), indices, true)) ++batchCount;
    }

    /// The operator sets a sale limit, sometimes lifting it, sometimes below what is already
    /// open (open sales stay open).
    function setProviderSaleLimit(uint256 limitSeed) external {
        uint256 limit = limitSeed % 4 == 0 ? type(uint256).max : _bound(limitSeed, 0, MAX_SALE_LIMIT);
        if (_call(operator, abi.encodeCall(market.setProviderSaleLimit, (limit)), true)) saleLimit = limit;
    }

    /// A prosumer buys from or sells to the provider at the current tariff. A window that has
    /// already started must be refused, and so must a sale beyond the seller's sale limit.
    function tradeWithProvider(
        uint256 prosumerSeed,
        bool buying,
        uint256 quantitySeed,
        uint256 startSeed,
        uint256 lengthSeed
    ) external {
        uint256 tariff = buying ? market.providerSellsAt() : market.providerBuysAt();
        (uint64 start, uint64 end) = _window(startSeed, lengthSeed);
        bool notStarted = start >= block.timestamp;
        _tradeWithProvider(prosumerSeed % PROSUMERS, buying, quantitySeed, start, end, tariff, notStarted);
    }

    /// The operator changes the tariffs; open provider trades keep theirs.
    function setTariffs(uint256 sellsSeed, uint256 buysSeed) external {
        _call(
            operator,
            abi.encodeCall(market.setTariffs, (_bound(sellsSeed, 0, MAX_PRICE), _bound(buysSeed, 0, MAX_PRICE))),
            true
        );
    }

    /// Up to eight hours pass: windows (at most six hours) end and grace periods run out.
    function warp(uint256 secondsSeed) external {
        vm.warp(block.timestamp + _bound(secondsSeed, 1, 8 hours));
        ++warpCount;
    }

    /// One of the attempts the market must refuse, chosen by `kind`. They share one entry point so
    /// that abuse takes one share of the fuzzer's calls rather than one per kind.
    function abuse(uint256 kind, uint256 seed, uint256 aux) external {
        ++abuseCount;
        kind %= ABUSE_KINDS;
        if (kind == 0) _replayOpen(seed);
        else if (kind == 1) _reuseNonce(seed, aux);
        else if (kind == 2) _forgeSignature(seed, aux);
        else if (kind == 3) _settleTwice(seed);
        else if (kind == 4) _reportAfterSettlement(seed, aux);
        else if (kind == 5) _reportFromOutsider(seed, aux);
        else if (kind == 6) _tradeBeyondLimit(seed, aux);
        else if (kind == 7) _settleDirtyTerms(seed, aux);
        else if (kind == 8) _saleBeyondSaleLimit(seed);
        else if (kind == 9) _batchWithPending(seed, aux);
        else _settleOnSellersMeterAlone(seed, aux);
    }

    // ------------------------------------------------------------------ abuse

    /// The very same signed terms a second time: the nonces are spent (and the id taken while open).
    function _replayOpen(uint256 seed) private {
        (bool found, uint256 i) = _pick(seed, _isBetweenProsumers);
        if (!found) return;
        UtilityMarket.Agreement memory terms = records[i].terms;
        _open(terms, prosumerKeys[_indexOf(terms.buyer)], false);
    }

    /// New terms under a seller nonce an opened agreement already spent.
    function _reuseNonce(uint256 seed, uint256 quantitySeed) private {
        (bool found, uint256 i) = _pick(seed, _isBetweenProsumers);
        if (!found) return;
        UtilityMarket.Agreement memory spent = records[i].terms;
        uint256 b = _indexOf(spent.buyer);
        UtilityMarket.Agreement memory terms = _freshTerms(
            _indexOf(spent.seller), b, quantitySeed, spent.unitPrice, uint64(block.timestamp), _hourAhead()
        );
        terms.sellerNonce = spent.sellerNonce;
        _open(terms, prosumerKeys[b], false);
    }

    /// Valid terms whose buyer signature was made with the seller's key.
    function _forgeSignature(uint256 pairSeed, uint256 quantitySeed) private {
        (uint256 s, uint256 b) = _pair(pairSeed, pairSeed >> 128);
        UtilityMarket.Agreement memory terms =
            _freshTerms(s, b, quantitySeed, quantitySeed >> 128, uint64(block.timestamp), _hourAhead());
        _open(terms, prosumerKeys[s], false);
    }

    function _settleTwice(uint256 seed) private {
        (bool found, uint256 i) = _pick(seed, _isSettled);
        if (found) _settleOne(i, false);
    }

    /// A full-delivery report once the agreement is settled: it would change nothing paid.
    function _reportAfterSettlement(uint256 seed, uint256 sideSeed) private {
        (bool found, uint256 i) = _pick(seed, _isSettled);
        if (!found) return;
        Record storage r = records[i];
        _report(r, _meteredParty(r, sideSeed), r.terms.quantity, _measuredAt(r, sideSeed), false);
    }

    /// A full-delivery report from the meter of a prosumer who is not a party to the agreement.
    function _reportFromOutsider(uint256 seed, uint256 timeSeed) private {
        (bool found, uint256 i) = _pick(seed, _isOpen);
        if (!found) return;
        Record storage r = records[i];
        uint256 outsider = 0;
        while (prosumers[outsider] == r.terms.seller || prosumers[outsider] == r.terms.buyer) {
            ++outsider;
        }
        _report(r, prosumers[outsider], r.terms.quantity, _measuredAt(r, timeSeed), false);
    }

    /// A provider trade whose limit the tariff is just beyond.
    function _tradeBeyondLimit(uint256 prosumerSeed, uint256 quantitySeed) private {
        bool buying = prosumerSeed & 1 == 0;
        uint256 tariff = buying ? market.providerSellsAt() : market.providerBuysAt();
        // No limit lies below a zero selling tariff.
        if (buying && tariff == 0) return;
        uint256 limit = buying ? tariff - 1 : tariff + 1;
        _tradeWithProvider(
            (prosumerSeed >> 1) % PROSUMERS, buying, quantitySeed, uint64(block.timestamp), _hourAhead(), limit, false
        );
    }

    /// A sale to the provider just large enough to take the seller's open sale escrow past the
    /// limit, when one milli-unit up to MAX_QUANTITY can.
    function _saleBeyondSaleLimit(uint256 prosumerSeed) private {
        uint256 p = prosumerSeed % PROSUMERS;
        uint256 tariff = market.providerBuysAt();
        uint256 open = _openSaleEscrow(prosumers[p]);
        if (tariff == 0 || saleLimit == type(uint256).max) return;
        uint256 quantity = open > saleLimit ? 1 : (saleLimit - open) / tariff + 1;
        if (quantity > MAX_QUANTITY) return;
        _tradeWithProvider(p, false, quantity, uint64(block.timestamp), _hourAhead(), tariff, false);
    }

    /// A batch holding an open agreement not yet settleable, after up to MAX_BATCH - 1 settleable
    /// ones: skipping is only for closed agreements, so the whole batch must fail.
    function _batchWithPending(uint256 seed, uint256 sizeSeed) private {
        (bool found, uint256 pending) = _pick(seed, _isPending);
        if (!found) return;
        uint256[] memory indices = _append(_settleableIndices(seed, _bound(sizeSeed, 0, MAX_BATCH - 1)), pending);
        _settle(abi.encodeCall(market.settleBatch, (_termsAt(indices))), indices, false);
    }

    /// The seller's meter reports the whole quantity of an agreement between prosumers on which
    /// the buyer's meter is silent, and settlement is tried at once: only the buyer's meter can
    /// confirm early, so it must be refused until the grace period is over. Random reports
    /// rarely make this case, hence the direct attempt.
    function _settleOnSellersMeterAlone(uint256 seed, uint256 timeSeed) private {
        (bool found, uint256 i) = _pick(seed, _isUnconfirmedBetweenProsumers);
        if (!found) return;
        Record storage r = records[i];
        _reportFigure(r, r.terms.seller, r.terms.quantity, timeSeed);
        _settleOne(i, _settleable(r));
    }

    /// Settles a settleable agreement with dirty high bits in one address or uint64 word of the
    /// calldata terms: the market hashes calldata words as they come, so such terms must not pass
    /// for the agreement.
    function _settleDirtyTerms(uint256 seed, uint256 fieldSeed) private {
        (bool found, uint256 i) = _pick(seed, _isSettleable);
        if (!found) return;
        // Words of seller, buyer, deliveryStart, deliveryEnd, sellerDeadline, buyerDeadline.
        uint8[6] memory narrowFields = [1, 2, 5, 6, 9, 11];
        bytes memory data = abi.encodeCall(market.settle, (records[i].terms));
        // The terms are static, so they follow the selector directly; set the top byte of the word.
        data[4 + 32 * uint256(narrowFields[fieldSeed % narrowFields.length])] = 0x01;
        _settle(data, _single(i), false);
    }

    // ------------------------------------------------------------------ market calls

    /// Calls the market as `caller` and counts an outcome that differs from the expected one.
    function _call(address caller, bytes memory data, bool expectSuccess) private returns (bool ok) {
        bytes memory returned;
        vm.prank(caller);
        (ok, returned) = address(market).call(data);
        if (ok && !expectSuccess) ++unexpectedSuccesses;
        if (!ok && expectSuccess) {
            ++unexpectedReverts;
            lastUnexpectedRevert = returned;
        }
    }

    /// Opens `terms` signed by the seller and by `buyerKey` (the buyer's, unless forging), relayed
    /// by the handler, and records it if the market accepted it.
    function _open(UtilityMarket.Agreement memory terms, uint256 buyerKey, bool expectSuccess) private {
        bytes32 id = market.agreementIdOf(terms);
        bytes memory data = abi.encodeCall(
            market.openAgreement, (terms, _sign(prosumerKeys[_indexOf(terms.seller)], id), _sign(buyerKey, id))
        );
        if (!_call(address(this), data, expectSuccess)) return;
        _record(terms, id, false, false);
        ++openedCount;
    }

    function _tradeWithProvider(
        uint256 p,
        bool buying,
        uint256 quantitySeed,
        uint64 start,
        uint64 end,
        uint256 limitPrice,
        bool expectSuccess
    ) private {
        uint256 quantity = _bound(quantitySeed, 1, MAX_QUANTITY);
        UtilityMarket.Role role = buying ? UtilityMarket.Role.Buyer : UtilityMarket.Role.Seller;
        bytes memory data = abi.encodeCall(market.tradeWithProvider, (role, quantity, start, end, limitPrice));
        // A sale must also leave the seller's open sale escrow within the limit.
        if (!buying && _openSaleEscrow(prosumers[p]) + quantity * market.providerBuysAt() > saleLimit) {
            expectSuccess = false;
        }
        vm.recordLogs();
        bool ok = _call(prosumers[p], data, expectSuccess);
        Vm.Log[] memory logs = vm.getRecordedLogs();
        if (!ok) return;
        // The fields the market picks itself (nonces, deadlines) come from its AgreementOpened event;
        // the rest are the model's. Had the market changed any of those, the model would know an id
        // the market never opened, which invariant 3 catches.
        UtilityMarket.Agreement memory terms = _openedTerms(logs);
        terms.seller = buying ? provider : prosumers[p];
        terms.buyer = buying ? prosumers[p] : provider;
        terms.quantity = quantity;
        terms.unitPrice = buying ? market.providerSellsAt() : market.providerBuysAt();
        terms.deliveryStart = start;
        terms.deliveryEnd = end;
        _record(terms, market.agreementIdOf(terms), true, !buying);
        ++providerTradeCount;
    }

    /// The terms of the AgreementOpened event among `logs`.
    function _openedTerms(Vm.Log[] memory logs) private view returns (UtilityMarket.Agreement memory terms) {
        for (uint256 k = 0; k < logs.length; ++k) {
            if (logs[k].emitter == address(market) && logs[k].topics[0] == UtilityMarket.AgreementOpened.selector) {
                return abi.decode(logs[k].data, (UtilityMarket.Agreement));
            }
        }
    }

    /// A meter of one party of an open agreement reports a figure around its side's last one.
    /// Returns whether the report went through.
    function _reportDelivery(uint256 agreementSeed, uint256 sideSeed, uint256 figureSeed, uint256 timeSeed)
        private
        returns (bool)
    {
        (bool found, uint256 i) = _pick(agreementSeed, _isOpen);
        if (!found) return false;
        Record storage r = records[i];
        address party = _meteredParty(r, sideSeed);
        uint256 recorded = party == r.terms.seller ? r.sellerDelivered : r.buyerDelivered;
        return _reportFigure(r, party, _bound(figureSeed, recorded / 2, recorded + r.terms.quantity / 2 + 1), timeSeed);
    }

    /// `party`'s meter reports `figure`, which the market must accept if measured by now and
    /// either the side's first figure (0 included) or above its last; the model then records it.
    function _reportFigure(Record storage r, address party, uint256 figure, uint256 timeSeed) private returns (bool) {
        bool sellerSide = party == r.terms.seller;
        bool reported = sellerSide ? r.sellerReported : r.buyerReported;
        uint256 recorded = sellerSide ? r.sellerDelivered : r.buyerDelivered;
        uint256 counted = Math.min(figure, r.terms.quantity);
        uint64 measuredAt = _measuredAt(r, timeSeed);
        bool counts = !reported || counted > recorded;
        if (!_report(r, party, figure, measuredAt, measuredAt <= block.timestamp && counts)) return false;
        if (sellerSide) (r.sellerReported, r.sellerDelivered) = (true, counted);
        else (r.buyerReported, r.buyerDelivered) = (true, counted);
        return true;
    }

    /// Posts a report of `figure` measured at `measuredAt`, signed by `party`'s meter.
    function _report(Record storage r, address party, uint256 figure, uint64 measuredAt, bool expectSuccess)
        private
        returns (bool)
    {
        UtilityMarket.DeliveryReport memory report = UtilityMarket.DeliveryReport({
            agreementId: r.id, delivered: figure, measuredAt: measuredAt, seq: ++reportSeq
        });
        bytes32 structHash = keccak256(abi.encode(market.DELIVERY_REPORT_TYPEHASH(), report));
        bytes memory signature = _sign(meterKeys[_indexOf(party)], structHash);
        return _call(address(this), abi.encodeCall(market.reportDelivery, (r.terms, report, signature)), expectSuccess);
    }

    function _settleOne(uint256 i, bool expectSuccess) private {
        _settle(abi.encodeCall(market.settle, (records[i].terms)), _single(i), expectSuccess);
    }

    function _single(uint256 i) private pure returns (uint256[] memory indices) {
        indices = new uint256[](1);
        indices[0] = i;
    }

    /// `indices` with `i` appended.
    function _append(uint256[] memory indices, uint256 i) private pure returns (uint256[] memory longer) {
        longer = new uint256[](indices.length + 1);
        for (uint256 k = 0; k < indices.length; ++k) {
            longer[k] = indices[k];
        }
        longer[indices.length] = i;
    }

    /// Indices of up to `want` settleable records, from `seed` on (wrapping around).
    function _settleableIndices(uint256 seed, uint256 want) private view returns (uint256[] memory indices) {
        uint256 n = records.length;
        indices = new uint256[](want);
        uint256 found;
        for (uint256 k = 0; k < n && found < want; ++k) {
            uint256 i = (seed % n + k) % n;
            if (_isSettleable(records[i])) indices[found++] = i;
        }
        // Trim to the entries filled; the array only shrinks.
        assembly ("memory-safe") {
            mstore(indices, found)
        }
    }

    function _termsAt(uint256[] memory indices) private view returns (UtilityMarket.Agreement[] memory batch) {
        batch = new UtilityMarket.Agreement[](indices.length);
        for (uint256 k = 0; k < indices.length; ++k) {
            batch[k] = records[indices[k]].terms;
        }
    }

    /// Sends a settle or settleBatch call naming the records at `indices`. If it went through, the
    /// model walks the entries in order as the market does: it settles each record still open and
    /// expects a SettlementSkipped for each one already closed (settled earlier, or earlier in
    /// the same batch). The AgreementSettled events are counted and their amounts kept apart per
    /// record, for the invariants to check against the model.
    function _settle(bytes memory data, uint256[] memory indices, bool expectSuccess) private returns (bool ok) {
        vm.recordLogs();
        ok = _call(address(this), data, expectSuccess);
        Vm.Log[] memory logs = vm.getRecordedLogs();
        if (!ok) return false;
        uint256 expectedSkips;
        for (uint256 k = 0; k < indices.length; ++k) {
            Record storage r = records[indices[k]];
            if (!r.open) {
                ++expectedSkips;
                continue;
            }
            uint256 delivered = _payable(r);
            r.open = false;
            credited[r.terms.seller] += delivered * r.terms.unitPrice;
            credited[r.terms.buyer] += (r.terms.quantity - delivered) * r.terms.unitPrice;
            ++settledCount;
        }
        uint256 skips;
        for (uint256 k = 0; k < logs.length; ++k) {
            Vm.Log memory log = logs[k];
            if (log.emitter != address(market)) continue;
            if (log.topics[0] == UtilityMarket.SettlementSkipped.selector) {
                ++skips;
                continue;
            }
            if (log.topics[0] != UtilityMarket.AgreementSettled.selector) continue;
            uint256 index = indexPlusOne[log.topics[1]];
            // Counted rather than indexed blindly: a revert here would hide the mismatch.
            if (index == 0) {
                ++eventMismatches;
                continue;
            }
            (, uint256 paid, uint256 refunded) = abi.decode(log.data, (uint256, uint256, uint256));
            Record storage r = records[index - 1];
            ++r.settleCount;
            r.paid += paid;
            r.refunded += refunded;
        }
        if (skips != expectedSkips) ++eventMismatches;
        skippedCount += skips;
    }

    function _record(UtilityMarket.Agreement memory terms, bytes32 id, bool withProvider, bool providerBuys) private {
        Record storage r = records.push();
        r.terms = terms;
        r.id = id;
        r.withProvider = withProvider;
        r.providerBuys = providerBuys;
        r.open = true;
        indexPlusOne[id] = records.length;
        debited[terms.buyer] += terms.quantity * terms.unitPrice;
    }

    // ------------------------------------------------------------------ inputs

    /// Two distinct prosumers.
    function _pair(uint256 sellerSeed, uint256 buyerSeed) private pure returns (uint256 s, uint256 b) {
        s = sellerSeed % PROSUMERS;
        b = (s + 1 + buyerSeed % (PROSUMERS - 1)) % PROSUMERS;
    }

    /// A window starting between an hour ago and two hours ahead, one second to six hours long:
    /// some have already ended, which opening must refuse, and some have started, which a
    /// provider trade must refuse.
    function _window(uint256 startSeed, uint256 lengthSeed) private view returns (uint64 start, uint64 end) {
        start = uint64(block.timestamp - 1 hours + _bound(startSeed, 0, 3 hours));
        end = start + uint64(_bound(lengthSeed, 1, 6 hours));
    }

    function _hourAhead() private view returns (uint64) {
        return uint64(block.timestamp + 1 hours);
    }

    /// Terms between prosumers `s` and `b` under fresh nonces of both.
    function _freshTerms(uint256 s, uint256 b, uint256 quantitySeed, uint256 priceSeed, uint64 start, uint64 end)
        private
        returns (UtilityMarket.Agreement memory)
    {
        address seller = prosumers[s];
        address buyer = prosumers[b];
        uint256 sellerNonce = ++lastNonce[seller];
        return UtilityMarket.Agreement({
            negotiationId: keccak256(abi.encode(seller, sellerNonce)),
            seller: seller,
            buyer: buyer,
            quantity: _bound(quantitySeed, 1, MAX_QUANTITY),
            unitPrice: _bound(priceSeed, 0, MAX_PRICE),
            deliveryStart: start,
            deliveryEnd: end,
            transcriptHash: keccak256("transcript"),
            sellerNonce: sellerNonce,
            sellerDeadline: uint64(block.timestamp) + SIGNATURE_TTL,
            buyerNonce: ++lastNonce[buyer],
            buyerDeadline: uint64(block.timestamp) + SIGNATURE_TTL
        });
    }

    /// A party with a meter: the provider has none here, so a provider trade is always measured
    /// on the prosumer's side.
    function _meteredParty(Record storage r, uint256 sideSeed) private view returns (address party) {
        party = sideSeed & 1 == 0 ? r.terms.seller : r.terms.buyer;
        if (party == provider) party = party == r.terms.seller ? r.terms.buyer : r.terms.seller;
    }

    /// A measurement time inside the window and not in the future when there is one; otherwise
    /// the window's start, still ahead, which the market must refuse.
    function _measuredAt(Record storage r, uint256 seed) private view returns (uint64) {
        uint256 start = r.terms.deliveryStart;
        uint256 latest = Math.min(r.terms.deliveryEnd, block.timestamp);
        return uint64(_bound(seed, start, Math.max(start, latest)));
    }

    /// The first record from `seed` on (wrapping around) that `accept` takes.
    function _pick(uint256 seed, function(Record storage) view returns (bool) accept)
        private
        view
        returns (bool found, uint256 index)
    {
        uint256 n = records.length;
        for (uint256 k = 0; k < n; ++k) {
            index = (seed % n + k) % n;
            if (accept(records[index])) return (true, index);
        }
    }

    function _isOpen(Record storage r) private view returns (bool) {
        return r.open;
    }

    function _isSettled(Record storage r) private view returns (bool) {
        return !r.open;
    }

    function _isSettleable(Record storage r) private view returns (bool) {
        return r.open && _settleable(r);
    }

    function _isPending(Record storage r) private view returns (bool) {
        return r.open && !_settleable(r);
    }

    function _isUnconfirmedBetweenProsumers(Record storage r) private view returns (bool) {
        return r.open && !r.withProvider && !r.buyerReported;
    }

    function _isBetweenProsumers(Record storage r) private view returns (bool) {
        return !r.withProvider;
    }

    function _indexOf(address prosumer) private view returns (uint256 i) {
        while (prosumers[i] != prosumer) {
            ++i;
        }
    }

    function _sign(uint256 key, bytes32 structHash) private view returns (bytes memory) {
        bytes32 digest = keccak256(abi.encodePacked("\x19\x01", market.domainSeparator(), structHash));
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(key, digest);
        return abi.encodePacked(r, s, v);
    }

    // ------------------------------------------------------------------ model

    /// What settlement should pay for: the lower figure where both meters reported, else the
    /// figure of the one that did, else nothing.
    function _payable(Record storage r) private view returns (uint256) {
        if (!r.buyerReported) return r.sellerDelivered;
        if (!r.sellerReported) return r.buyerDelivered;
        return Math.min(r.buyerDelivered, r.sellerDelivered);
    }

    /// Settleable once the grace period is over, or before it once everything is payable and the
    /// receiving side's meter (the seller's in a sale to the provider, else the buyer's) reported.
    function _settleable(Record storage r) private view returns (bool) {
        bool confirmed = r.providerBuys ? r.sellerReported : r.buyerReported;
        return
            (confirmed && _payable(r) == r.terms.quantity)
                || block.timestamp >= r.terms.deliveryEnd + market.gracePeriod();
    }

    /// The escrow of `prosumer`'s open sales to the provider, summed over the records.
    function _openSaleEscrow(address prosumer) private view returns (uint256 escrow) {
        for (uint256 i = 0; i < records.length; ++i) {
            Record storage r = records[i];
            if (r.open && r.providerBuys && r.terms.seller == prosumer) escrow += r.terms.quantity * r.terms.unitPrice;
        }
    }

    // ------------------------------------------------------------------ views for the invariants

    function recordCount() external view returns (uint256) {
        return records.length;
    }

    function record(uint256 i) external view returns (Record memory) {
        return records[i];
    }

    /// The model's payable delivery of record `i`.
    function modelPayable(uint256 i) external view returns (uint256) {
        return _payable(records[i]);
    }
}
