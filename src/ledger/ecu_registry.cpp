#include "ecu2mqtt/ledger/ecu_registry.hpp"

namespace ecu2mqtt {

LedgerConfig RegistryConfig::ledger_config() const {
    LedgerConfig c;
    c.offline_after = ecu_timeout;
    c.forget_inverter_after = std::chrono::duration_cast<std::chrono::days>(forget_inverter_after);
    c.max_inverters = max_inverters_per_ecu;
    c.gap_expiry = gap_expiry;
    return c;
}

EcuRegistry::EcuRegistry(RegistryConfig config) : config_(config) {}

EcuRegistry::Admitted EcuRegistry::admit(const std::string& id, const EcuBusy& busy) {
    if (const auto it = ledgers_.find(id); it != ledgers_.end())
        return {true, &it->second, {}};
    // Below the cap nothing about the tracked ECUs matters; at it, only those that may go.
    std::vector<TrackedEcu> candidates;
    if (ledgers_.size() >= config_.max_ecus)
        for (const auto& [tracked_id, ledger] : ledgers_) {
            const auto& state = ledger.state();
            if (established(state.kept.size()) || ledger.online() || busy(tracked_id))
                continue;
            candidates.push_back({tracked_id, state.kept.size(), false, false, state.last_heard_s});
        }
    Admission admission = admit_new_ecu(ledgers_.size(), candidates, config_.max_ecus);
    if (!admission.admitted)
        return {};
    return {true, nullptr, std::move(admission.evict)};
}

EcuLedger& EcuRegistry::add(const std::string& id) {
    return ledgers_.try_emplace(id, id, config_.ledger_config()).first->second;
}

EcuLedger& EcuRegistry::insert(EcuLedger ledger) {
    const std::string id = ledger.ecu_id(); // before the ledger moves
    return ledgers_.insert_or_assign(id, std::move(ledger)).first->second;
}

bool EcuRegistry::forget(const std::string& id) {
    return ledgers_.erase(id) > 0;
}

EcuLedger* EcuRegistry::find(const std::string& id) {
    const auto it = ledgers_.find(id);
    return it == ledgers_.end() ? nullptr : &it->second;
}

const EcuLedger* EcuRegistry::find(const std::string& id) const {
    const auto it = ledgers_.find(id);
    return it == ledgers_.end() ? nullptr : &it->second;
}

std::set<std::string> EcuRegistry::held_elsewhere(const std::string& id,
                                                  const RealtimeUpload& upload,
                                                  std::int64_t now_s) const {
    std::set<std::string> held;
    for (const auto& reading : upload.inverters)
        if (reading.uid == id || ledgers_.contains(reading.uid))
            held.insert(reading.uid);
    for (const auto& [other_id, other] : ledgers_) {
        const auto& state = other.state();
        if (other_id == id || !established(state.kept.size()))
            continue;
        for (const auto& reading : upload.inverters)
            if (const auto it = state.inverters.find(reading.uid);
                it != state.inverters.end() && now_s - it->second.last_seen_s < 86400)
                held.insert(reading.uid);
    }
    return held;
}

EcuRegistry::Ticks EcuRegistry::tick(TimePoint now, const EcuBusy& busy) {
    Ticks ticks;
    for (auto& [id, ledger] : ledgers_) {
        const auto before = ledger.state().revision;
        auto t = ledger.tick(now);
        ticks.ecus.push_back({id, std::move(t), ledger.state().revision != before});
    }
    const auto now_s = std::chrono::duration_cast<std::chrono::seconds>(now.time_since_epoch());
    for (const auto& [id, ledger] : ledgers_)
        if (!busy(id) &&
            now_s.count() - ledger.state().last_heard_s > config_.forget_inverter_after.count())
            ticks.silent.push_back(id);
    return ticks;
}

std::vector<EcuRegistry::View> EcuRegistry::snapshot() const {
    std::vector<View> views;
    views.reserve(ledgers_.size());
    for (const auto& [id, ledger] : ledgers_) {
        const auto& state = ledger.state();
        const auto offset = ledger.clock_offset();
        std::vector<LedgerInverter> inverters;
        inverters.reserve(state.inverters.size());
        for (const auto& [uid, inverter] : state.inverters)
            inverters.push_back(inverter);
        views.push_back({id, state.daily.today_kwh(),
                         offset ? std::optional<std::int64_t>(offset->count()) : std::nullopt,
                         ledger.online(), state.ecu_model, state.live,
                         ledger.time_zone() ? ledger.time_zone()->name() : "",
                         std::move(inverters)});
    }
    return views;
}

} // namespace ecu2mqtt
