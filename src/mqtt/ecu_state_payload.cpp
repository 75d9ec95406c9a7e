#include "ecu2mqtt/mqtt/ecu_state_payload.hpp"

#include <set>

namespace ecu2mqtt {

nlohmann::json live_state_payload(const std::string& id,
                                  const std::optional<LedgerLiveFigures>& ledger_live,
                                  std::optional<double> today_kwh, const nlohmann::json& live_state,
                                  std::optional<std::int64_t> clock_offset_s,
                                  const PolledEcuFacts& polled,
                                  const std::string& last_seen_of_live) {
    nlohmann::json state = live_state;
    if (state.is_null() && ledger_live) { // after a restart: rebuilt from the ledger
        state = {{"id", id},
                 {"model", ledger_live->ecu_model},
                 {"timestamp", format_iso(ledger_live->timestamp)},
                 {"power_w", ledger_live->power_w},
                 {"inverters_online", ledger_live->inverters_online},
                 {"last_seen", last_seen_of_live}};
    }
    if (state.is_null())
        return state;
    if (ledger_live)
        state["lifetime_energy_kwh"] = ledger_live->lifetime_kwh;
    state["today_energy_kwh"] = today_kwh ? nlohmann::json(*today_kwh) : nlohmann::json(nullptr);
    state["clock_offset_s"] =
        clock_offset_s ? nlohmann::json(*clock_offset_s) : nlohmann::json(nullptr);
    add_polled_ecu_keys(state, polled);
    return state;
}

LiveMessages live_messages(const TopicScheme& topics, const std::string& id,
                           const RealtimeUpload& upload, const ReadingFigures& figures,
                           const std::string& last_seen, const PolledEcuFacts& polled,
                           std::int64_t polled_fresh_since_s) {
    LiveMessages out;
    const auto add_polled = [&polled, polled_fresh_since_s](std::string& payload,
                                                            const std::string& uid) {
        if (const auto it = polled.inverters.find(uid); it != polled.inverters.end())
            append_polled_inverter_keys(payload, it->second, polled_fresh_since_s);
    };
    const std::set<std::string> refused(figures.refused_inverters.begin(),
                                        figures.refused_inverters.end());
    // Written as text straight away: the same bytes as the documents' dump(), without
    // building a document of small allocations for each of up to 128 inverters.
    for (const auto& inv : upload.inverters)
        if (!refused.contains(inv.uid)) {
            std::string payload;
            append_inverter_state_payload(payload, inv, upload.timestamp);
            add_polled(payload, inv.uid);
            out.batch.push_back({topics.inverter_state(id, inv.uid), std::move(payload), true});
        }
    for (const auto& known : figures.absent_inverters) {
        std::string payload;
        append_absent_inverter_payload(payload, known, upload.timestamp);
        add_polled(payload, known.uid);
        out.batch.push_back({topics.inverter_state(id, known.uid), std::move(payload), true});
    }
    out.state = ecu_state_payload(upload, figures.state_lifetime_kwh, figures.today_kwh, last_seen);
    out.state["clock_offset_s"] =
        figures.clock_offset_s ? nlohmann::json(*figures.clock_offset_s) : nlohmann::json(nullptr);
    add_polled_ecu_keys(out.state, polled);
    out.batch.push_back({topics.ecu_state(id), out.state.dump(), true});
    return out;
}

std::vector<OutgoingMessage>
late_messages(const TopicScheme& topics, const std::string& id, const RealtimeUpload& upload,
              const ReadingFigures& figures, const std::string& last_seen,
              std::optional<double> today_before, const nlohmann::json& live_state) {
    auto history = ecu_state_payload(upload, upload.lifetime_energy_kwh, std::nullopt, last_seen);
    history.erase("today_energy_kwh");
    auto inverters = nlohmann::json::object();
    for (const auto& inv : upload.inverters)
        inverters[inv.uid] = inverter_state_payload(inv, upload.timestamp);
    history["inverters"] = std::move(inverters);
    std::vector<OutgoingMessage> batch{{topics.history(id), history.dump(), false}};
    if (figures.today_kwh != today_before && !live_state.is_null()) {
        auto state = live_state;
        state["today_energy_kwh"] =
            figures.today_kwh ? nlohmann::json(*figures.today_kwh) : nlohmann::json(nullptr);
        batch.push_back({topics.ecu_state(id), state.dump(), true});
    }
    return batch;
}

} // namespace ecu2mqtt
