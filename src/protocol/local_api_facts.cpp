#include "ecu2mqtt/protocol/local_api_facts.hpp"

#include <algorithm>
#include <cctype>

namespace ecu2mqtt {
namespace {

// Bounds on what an answer from the LAN may add: an ECU has at most a few hundred inverters, and
// Home Assistant refuses states over 255 characters.
constexpr std::size_t kMaxInverters = 256;
constexpr std::size_t kMaxTextLength = 64;

bool printable_text(const std::string& text) {
    return !text.empty() && text.size() <= kMaxTextLength &&
           std::all_of(text.begin(), text.end(), [](char c) { return c >= 0x20 && c < 0x7f; });
}

// As tzdata spells zones: `Europe/Amsterdam`, `Etc/GMT-8`; never a path out of the zone folder.
bool zone_name_text(const std::string& text) {
    return printable_text(text) && text.find("..") == std::string::npos && text.front() != '/' &&
           std::all_of(text.begin(), text.end(), [](char c) {
               return std::isalnum(static_cast<unsigned char>(c)) || c == '/' || c == '_' ||
                      c == '-' || c == '+';
           });
}

bool room_for(const PolledEcuFacts& facts, const std::string& uid) {
    return facts.inverters.contains(uid) || facts.inverters.size() < kMaxInverters;
}

} // namespace

void merge_ecu_info(PolledEcuFacts& facts, const LocalEcuInfo& info) {
    if (printable_text(info.firmware))
        facts.firmware = info.firmware;
    if (zone_name_text(info.time_zone))
        facts.time_zone = info.time_zone;
    facts.inverters_registered = info.inverters_registered;
}

void merge_realtime(PolledEcuFacts& facts, const LocalRealtime& realtime) {
    for (const auto& inverter : realtime.inverters)
        // type 00 (never heard) has no grid to measure
        if (!inverter.ac_voltage_v.empty() && room_for(facts, inverter.uid))
            facts.inverters[inverter.uid].ac_voltage_v = inverter.ac_voltage_v;
}

void merge_signal_levels(PolledEcuFacts& facts, const LocalSignalLevels& signals) {
    for (const auto& level : signals.levels)
        if (room_for(facts, level.uid))
            facts.inverters[level.uid].signal_level = level.level;
}

} // namespace ecu2mqtt
