// Looks up a named time zone (as an ECU reports it) in the host's zoneinfo files (Debian: tzdata).
#pragma once

#include "ecu2mqtt/ledger/time_zone.hpp"

#include <memory>
#include <string>
#include <string_view>

namespace ecu2mqtt {

inline constexpr std::string_view kZoneinfoDir = "/usr/share/zoneinfo";

// Null when the name is not a plausible zone name, or its file is missing or not TZif.
std::shared_ptr<const TimeZone> load_time_zone(std::string_view name,
                                               std::string_view zoneinfo_dir = kZoneinfoDir);

} // namespace ecu2mqtt
