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

void merge_realtime(PolledEcuFacts& facts, const LocalRealtime& realtime, std::int64_t now_unix) {
    for (const auto& inverter : realtime.inverters)
        // type 00 (never heard) has no grid to measure
        if (!inverter.ac_voltage_v.empty() && room_for(facts, inverter.uid)) {
            auto& known = facts.inverters[inverter.uid];
            known.ac_voltage_v = inverter.ac_voltage_v;
            known.ac_voltage_at = now_unix;
        }
}

void merge_signal_levels(PolledEcuFacts& facts, const LocalSignalLevels& signals,
                         std::int64_t now_unix) {
    for (const auto& level : signals.levels)
        if (room_for(facts, level.uid)) {
            auto& known = facts.inverters[level.uid];
            known.signal_level = level.level;
            known.signal_level_at = now_unix;
        }
}

bool same_values(const PolledEcuFacts& a, const PolledEcuFacts& b) {
    const auto alike = [](const PolledInverterFacts& x, const PolledInverterFacts& y) {
        return x.signal_level == y.signal_level && x.ac_voltage_v == y.ac_voltage_v;
    };
    return a.firmware == b.firmware && a.time_zone == b.time_zone &&
           a.inverters_registered == b.inverters_registered &&
           std::equal(a.inverters.begin(), a.inverters.end(), b.inverters.begin(),
                      b.inverters.end(), [&alike](const auto& x, const auto& y) {
                          return x.first == y.first && alike(x.second, y.second);
                      });
}

} // namespace ecu2mqtt
