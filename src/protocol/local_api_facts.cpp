#include "ecu2mqtt/protocol/local_api_facts.hpp"

namespace ecu2mqtt {

void merge_ecu_info(PolledEcuFacts& facts, const LocalEcuInfo& info) {
    facts.firmware = info.firmware;
    if (!info.time_zone.empty())
        facts.time_zone = info.time_zone;
    facts.inverters_registered = info.inverters_registered;
}

void merge_realtime(PolledEcuFacts& facts, const LocalRealtime& realtime) {
    for (const auto& inverter : realtime.inverters)
        if (!inverter.ac_voltage_v.empty()) // type 00 (never heard) has no grid to measure
            facts.inverters[inverter.uid].ac_voltage_v = inverter.ac_voltage_v;
}

void merge_signal_levels(PolledEcuFacts& facts, const LocalSignalLevels& signals) {
    for (const auto& level : signals.levels)
        facts.inverters[level.uid].signal_level = level.level;
}

} // namespace ecu2mqtt
