#include "ecu2mqtt/protocol/polled_zone_watch.hpp"

#include <catch2/catch.hpp>

using namespace ecu2mqtt;

TEST_CASE("a polled zone that changes is kept back until said on three polls in a row",
          "[tz][polled]") {
    PolledZoneWatch watch;
    CHECK_FALSE(watch_polled_zone(watch, "Pacific/Niue").suspect); // the first: taken
    CHECK(watch.accepted == "Pacific/Niue");
    // Flipping every poll: suspect once, never taken.
    CHECK(watch_polled_zone(watch, "Pacific/Kiritimati").suspect);
    CHECK(watch.accepted == "Pacific/Niue");
    for (int i = 0; i < 4; ++i) {
        CHECK_FALSE(watch_polled_zone(watch, "Pacific/Niue").suspect);
        const auto step = watch_polled_zone(watch, "Pacific/Kiritimati");
        CHECK_FALSE(step.suspect); // logged once
        CHECK_FALSE(step.accepted);
        CHECK(watch.accepted == "Pacific/Niue");
    }
    // Steady: taken on the third poll in a row.
    CHECK_FALSE(watch_polled_zone(watch, "Pacific/Niue").accepted);
    CHECK_FALSE(watch_polled_zone(watch, "Pacific/Kiritimati").accepted);
    CHECK_FALSE(watch_polled_zone(watch, "Pacific/Kiritimati").accepted);
    CHECK(watch.accepted == "Pacific/Niue");
    CHECK(watch_polled_zone(watch, "Pacific/Kiritimati").accepted);
    CHECK(watch.accepted == "Pacific/Kiritimati");
}
