#include "ecu2mqtt/protocol/polled_zone_watch.hpp"

namespace ecu2mqtt {

ZoneWatchStep watch_polled_zone(PolledZoneWatch& watch, const std::string& name, int steady_polls) {
    ZoneWatchStep step;
    if (!watch.accepted || *watch.accepted == name) {
        watch.accepted = name;
        watch.candidate.clear();
        watch.candidate_polls = 0; // "in a row": the old zone said again starts the count anew
        return step;
    }
    if (watch.candidate == name) {
        ++watch.candidate_polls;
    } else {
        watch.candidate = name;
        watch.candidate_polls = 1;
        step.suspect = watch.reported != name;
        watch.reported = name;
    }
    if (watch.candidate_polls >= steady_polls) {
        watch.accepted = name;
        watch.candidate.clear();
        watch.candidate_polls = 0;
        step.accepted = true;
    }
    return step;
}

} // namespace ecu2mqtt
