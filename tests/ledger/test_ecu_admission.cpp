// Who gets a slot at --max-ecus: established ECUs stay, newcomers wait for unestablished ones.
#include "ecu2mqtt/ledger/ecu_admission.hpp"

#include <catch2/catch.hpp>
#include <vector>

using namespace ecu2mqtt;
using namespace std::chrono_literals;

namespace test_ecu_admission {
namespace {

TrackedEcu real_ecu(std::string id, std::int64_t last_heard_s) {
    return {std::move(id), 40, false, false, last_heard_s};
}

TrackedEcu made_up(std::string id, std::int64_t last_heard_s, bool online = false) {
    return {std::move(id), 1, online, false, last_heard_s};
}

} // namespace

TEST_CASE("admission: three kept readings make an ECU established", "[admission]") {
    CHECK_FALSE(established(0));
    CHECK_FALSE(established(2));
    CHECK(established(3));
    CHECK(established(1000));
}

TEST_CASE("admission: below the limit every new id is admitted", "[admission]") {
    const std::vector<TrackedEcu> tracked{real_ecu("216000000001", 100)};
    const auto admission = admit_new_ecu(tracked, 2);
    CHECK(admission.admitted);
    CHECK(admission.evict.empty());
}

TEST_CASE("admission: an established ECU, offline and quiet for long, is never evicted for a "
          "new id",
          "[admission]") {
    std::vector<TrackedEcu> tracked{real_ecu("216000000001", 100), real_ecu("216000000002", 200)};
    const auto admission = admit_new_ecu(tracked, 2);
    CHECK_FALSE(admission.admitted);
    CHECK(admission.evict.empty());

    SECTION("an ECU with two readings kept is not established yet") {
        tracked[1].kept_readings = 2;
        const auto again = admit_new_ecu(tracked, 2);
        CHECK(again.admitted);
        CHECK(again.evict == std::vector<std::string>{"216000000002"});
    }
}

TEST_CASE("admission: unestablished ids make room, the one heard longest ago first",
          "[admission]") {
    const std::vector<TrackedEcu> tracked{
        real_ecu("216000000001", 10), // the quietest of all, but established
        made_up("216000000015", 300), made_up("216000000016", 200), made_up("216000000017", 400)};
    const auto admission = admit_new_ecu(tracked, 4);
    CHECK(admission.admitted);
    CHECK(admission.evict == std::vector<std::string>{"216000000016"});
}

TEST_CASE("admission: an unestablished id that is online or being written keeps its slot",
          "[admission]") {
    std::vector<TrackedEcu> tracked{real_ecu("216000000001", 10),
                                    made_up("216000000015", 100, true),
                                    made_up("216000000016", 50)};
    tracked[2].busy = true;
    CHECK_FALSE(admit_new_ecu(tracked, 3).admitted);

    tracked[1].online = false; // its timeout passed
    const auto admission = admit_new_ecu(tracked, 3);
    CHECK(admission.admitted);
    CHECK(admission.evict == std::vector<std::string>{"216000000015"});
}

TEST_CASE("admission: ties are broken by id, whatever the order given", "[admission]") {
    const std::vector<TrackedEcu> one_way{made_up("216000000016", 100),
                                          made_up("216000000015", 100)};
    const std::vector<TrackedEcu> other_way{made_up("216000000015", 100),
                                            made_up("216000000016", 100)};
    CHECK(admit_new_ecu(one_way, 2).evict == std::vector<std::string>{"216000000015"});
    CHECK(admit_new_ecu(other_way, 2).evict == std::vector<std::string>{"216000000015"});
}

TEST_CASE("admission: above a lowered limit, a newcomer needs room for all the excess",
          "[admission]") {
    std::vector<TrackedEcu> tracked{real_ecu("216000000001", 10), made_up("216000000015", 300),
                                    made_up("216000000016", 200), made_up("216000000017", 100)};
    const auto admission = admit_new_ecu(tracked, 2);
    CHECK(admission.admitted);
    CHECK(admission.evict ==
          std::vector<std::string>{"216000000017", "216000000016", "216000000015"});

    tracked[3].kept_readings = 5; // now only two could go: nothing is evicted for nothing
    const auto refused = admit_new_ecu(tracked, 2);
    CHECK_FALSE(refused.admitted);
    CHECK(refused.evict.empty());
}

TEST_CASE("admission: the refusal warning is rate-limited and counts what it left out",
          "[admission]") {
    WarningBudget budget(2, 60s);
    const WarningBudget::TimePoint start{std::chrono::hours(480000)};
    CHECK(budget.allow(start) == std::uint64_t{0});
    CHECK(budget.allow(start + 1s) == std::uint64_t{0});
    for (int i = 0; i < 1000; ++i)
        CHECK_FALSE(budget.allow(start + 2s));
    CHECK_FALSE(budget.allow(start + 59s));
    CHECK(budget.allow(start + 60s) == std::uint64_t{1001});
    CHECK(budget.allow(start + 61s) == std::uint64_t{0});
    CHECK_FALSE(budget.allow(start + 62s));
    // A clock set back starts a new window instead of silencing warnings until it catches up.
    CHECK(budget.allow(start - 3600s) == std::uint64_t{1});
}

} // namespace test_ecu_admission
