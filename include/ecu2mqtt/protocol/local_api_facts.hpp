// What an ECU's port 8899 has told so far: its last good answers, merged. Pure.
#pragma once

#include "ecu2mqtt/protocol/local_api.hpp"

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace ecu2mqtt {

struct PolledInverterFacts {
    std::optional<int> signal_level; // the raw byte: the peers convert it three different ways
    // AC grid voltage per phase (one, or three for 3-phase types); unset while offline.
    std::vector<std::optional<double>> ac_voltage_v;
    // When each was last answered (host time, seconds since the Unix epoch): a value that old
    // polls no longer refresh is published as unknown (see append_polled_inverter_keys).
    std::int64_t signal_level_at = 0;
    std::int64_t ac_voltage_at = 0;

    bool operator==(const PolledInverterFacts&) const = default;
};

// Everything known from the ECU's last good answers; each reply adds to or refreshes it, and
// inverters no reply has listed for a few intervals are dropped; a failed poll changes nothing.
struct PolledEcuFacts {
    std::optional<std::string> firmware;
    std::optional<std::string> time_zone;
    std::optional<int> inverters_registered;
    std::map<std::string, PolledInverterFacts> inverters;

    bool operator==(const PolledEcuFacts&) const = default;
};

// More than the biggest ECU registers: a garbled count, not published.
inline constexpr int kMaxRegisteredInverters = 1000;

// Firmware and time zone only when fit to publish (short printable text; a zone of the form
// Area/City or Etc/…), and the count of inverters registered when plausible; returns why each
// one that is not was left out.
std::vector<std::string> merge_ecu_info(PolledEcuFacts& facts, const LocalEcuInfo& info);
// `now_unix`: when the reply came, kept with each inverter's values it gives.
// Inverters beyond `max_inverters` (--max-inverters-per-ecu) are left out.
inline constexpr std::size_t kMaxPolledInverters = 256;
void merge_realtime(PolledEcuFacts& facts, const LocalRealtime& realtime, std::int64_t now_unix,
                    std::size_t max_inverters = kMaxPolledInverters);
void merge_signal_levels(PolledEcuFacts& facts, const LocalSignalLevels& signals,
                         std::int64_t now_unix, std::size_t max_inverters = kMaxPolledInverters);
// Drops the inverters no reply has listed since `listed_since_unix`: one replaced or removed
// goes, and what a reply lists replaces what older ones listed.
void drop_unlisted_inverters(PolledEcuFacts& facts, std::int64_t listed_since_unix);
// Whether two sets of facts show alike (the same values and keys), whenever each was polled.
bool same_values(const PolledEcuFacts& a, const PolledEcuFacts& b);

} // namespace ecu2mqtt
