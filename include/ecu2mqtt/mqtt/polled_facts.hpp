// What polling an ECU's port 8899 adds to what its uploads publish: state keys and discovery. Pure.
#pragma once

#include "ecu2mqtt/mqtt/ha_discovery.hpp"
#include "ecu2mqtt/protocol/local_api_facts.hpp"

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

namespace ecu2mqtt {

// `firmware`, `time_zone`, `inverters_registered`: only those known.
void add_polled_ecu_keys(nlohmann::json& ecu_state, const PolledEcuFacts& facts);
// `signal_level`, and `ac_voltage_v` (single phase) or `ac_voltage_l1_v` … `_l3_v`, spliced into
// an inverter state payload's text (a JSON object); null when polled but unknown, and when last
// polled before `fresh_since_unix` (a port that stopped answering shows no frozen value).
void append_polled_inverter_keys(std::string& inverter_state, const PolledInverterFacts& facts,
                                 std::int64_t fresh_since_unix);
// Polled values count as current for this many poll intervals, then as unknown.
inline constexpr int kPolledFreshIntervals = 3;

// The facts as the store keeps them with the ECU's state (so that a restart keeps the polled
// entities), and back; a malformed record gives no facts (they come again with the next poll).
nlohmann::json polled_facts_record(const PolledEcuFacts& facts);
PolledEcuFacts polled_facts_from_record(const nlohmann::json& record);

// The ECU device's `sw_version` is its firmware; diagnostic sensors for the polled keys.
void add_polled_ecu_discovery(DeviceDiscovery& ecu_config, const PolledEcuFacts& facts);
void add_polled_inverter_discovery(DeviceDiscovery& inverter_config, const std::string& uid,
                                   const PolledInverterFacts& facts);

} // namespace ecu2mqtt
