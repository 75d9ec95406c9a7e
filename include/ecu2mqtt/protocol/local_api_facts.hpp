// What an ECU's port 8899 has told so far: its last good answers, merged. Pure.
#pragma once

#include "ecu2mqtt/protocol/local_api.hpp"

#include <map>
#include <optional>
#include <string>
#include <vector>

namespace ecu2mqtt {

struct PolledInverterFacts {
    std::optional<int> signal_level; // the raw byte: the peers convert it three different ways
    // AC grid voltage per phase (one, or three for 3-phase types); unset while offline.
    std::vector<std::optional<double>> ac_voltage_v;

    bool operator==(const PolledInverterFacts&) const = default;
};

// Everything known from the ECU's last good answers; each reply only adds to or refreshes it, so
// a failed poll changes nothing.
struct PolledEcuFacts {
    std::optional<std::string> firmware;
    std::optional<std::string> time_zone;
    std::optional<int> inverters_registered;
    std::map<std::string, PolledInverterFacts> inverters;

    bool operator==(const PolledEcuFacts&) const = default;
};

void merge_ecu_info(PolledEcuFacts& facts, const LocalEcuInfo& info);
void merge_realtime(PolledEcuFacts& facts, const LocalRealtime& realtime);
void merge_signal_levels(PolledEcuFacts& facts, const LocalSignalLevels& signals);

} // namespace ecu2mqtt
