// The ledger's saved form: what survives a restart, in the state directory's JSON.
#include "ecu2mqtt/ledger/ecu_ledger.hpp"

#include <algorithm>
#include <string>

namespace ecu2mqtt {

namespace {

std::int64_t seconds_of(EcuLedger::TimePoint t) {
    return std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count();
}

LocalDateTime timestamp_from(const nlohmann::json& j) {
    const auto parsed = parse_compact_timestamp(j.get<std::string>());
    if (!parsed)
        throw nlohmann::json::type_error::create(302, "timestamp is not YYYYMMDDhhmmss", &j);
    return *parsed;
}

// Before a live re-send could advance a gap, the first one to come back ended it instead: its
// `before` came to lie before readings it still names as missing, those came back live and were
// kept without filling it, and every reply asked for the same re-send until the gap expired.
// Readings kept since are no longer missing; the rest is asked for from the last kept reading
// before it, up to the first kept after it.
void mend_gaps(EcuLedgerState& s) {
    const auto kept = [&s](const LocalDateTime& t) {
        return std::binary_search(
            s.kept.begin(), s.kept.end(), KeptReading{t, 0},
            [](const KeptReading& a, const KeptReading& b) { return a.timestamp < b.timestamp; });
    };
    for (auto it = s.gaps.begin(); it != s.gaps.end();) {
        LedgerGap& gap = *it;
        if (!gap.before || gap.missing.empty() || *gap.missing.rbegin() < *gap.before) {
            ++it;
            continue;
        }
        std::erase_if(gap.missing, kept);
        if (gap.missing.empty()) {
            it = s.gaps.erase(it);
            continue;
        }
        gap.before.reset();
        for (const auto& k : s.kept) {
            if (k.timestamp < *gap.missing.begin() && k.timestamp > gap.after)
                gap.after = k.timestamp;
            if (k.timestamp > *gap.missing.rbegin()) {
                gap.before = k.timestamp;
                break;
            }
        }
        ++it;
    }
}

} // namespace

nlohmann::json EcuLedger::to_json() const {
    return to_json(ecu_id_, state_);
}

nlohmann::json EcuLedger::to_json(const std::string& ecu_id, const EcuLedgerState& s,
                                  bool with_kept) {
    nlohmann::json j{{"ecu_id", ecu_id},
                     {"ecu_model", s.ecu_model},
                     {"daily", s.daily.to_json()},
                     {"online", s.online},
                     {"offset_samples", s.offset_samples},
                     {"candidate_offset", s.candidate_offset},
                     {"candidate_readings", s.candidate_readings}};
    if (s.live)
        j["live"] = {{"timestamp", format_compact(s.live->timestamp)},
                     {"power_w", s.live->power_w},
                     {"lifetime_kwh", s.live->lifetime_kwh},
                     {"inverters_online", s.live->inverters_online},
                     {"received_s", s.live->received_s}};
    if (s.offset_s)
        j["offset_s"] = *s.offset_s;
    auto counter_run = nlohmann::json::array();
    for (const auto& c : s.candidate_counter)
        counter_run.push_back({format_compact(c.timestamp), c.received_s, c.lifetime_kwh});
    j["candidate_counter"] = std::move(counter_run);
    if (with_kept) {
        auto kept = nlohmann::json::array();
        for (const auto& k : s.kept)
            kept.push_back({format_compact(k.timestamp), std::to_string(k.fingerprint)});
        j["kept"] = std::move(kept);
    }
    auto gaps = nlohmann::json::array();
    for (const auto& g : s.gaps) {
        nlohmann::json gap{{"after", format_compact(g.after)}, {"opened_at_s", g.opened_at_s}};
        if (g.before)
            gap["before"] = format_compact(*g.before);
        auto missing = nlohmann::json::array();
        for (const auto& t : g.missing)
            missing.push_back(format_compact(t));
        gap["missing"] = std::move(missing);
        if (!g.lost_again.empty()) {
            auto lost_again = nlohmann::json::array();
            for (const auto& t : g.lost_again)
                lost_again.push_back(format_compact(t));
            gap["lost_again"] = std::move(lost_again);
        }
        gaps.push_back(std::move(gap));
    }
    j["gaps"] = std::move(gaps);
    auto inverters = nlohmann::json::array();
    for (const auto& [uid, inv] : s.inverters)
        inverters.push_back({{"uid", inv.uid},
                             {"model_code", inv.model_code},
                             {"model", inv.model},
                             {"channels", inv.channels},
                             {"last_seen_s", inv.last_seen_s}});
    j["inverters"] = std::move(inverters);
    return j;
}

EcuLedger EcuLedger::from_json(const nlohmann::json& j, LedgerConfig config, TimePoint loaded_at) {
    EcuLedger ledger(j.at("ecu_id").get<std::string>(), config);
    EcuLedgerState& s = ledger.state_;
    s.ecu_model = j.at("ecu_model").get<std::string>();
    s.daily = DailyEnergy::from_json(j.at("daily"));
    s.online = j.value("online", false);
    s.last_heard_s = seconds_of(loaded_at); // silent since the restart, as far as we know
    s.offset_samples = j.value("offset_samples", std::vector<std::int64_t>{});
    s.candidate_offset = j.value("candidate_offset", std::vector<std::int64_t>{});
    s.candidate_readings = j.value("candidate_readings", std::vector<std::uint64_t>{});
    if (j.contains("live")) {
        const auto& l = j.at("live");
        s.live =
            LiveReading{timestamp_from(l.at("timestamp")), l.at("power_w").get<double>(),
                        l.at("lifetime_kwh").get<double>(), l.at("inverters_online").get<int>(),
                        l.at("received_s").get<std::int64_t>()};
    }
    if (j.contains("offset_s"))
        s.offset_s = j.at("offset_s").get<std::int64_t>();
    const auto none = nlohmann::json::array();
    for (const auto& c : j.value("candidate_counter", none))
        s.candidate_counter.push_back(
            {timestamp_from(c.at(0)), c.at(1).get<std::int64_t>(), c.at(2).get<double>()});
    for (const auto& k : j.value("kept", none))
        s.kept.push_back({timestamp_from(k.at(0)), std::stoull(k.at(1).get<std::string>())});
    std::stable_sort(s.kept.begin(), s.kept.end(),
                     [](const auto& a, const auto& b) { return a.timestamp < b.timestamp; });
    for (const auto& g : j.value("gaps", none)) {
        LedgerGap gap;
        gap.after = timestamp_from(g.at("after"));
        if (g.contains("before"))
            gap.before = timestamp_from(g.at("before"));
        for (const auto& t : g.at("missing"))
            gap.missing.insert(timestamp_from(t));
        for (const auto& t : g.value("lost_again", none))
            gap.lost_again.insert(timestamp_from(t));
        gap.opened_at_s = g.at("opened_at_s").get<std::int64_t>();
        s.gaps.push_back(std::move(gap));
    }
    mend_gaps(s);
    for (const auto& inv : j.value("inverters", none)) {
        LedgerInverter known{inv.at("uid").get<std::string>(),
                             inv.at("model_code").get<std::string>(),
                             inv.at("model").get<std::string>(), inv.at("channels").get<int>(),
                             inv.at("last_seen_s").get<std::int64_t>()};
        s.inverters.emplace(known.uid, std::move(known));
    }
    return ledger;
}

} // namespace ecu2mqtt
