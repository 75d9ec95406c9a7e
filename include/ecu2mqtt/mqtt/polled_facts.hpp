// What polling an ECU's port 8899 adds to what its uploads publish: state keys and discovery. Pure.
#pragma once

#include "ecu2mqtt/mqtt/ha_discovery.hpp"
#include "ecu2mqtt/protocol/local_api.hpp"

#include <map>
#include <nlohmann/json.hpp>
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

// `firmware`, `time_zone`, `inverters_registered`: only those known.
void add_polled_ecu_keys(nlohmann::json& ecu_state, const PolledEcuFacts& facts);
// `signal_level`, and `ac_voltage_v` (single phase) or `ac_voltage_l1_v` … `_l3_v`, spliced into
// an inverter state payload's text (a JSON object); null when polled but unknown.
void append_polled_inverter_keys(std::string& inverter_state, const PolledInverterFacts& facts);

// The ECU device's `sw_version` is its firmware; diagnostic sensors for the polled keys.
void add_polled_ecu_discovery(DeviceDiscovery& ecu_config, const PolledEcuFacts& facts);
void add_polled_inverter_discovery(DeviceDiscovery& inverter_config, const std::string& uid,
                                   const PolledInverterFacts& facts);

} // namespace ecu2mqtt
