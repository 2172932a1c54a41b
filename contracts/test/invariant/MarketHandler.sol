// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

import {Math} from "@openzeppelin/contracts/utils/math/Math.sol";
import {CommonBase} from "forge-std/Base.sol";
import {StdCheats} from "forge-std/StdCheats.sol";
import {StdUtils} from "forge-std/StdUtils.sol";
import {Vm} from "forge-std/Vm.sol";
import {UtilityMarket} from "../../src/UtilityMarket.sol";

/// What the invariant fuzzer calls: bounded, well-formed market actions between four prosumers
/// (each with one meter) and the provider, interleaved with time warps, tariff changes and abuse
/// attempts. Beside driving the market it keeps an independent model of every agreement (its
/// terms, whether it is open and its delivered figures) and of every token movement, which the
/// invariants compare with the contract. The fuzzer runs without fail_on_revert, so a revert here would go
/// unnoticed: every market call goes through _call, which counts the outcomes the model did
/// not predict instead.
contract MarketHandler is CommonBase, StdCheats, StdUtils {
    uint256 public constant PROSUMERS = 4;
    /// 1000 units of the utility, in milli-units.
    uint256 private constant MAX_QUANTITY = 1_000_000;
    /// 100 tokens per unit, in base units per milli-unit: with MAX_QUANTITY, at most 1e23 per escrow.
    uint256 private constant MAX_PRICE = 1e17;
    uint256 private constant MAX_BATCH = 5;
    uint64 private constant SIGNATURE_TTL = 10 minutes;
    uint256 private constant ABUSE_KINDS = 8;

    /// The model of one opened agreement.
    struct Record {
        UtilityMarket.Agreement terms;
        bytes32 id;
        bool withProvider;
        /// A sale to the provider, where only the seller's meter counts.
        bool sellerMeterCounts;
        bool open;
        uint256 buyerDelivered;
        uint256 sellerDelivered;
        /// Successful settle calls that named this agreement.
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

    /// Call summary.
    uint256 public openedCount;
    uint256 public providerTradeCount;
    uint256 public reportCount;
    uint256 public settledCount;
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
    /// or measured before the window has started.
    function reportDelivery(uint256 agreementSeed, uint256 sideSeed, uint256 figureSeed, uint256 timeSeed) external {
        (bool found, uint256 i) = _pick(agreementSeed, _isOpen);
        if (!found) return;
        Record storage r = records[i];
        address party = _meteredParty(r, sideSeed);
        bool sellerSide = party == r.terms.seller;
        uint256 recorded = sellerSide ? r.sellerDelivered : r.buyerDelivered;
        uint256 figure = _bound(figureSeed, recorded / 2, recorded + r.terms.quantity / 2 + 1);
        uint256 counted = Math.min(figure, r.terms.quantity);
        uint64 measuredAt = _measuredAt(r, timeSeed);
        if (!_report(r, party, figure, measuredAt, measuredAt <= block.timestamp && counted > recorded)) return;
        if (sellerSide) r.sellerDelivered = counted;
        else r.buyerDelivered = counted;
        ++reportCount;
    }

    /// Settles one open agreement, which must be refused while it is neither fully delivered nor
    /// past its grace period.
    function settle(uint256 agreementSeed) external {
        (bool found, uint256 i) = _pick(agreementSeed, _isOpen);
        if (found) _settleOne(i, _settleable(records[i]));
    }

    /// Settles up to MAX_BATCH settleable agreements at once. A poisoned batch names its first
    /// agreement twice and must fail whole, since the second settle finds it settled.
    function settleBatch(uint256 seed, uint256 sizeSeed, bool poison) external {
        uint256 n = records.length;
        if (n == 0) return;
        uint256 want = _bound(sizeSeed, 1, MAX_BATCH);
        uint256[] memory indices = new uint256[](want + 1);
        uint256 found;
        for (uint256 k = 0; k < n && found < want; ++k) {
            uint256 i = (seed % n + k) % n;
            if (_isSettleable(records[i])) indices[found++] = i;
        }
        if (found == 0) return;
        if (poison) indices[found++] = indices[0];
        // Trim to the entries filled; the array only shrinks.
        assembly ("memory-safe") {
            mstore(indices, found)
        }
        UtilityMarket.Agreement[] memory batch = new UtilityMarket.Agreement[](found);
        for (uint256 k = 0; k < found; ++k) {
            batch[k] = records[indices[k]].terms;
        }
        if (_settle(abi.encodeCall(market.settleBatch, (batch)), indices, !poison)) ++batchCount;
    }

    /// A prosumer buys from or sells to the provider at the current tariff.
    function tradeWithProvider(
        uint256 prosumerSeed,
        bool buying,
        uint256 quantitySeed,
        uint256 startSeed,
        uint256 lengthSeed
    ) external {
        uint256 tariff = buying ? market.providerSellsAt() : market.providerBuysAt();
        (uint64 start, uint64 end) = _window(startSeed, lengthSeed);
        _tradeWithProvider(prosumerSeed % PROSUMERS, buying, quantitySeed, start, end, tariff, end > block.timestamp);
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
        else _settleDirtyTerms(seed, aux);
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

    /// Sends a settle or settleBatch call naming the records at `indices`. If it went through, the
    /// model settles each named record (so one named twice counts twice) and the amounts the
    /// AgreementSettled events claim are kept apart, for the invariants to check against the model.
    function _settle(bytes memory data, uint256[] memory indices, bool expectSuccess) private returns (bool ok) {
        vm.recordLogs();
        ok = _call(address(this), data, expectSuccess);
        Vm.Log[] memory logs = vm.getRecordedLogs();
        if (!ok) return false;
        for (uint256 k = 0; k < indices.length; ++k) {
            Record storage r = records[indices[k]];
            uint256 delivered = _payable(r);
            ++r.settleCount;
            r.open = false;
            credited[r.terms.seller] += delivered * r.terms.unitPrice;
            credited[r.terms.buyer] += (r.terms.quantity - delivered) * r.terms.unitPrice;
            ++settledCount;
        }
        for (uint256 k = 0; k < logs.length; ++k) {
            Vm.Log memory log = logs[k];
            if (log.emitter != address(market) || log.topics[0] != UtilityMarket.AgreementSettled.selector) continue;
            (, uint256 paid, uint256 refunded) = abi.decode(log.data, (uint256, uint256, uint256));
            Record storage r = records[indexPlusOne[log.topics[1]] - 1];
            r.paid += paid;
            r.refunded += refunded;
        }
    }

    function _record(UtilityMarket.Agreement memory terms, bytes32 id, bool withProvider, bool sellerMeterCounts)
        private
    {
        Record storage r = records.push();
        r.terms = terms;
        r.id = id;
        r.withProvider = withProvider;
        r.sellerMeterCounts = sellerMeterCounts;
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
    /// some have already ended, which opening must refuse.
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

    /// What settlement should pay for: the buyer's figure, capped by the seller's once the
    /// seller's meter has reported; in a sale to the provider, the seller's figure alone.
    function _payable(Record storage r) private view returns (uint256) {
        if (r.sellerMeterCounts) return r.sellerDelivered;
        if (r.sellerDelivered == 0) return r.buyerDelivered;
        return Math.min(r.buyerDelivered, r.sellerDelivered);
    }

    function _settleable(Record storage r) private view returns (bool) {
        return _payable(r) == r.terms.quantity || block.timestamp >= r.terms.deliveryEnd + market.gracePeriod();
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
