// Which polled time zone an ECU goes by: a zone that changes between polls is held back until the
// ECU has said the new one on several polls in a row. Pure.
#pragma once

#include <optional>
#include <string>

namespace ecu2mqtt {

// An ECU's zone does not change by itself; one that does (a spoofed answer, a garbled reply,
// an ECU being set up) would move the ECU's midnight, so the old zone stays in use until the
// new one is steady.
inline constexpr int kZoneChangeSteadyPolls = 3;

struct PolledZoneWatch {
    std::optional<std::string> accepted; // the zone gone by
    std::string candidate;               // a different zone, said on `candidate_polls` in a row
    int candidate_polls = 0;
    std::string reported; // the last candidate logged as suspect (logged once)
};

struct ZoneWatchStep {
    bool suspect = false;  // `name` differs from the accepted zone, first seen now: log it
    bool accepted = false; // `name` became the accepted zone with this poll, replacing another
};

// One poll's zone `name`; afterwards `watch.accepted` is the zone to go by.
ZoneWatchStep watch_polled_zone(PolledZoneWatch& watch, const std::string& name,
                                int steady_polls = kZoneChangeSteadyPolls);

} // namespace ecu2mqtt
