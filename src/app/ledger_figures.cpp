#include "ledger_figures.hpp"

namespace ecu2mqtt {

KnownInverter known_from(const LedgerInverter& inverter) {
    return {inverter.uid, inverter.model_code, inverter.model, inverter.channels};
}

ReadingFigures reading_figures(const UploadDecision& decision) {
    ReadingFigures figures;
    figures.state_lifetime_kwh = decision.state_lifetime_kwh;
    figures.today_kwh = decision.today_kwh;
    if (decision.clock_offset)
        figures.clock_offset_s = decision.clock_offset->count();
    figures.refused_inverters = decision.refused_inverters;
    if (decision.if_kept) {
        const auto& known = decision.if_kept->inverters;
        for (const auto& uid : decision.absent_inverters)
            if (const auto it = known.find(uid); it != known.end())
                figures.absent_inverters.push_back(known_from(it->second));
    }
    return figures;
}

std::optional<LedgerLiveFigures> ledger_live_figures(const EcuLedgerState& state) {
    if (!state.live)
        return std::nullopt;
    return LedgerLiveFigures{state.ecu_model, state.live->timestamp, state.live->power_w,
                             state.live->lifetime_kwh, state.live->inverters_online};
}

std::string state_record(const std::string& id, const EcuLedgerState& state,
                         const nlohmann::json& live_state, const PolledEcuFacts& polled) {
    auto j = EcuLedger::to_json(id, state, /*with_kept=*/false);
    j["live_state"] = live_state;
    if (polled != PolledEcuFacts{})
        j["polled"] = polled_facts_record(polled);
    return j.dump();
}

} // namespace ecu2mqtt
