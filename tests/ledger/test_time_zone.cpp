#include "ecu2mqtt/core/zoneinfo.hpp"
#include "ecu2mqtt/ledger/ecu_ledger.hpp"
#include "ecu2mqtt/ledger/time_zone.hpp"
#include "support/test_paths.hpp"

#include <catch2/catch.hpp>

using namespace ecu2mqtt;

namespace test_time_zone {
namespace {

TimeZone zone(const std::string& name) {
    const auto bytes = test::read_file(test::data_path("zoneinfo/" + name));
    REQUIRE_FALSE(bytes.empty());
    auto parsed = TimeZone::from_tzif(name, bytes);
    REQUIRE(parsed);
    return *parsed;
}

// A UTC instant written as a wall clock.
std::int64_t utc(int year, int month, int day, int hour, int minute = 0, int second = 0) {
    return to_epoch_seconds(LocalDateTime{year, month, day, hour, minute, second});
}

std::chrono::system_clock::time_point at(std::int64_t utc_s) {
    return std::chrono::system_clock::time_point(std::chrono::seconds(utc_s));
}

RealtimeUpload upload_stamped(const LocalDateTime& stamp, double lifetime_kwh) {
    RealtimeUpload u;
    u.signature = "APS18";
    u.ecu_id = "216000000042";
    u.ecu_model = "ECU-R";
    u.timestamp = stamp;
    u.lifetime_energy_kwh = lifetime_kwh;
    InverterReading inv;
    inv.uid = "408000100000";
    inv.model_code = "408";
    inv.model = "YC600";
    inv.power_w = 200;
    inv.channels = {{1, 32, 3, 100, {}}, {2, 32, 3, 100, {}}};
    u.inverters.push_back(inv);
    u.power_w = 200;
    u.inverters_online = 1;
    return u;
}

} // namespace

TEST_CASE("Asia/Shanghai is UTC+8 now and was +9 in the summers of its DST years", "[tz]") {
    const auto shanghai = zone("Asia/Shanghai");
    CHECK(shanghai.name() == "Asia/Shanghai");
    CHECK(shanghai.utc_offset_at(utc(2026, 5, 28, 16)) == 8 * 3600);
    CHECK(shanghai.utc_offset_at(utc(2060, 1, 1, 0)) == 8 * 3600);
    CHECK(shanghai.utc_offset_at(utc(1988, 7, 1, 0)) == 9 * 3600);
}

TEST_CASE("Europe/Amsterdam changes at 01:00 UTC on the last Sundays of March and October",
          "[tz]") {
    const auto amsterdam = zone("Europe/Amsterdam");
    CHECK(amsterdam.utc_offset_at(utc(2026, 1, 15, 12)) == 3600);
    CHECK(amsterdam.utc_offset_at(utc(2026, 3, 29, 0, 59, 59)) == 3600);
    CHECK(amsterdam.utc_offset_at(utc(2026, 3, 29, 1)) == 7200);
    CHECK(amsterdam.utc_offset_at(utc(2026, 10, 25, 0, 59, 59)) == 7200);
    CHECK(amsterdam.utc_offset_at(utc(2026, 10, 25, 1)) == 3600);
    // Past the file's last transition: the rule at its end.
    CHECK(amsterdam.utc_offset_at(utc(2051, 3, 26, 0, 59, 59)) == 3600);
    CHECK(amsterdam.utc_offset_at(utc(2051, 3, 26, 1)) == 7200);
}

TEST_CASE("a polled zone is used only when it agrees with the offset the uploads show", "[tz]") {
    const auto shanghai = zone("Asia/Shanghai");
    const auto now = utc(2026, 12, 7, 6);
    CHECK(zone_agrees_with_uploads(shanghai, now, std::nullopt));
    CHECK(zone_agrees_with_uploads(shanghai, now, 8 * 3600));
    CHECK(zone_agrees_with_uploads(shanghai, now, 8 * 3600 - 50 * 60)); // a slow ECU clock
    CHECK(zone_agrees_with_uploads(shanghai, now, 8 * 3600 + 3600));
    // Answers that would move the ECU's day: another zone, or an ECU clock two years behind.
    CHECK_FALSE(zone_agrees_with_uploads(shanghai, now, -11 * 3600));
    CHECK_FALSE(zone_agrees_with_uploads(shanghai, now, 8 * 3600 + 3601));
    CHECK_FALSE(zone_agrees_with_uploads(shanghai, now, -2LL * 365 * 24 * 3600));
}

TEST_CASE("Etc/GMT-8 is UTC+8 and Sydney's summer is in January", "[tz]") {
    CHECK(zone("Etc/GMT-8").utc_offset_at(utc(2026, 7, 1, 0)) == 8 * 3600);
    const auto sydney = zone("Australia/Sydney");
    CHECK(sydney.utc_offset_at(utc(2050, 1, 10, 0)) == 11 * 3600);
    CHECK(sydney.utc_offset_at(utc(2050, 7, 10, 0)) == 10 * 3600);
}

TEST_CASE("POSIX rules as the TZif footers write them", "[tz]") {
    const auto fixed = PosixZoneRule::parse("<+08>-8");
    REQUIRE(fixed);
    CHECK(fixed->utc_offset_at(0) == 8 * 3600);
    CHECK_FALSE(fixed->dst);
    const auto cet = PosixZoneRule::parse("CET-1CEST,M3.5.0,M10.5.0/3");
    REQUIRE(cet);
    CHECK(cet->utc_offset_at(utc(2030, 3, 31, 1)) == 7200);
    CHECK(cet->utc_offset_at(utc(2030, 3, 31, 0, 59, 59)) == 3600);
    CHECK_FALSE(PosixZoneRule::parse("X"));
    CHECK_FALSE(PosixZoneRule::parse("CET-1CEST,J60,J300"));
}

TEST_CASE("bytes that are no TZif file give no zone", "[tz]") {
    CHECK_FALSE(TimeZone::from_tzif("x", ""));
    CHECK_FALSE(TimeZone::from_tzif("x", "TZif2 and then nothing"));
    const auto bytes = test::read_file(test::data_path("zoneinfo/Europe/Amsterdam"));
    for (std::size_t size : {std::size_t{44}, std::size_t{100}, bytes.size() / 2})
        CHECK_FALSE(TimeZone::from_tzif("x", bytes.substr(0, size)));
}

TEST_CASE("zone names safe to look up", "[tz]") {
    CHECK(plausible_zone_name("Europe/Amsterdam"));
    CHECK(plausible_zone_name("Etc/GMT-8"));
    CHECK(plausible_zone_name("America/Port-au-Prince"));
    CHECK_FALSE(plausible_zone_name(""));
    CHECK_FALSE(plausible_zone_name("../../etc/passwd"));
    CHECK_FALSE(plausible_zone_name("/etc/localtime"));
    CHECK_FALSE(plausible_zone_name("Europe/Amsterdam\n"));
}

TEST_CASE("an ECU in Asia/Shanghai with the host in UTC: its day follows its time zone",
          "[tz][ledger]") {
    // The ECU's clock runs an hour behind Shanghai time, so the offset learned from its uploads
    // puts its midnight an hour late; its time zone puts it at 16:00 UTC.
    auto shanghai = std::make_shared<const TimeZone>(zone("Asia/Shanghai"));
    const std::int64_t host_start = utc(2026, 5, 28, 15, 0); // 23:00 in Shanghai
    const auto run = [&](std::shared_ptr<const TimeZone> time_zone, std::int64_t tick_at) {
        EcuLedger ledger("216000000042", {});
        ledger.set_time_zone(time_zone);
        ledger.commit(
            ledger.decide(upload_stamped({2026, 5, 28, 22, 0, 0}, 100.0), at(host_start)));
        ledger.commit(
            ledger.decide(upload_stamped({2026, 5, 28, 22, 5, 0}, 100.2), at(host_start + 300)));
        REQUIRE(ledger.clock_offset() == std::chrono::seconds(7 * 3600));
        ledger.tick(at(tick_at));
        return ledger.state().daily.day();
    };
    const LocalDate may28{2026, 5, 28}, may29{2026, 5, 29};
    const std::int64_t shanghai_midnight = utc(2026, 5, 28, 16, 0);
    CHECK(run(shanghai, shanghai_midnight - 1) == may28);
    CHECK(run(shanghai, shanghai_midnight + 1) == may29);
    // Without it, the learned offset's midnight: an hour later.
    CHECK(run(nullptr, shanghai_midnight + 1) == may28);
    CHECK(run(nullptr, shanghai_midnight + 3601) == may29);
}

TEST_CASE("zones are looked up by name under a zoneinfo folder, and only by a safe name", "[tz]") {
    const auto dir = test::data_path("zoneinfo");
    const auto shanghai = load_time_zone("Asia/Shanghai", dir);
    REQUIRE(shanghai);
    CHECK(shanghai->utc_offset_at(utc(2026, 5, 28, 16)) == 8 * 3600);
    CHECK_FALSE(load_time_zone("Asia/Nowhere", dir));
    CHECK_FALSE(load_time_zone("../zoneinfo/Asia/Shanghai", dir));
    CHECK_FALSE(load_time_zone("README.md", dir)); // there, but not TZif
}

TEST_CASE("an ECU whose clock is implausible keeps following its upload dates, whatever its zone",
          "[tz][ledger]") {
    // The ECU says 2024-02-06 while the host says 2026-12-07: no offset is learned from that.
    const std::int64_t host = utc(2026, 12, 7, 10, 0);
    EcuLedger ledger("216000000042", {});
    ledger.commit(ledger.decide(upload_stamped({2024, 2, 6, 11, 22, 14}, 100.0), at(host)));
    ledger.commit(ledger.decide(upload_stamped({2024, 2, 6, 11, 27, 14}, 100.1), at(host + 300)));
    REQUIRE_FALSE(ledger.clock_offset());
    ledger.set_time_zone(std::make_shared<const TimeZone>(zone("Europe/Amsterdam")));
    ledger.tick(at(host + 600));
    CHECK(ledger.state().daily.day() == LocalDate{2024, 2, 6});
    CHECK(ledger.time_zone() == nullptr); // the status page does not claim the zone gives it
    ledger.commit(ledger.decide(upload_stamped({2024, 2, 6, 11, 32, 14}, 100.2), at(host + 900)));
    CHECK(ledger.state().daily.today_kwh().value_or(0) > 0.15);
}

TEST_CASE("a zone the ECU's own clock contradicts never rolls its day", "[tz][ledger]") {
    // The ECU's clock is UTC-11 (Pacific/Niue); a zone 19 h ahead of it (Shanghai) would start
    // its next day at 16:00 UTC of its own evening.
    const std::int64_t host = utc(2026, 12, 7, 6, 0); // 19:00 on Dec 6 for the ECU
    EcuLedger ledger("216000000042", {});
    ledger.commit(ledger.decide(upload_stamped({2026, 12, 6, 19, 0, 0}, 100.0), at(host)));
    ledger.commit(ledger.decide(upload_stamped({2026, 12, 6, 19, 5, 0}, 100.1), at(host + 300)));
    REQUIRE(ledger.clock_offset() == std::chrono::seconds(-11 * 3600));
    ledger.set_time_zone(std::make_shared<const TimeZone>(zone("Asia/Shanghai")));
    ledger.tick(at(host + 600));
    CHECK(ledger.state().daily.day() == LocalDate{2026, 12, 6});
    CHECK(ledger.time_zone() == nullptr);
    // Its own midnight (11:00 UTC) still turns the day.
    ledger.tick(at(utc(2026, 12, 7, 11, 0, 1)));
    CHECK(ledger.state().daily.day() == LocalDate{2026, 12, 7});
}

} // namespace test_time_zone
