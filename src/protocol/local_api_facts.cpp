#include "ecu2mqtt/protocol/local_api_facts.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <optional>
#include <string_view>

namespace ecu2mqtt {
namespace {

// Bounds on what an answer from the LAN may add: an ECU has at most a few hundred inverters, and
// Home Assistant refuses states over 255 characters.
constexpr std::size_t kMaxTextLength = 64;

bool printable_text(const std::string& text) {
    return std::all_of(text.begin(), text.end(), [](char c) { return c >= 0x20 && c < 0x7f; });
}

// The areas of tzdata's Area/City names, and Etc/ for the fixed offsets (`Etc/GMT-8`). Names of
// other forms are no ECU's zone: `localtime` and `posixrules` are links to the host's own zone,
// `Factory` is no zone, `right/…` and `posix/…` are copies with other leap-second rules.
constexpr std::array<std::string_view, 11> kZoneAreas{"Africa", "America",  "Antarctica", "Arctic",
                                                      "Asia",   "Atlantic", "Australia",  "Europe",
                                                      "Indian", "Pacific",  "Etc"};

// As tzdata spells zones: `Europe/Amsterdam`, `Etc/GMT-8`; never a path out of the zone folder.
bool zone_name_text(const std::string& text) {
    const auto slash = text.find('/');
    if (slash == std::string::npos || slash + 1 == text.size() ||
        std::find(kZoneAreas.begin(), kZoneAreas.end(), text.substr(0, slash)) == kZoneAreas.end())
        return false;
    return text.find("..") == std::string::npos && text.find("//") == std::string::npos &&
           text.back() != '/' && std::all_of(text.begin(), text.end(), [](char c) {
               return std::isalnum(static_cast<unsigned char>(c)) || c == '/' || c == '_' ||
                      c == '-' || c == '+';
           });
}

// Why `text` cannot be published as the ECU's `what`, if it cannot.
std::optional<std::string> text_refusal(const std::string& text, std::string_view what) {
    if (text.size() > kMaxTextLength)
        return std::string(what) + " longer than " + std::to_string(kMaxTextLength) +
               " characters (" + std::to_string(text.size()) + ")";
    if (!printable_text(text))
        return std::string(what) + " is not printable text";
    return std::nullopt;
}

bool room_for(const PolledEcuFacts& facts, const std::string& uid, std::size_t max_inverters) {
    return facts.inverters.contains(uid) ||
           facts.inverters.size() < std::min(max_inverters, kMaxPolledInverters);
}

} // namespace

std::vector<std::string> merge_ecu_info(PolledEcuFacts& facts, const LocalEcuInfo& info) {
    std::vector<std::string> refused;
    if (!info.firmware.empty()) {
        if (auto why = text_refusal(info.firmware, "firmware"))
            refused.push_back(std::move(*why));
        else
            facts.firmware = info.firmware;
    }
    if (!info.time_zone.empty()) {
        if (auto why = text_refusal(info.time_zone, "time zone"))
            refused.push_back(std::move(*why));
        else if (!zone_name_text(info.time_zone))
            refused.push_back("time zone is not a zone name of the form Area/City or Etc/...");
        else
            facts.time_zone = info.time_zone;
    }
    if (info.inverters_registered > kMaxRegisteredInverters) {
        facts.inverters_registered.reset(); // unknown, rather than an old count for good
        refused.push_back("inverters registered " + std::to_string(info.inverters_registered) +
                          " is more than an ECU holds (" + std::to_string(kMaxRegisteredInverters) +
                          ")");
    } else {
        facts.inverters_registered = info.inverters_registered;
    }
    return refused;
}

void merge_realtime(PolledEcuFacts& facts, const LocalRealtime& realtime, std::int64_t now_unix,
                    std::size_t max_inverters) {
    for (const auto& inverter : realtime.inverters)
        // type 00 (never heard) has no grid to measure
        if (!inverter.ac_voltage_v.empty() && room_for(facts, inverter.uid, max_inverters)) {
            auto& known = facts.inverters[inverter.uid];
            known.ac_voltage_v = inverter.ac_voltage_v;
            known.ac_voltage_at = now_unix;
        }
}

void merge_signal_levels(PolledEcuFacts& facts, const LocalSignalLevels& signals,
                         std::int64_t now_unix, std::size_t max_inverters) {
    for (const auto& level : signals.levels)
        if (room_for(facts, level.uid, max_inverters)) {
            auto& known = facts.inverters[level.uid];
            known.signal_level = level.level;
            known.signal_level_at = now_unix;
        }
}

void drop_unlisted_inverters(PolledEcuFacts& facts, std::int64_t listed_since_unix) {
    std::erase_if(facts.inverters, [listed_since_unix](const auto& entry) {
        const auto& inverter = entry.second;
        return std::max(inverter.signal_level_at, inverter.ac_voltage_at) < listed_since_unix;
    });
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
