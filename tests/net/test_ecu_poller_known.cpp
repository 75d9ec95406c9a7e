#include "support/poller_rig.hpp"

#include <algorithm>

#include <catch2/catch.hpp>

using namespace ecu2mqtt;

namespace test_ecu_poller_known {
namespace {

using test::PollerRig;
using test::run_until;

constexpr std::int64_t kYesterday = 1'733'500'000;

// What the service kept of ECU 216000000001 from its polls before: another zone than the
// simulated ECU's, and an inverter the simulated replies do not list.
PolledEcuFacts kept_facts() {
    PolledEcuFacts facts;
    facts.firmware = "ECU_R_1.3.5";
    facts.time_zone = "Asia/Shanghai";
    facts.inverters_registered = 6;
    auto& kept = facts.inverters["901000000009"];
    kept.signal_level = 99;
    kept.signal_level_at = kYesterday;
    kept.ac_voltage_v = {231.0};
    kept.ac_voltage_at = kYesterday;
    return facts;
}

} // namespace

TEST_CASE("a target tied to a known ECU starts from what is known: a first poll with ECU info "
          "only keeps the inverters, and the kept zone holds",
          "[poller][tz]") {
    PollerRig rig;
    rig.poller->set_known_facts([](const std::string& id) -> std::optional<PolledEcuFacts> {
        if (id == "216000000001")
            return kept_facts();
        return std::nullopt;
    });
    rig.ecu.set_reply("0002", test::port8899_reply("ksh270_ecu-b_0002_error_short.hex"));
    rig.ecu.silent_on("0030");
    rig.poller->start();
    REQUIRE(run_until(rig.io, [&] { return !rig.polled.empty(); }));
    const auto& first = rig.polled.front();
    // ECU info answered: its firmware is taken; the inverters only a later reply can drop stay.
    CHECK(first.firmware == "ECU_R_1.3.6C");
    REQUIRE(first.inverters.contains("901000000009"));
    CHECK(first.inverters.at("901000000009").signal_level == 99);
    CHECK(first.inverters.at("901000000009").signal_level_at == kYesterday);
    // The ECU said Etc/GMT-8 once: a change, held back as on any other poll.
    CHECK(first.time_zone == "Asia/Shanghai");
    CHECK(rig.zones.front() == "Asia/Shanghai");
    CHECK(rig.count("time_zone_changed ") == 1);
}

TEST_CASE("a zone change is said on polls in a row only: a refused zone between breaks the row",
          "[poller][tz]") {
    PollerRig rig;
    rig.poller->start();
    REQUIRE(run_until(rig.io, [&] { return !rig.polled.empty(); }));
    REQUIRE(rig.zones.back() == "Etc/GMT-8");
    const auto changed = test::ecu_info_with_zone(rig.ecu.reply("0001"), "Asia/Shanghai");
    const auto refused = test::ecu_info_with_zone(rig.ecu.reply("0001"), "localtime");
    // Said three times, but never twice in a row.
    for (const auto& reply : {changed, refused, changed, refused, changed}) {
        rig.ecu.set_reply("0001", reply);
        const auto polls = rig.polled.size();
        REQUIRE(run_until(rig.io, [&] { return rig.polled.size() > polls; }));
    }
    CHECK(rig.zones.back() == "Etc/GMT-8");
    CHECK(rig.count("time_zone_change_taken") == 0);
}

TEST_CASE("a poll under way when its address is tied to another ECU leaves that ECU's status "
          "alone",
          "[poller]") {
    PollerRig rig;
    rig.ecu.silent_on("0002"); // each poll waits a timeout there, ECU info answered
    rig.poller->start();
    REQUIRE(run_until(rig.io, [&] { return !rig.polled.empty(); }));
    REQUIRE(rig.poller->status().front().ecu_id == "216000000001");
    // The next poll has had its ECU info answer and waits on 0002: another ECU uploads from there.
    const auto asked = rig.ecu.requests().size();
    REQUIRE(run_until(rig.io, [&] { return rig.ecu.requests().size() >= asked + 2; }));
    rig.poller->on_upload("216000000099", "127.0.0.1:40123");
    const auto polls = rig.polled.size();
    REQUIRE(run_until(rig.io, [&] { return rig.ecu.requests().size() >= asked + 3; }));
    run_until(
        rig.io, [] { return false; }, std::chrono::milliseconds(50));
    const auto status = rig.poller->status().front();
    CHECK(status.ecu_id == "216000000099");
    CHECK(status.last_success_unix == 0); // the answer came from ECU ...001
    CHECK(status.step_failing.empty());
    CHECK(rig.polled.size() == polls);
}

TEST_CASE("a reply that comes after its address was tied to another ECU is not that ECU's",
          "[poller]") {
    PollerRig rig;
    rig.poller->set_known_facts([](const std::string& id) -> std::optional<PolledEcuFacts> {
        if (id != "216000000099")
            return std::nullopt;
        PolledEcuFacts facts;
        facts.inverters["999000000001"].signal_level = 10;
        facts.inverters["999000000001"].signal_level_at = kYesterday;
        return facts;
    });
    rig.ecu.delay_on("0002", std::chrono::milliseconds(200));
    rig.poller->start();
    REQUIRE(run_until(rig.io, [&] { return !rig.polled.empty(); }));
    // The next poll waits on its 0002 answer (ECU ...001's six inverters) when ECU ...099 takes
    // the address over; from then on the address answers as ...099, with ECU info only.
    const auto asked = rig.ecu.requests().size();
    REQUIRE(run_until(rig.io, [&] { return rig.ecu.requests().size() >= asked + 2; }));
    auto info = rig.ecu.reply("0001");
    const auto id_at = info.find("216000000001");
    REQUIRE(id_at != std::string::npos);
    rig.ecu.set_reply("0001", info.replace(id_at, 12, "216000000099"));
    rig.ecu.set_reply("0002", test::port8899_reply("ksh270_ecu-b_0002_error_short.hex"));
    rig.ecu.set_reply("0030", test::port8899_reply("ksh270_ecu-b_0002_error_short.hex"));
    rig.poller->on_upload("216000000099", "127.0.0.1:40123");
    REQUIRE(run_until(rig.io, [&] {
        return std::find(rig.polled_ids.begin(), rig.polled_ids.end(), "216000000099") !=
               rig.polled_ids.end();
    }));
    const auto fed = std::find(rig.polled_ids.begin(), rig.polled_ids.end(), "216000000099");
    const auto& facts = rig.polled[static_cast<std::size_t>(fed - rig.polled_ids.begin())];
    CHECK(facts.inverters.contains("999000000001"));
    CHECK_FALSE(facts.inverters.contains("901000000001"));
    CHECK(rig.count("poll_failed ecu=216000000099 address=127.0.0.1:" +
                    std::to_string(rig.ecu.port()) + " command=0002 reason=\"timed out") == 0);
    // ECU ...001's answer after the re-tie asked nothing more in ...099's name.
    CHECK(std::count(rig.ecu.requests().begin(), rig.ecu.requests().end(),
                     "APS1100280030216000000099END\n") <= 1);
}

TEST_CASE("a failed poll breaks a zone change's row too", "[poller][tz]") {
    PollerRig rig;
    rig.poller->start();
    REQUIRE(run_until(rig.io, [&] { return !rig.polled.empty(); }));
    const auto changed = test::ecu_info_with_zone(rig.ecu.reply("0001"), "Asia/Shanghai");
    rig.ecu.set_reply("0001", changed);
    for (int round = 0; round < 2; ++round) {
        const auto polls = rig.polled.size();
        REQUIRE(run_until(rig.io, [&] { return rig.polled.size() > polls; }));
        rig.ecu.set_behaviour(test::LocalApiBehaviour::Truncate); // one poll fails
        const auto failures = rig.count("poll_failed");
        REQUIRE(run_until(rig.io, [&] { return rig.count("poll_failed") > failures; }));
        rig.ecu.set_behaviour(test::LocalApiBehaviour::Answer);
    }
    const auto polls = rig.polled.size();
    REQUIRE(run_until(rig.io, [&] { return rig.polled.size() > polls; }));
    CHECK(rig.zones.back() == "Etc/GMT-8");
    CHECK(rig.count("time_zone_change_taken") == 0);
}

TEST_CASE("an out-of-range polled grid voltage is left unknown and logged when it starts",
          "[poller]") {
    PollerRig rig;
    auto reply = rig.ecu.reply("0002");
    const auto record = reply.find(std::string("\x90\x10\x00\x00\x00\x01", 6));
    REQUIRE(record != std::string::npos);
    reply[record + 15] = '\xff'; // phase 1: 65535 V
    reply[record + 16] = '\xff';
    rig.ecu.set_reply("0002", reply);
    rig.poller->start();
    REQUIRE(run_until(rig.io, [&] { return rig.polled.size() >= 3; }));
    const auto& inverter = rig.polled.back().inverters.at("901000000001");
    REQUIRE(inverter.ac_voltage_v.size() == 3);
    CHECK_FALSE(inverter.ac_voltage_v[0]);
    CHECK(inverter.ac_voltage_v[1] == Approx(394));
    CHECK(rig.count("polled_value_refused") == 1);
    CHECK(rig.count("grid voltage 65535 V is not 80-500 V") == 1);
}

} // namespace test_ecu_poller_known
