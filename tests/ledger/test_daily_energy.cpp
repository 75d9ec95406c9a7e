#include "ecu2mqtt/ledger/daily_energy.hpp"

#include <catch2/catch.hpp>

using namespace ecu2mqtt;

namespace test_daily_energy {
namespace {
const LocalDate kMonday{2024, 2, 5};
const LocalDate kTuesday{2024, 2, 6};
const LocalDate kWednesday{2024, 2, 7};
} // namespace

TEST_CASE("today's energy counts from the first upload seen") {
    DailyEnergy daily;
    CHECK_FALSE(daily.today_kwh());
    daily.record(kMonday, 2100.0);
    CHECK(*daily.today_kwh() == Approx(0.0));
    daily.record(kMonday, 2101.5);
    CHECK(*daily.today_kwh() == Approx(1.5));
}

TEST_CASE("midnight by the clock resets to zero, the first upload counts from last night") {
    DailyEnergy daily;
    daily.record(kMonday, 2100.0);
    daily.record(kMonday, 2104.2);
    daily.roll_to(kTuesday);
    CHECK(*daily.today_kwh() == Approx(0.0));
    daily.roll_to(kTuesday); // once only
    daily.record(kTuesday, 2104.5);
    CHECK(*daily.today_kwh() == Approx(0.3));
}

TEST_CASE("an upload dated the next day starts the day even before the clock does") {
    DailyEnergy daily;
    daily.record(kMonday, 2100.0);
    daily.record(kMonday, 2103.0);
    daily.record(kTuesday, 2103.4);
    CHECK(*daily.today_kwh() == Approx(0.4));
    daily.roll_to(kTuesday); // the clock catching up changes nothing
    CHECK(*daily.today_kwh() == Approx(0.4));
}

TEST_CASE("a late upload from before midnight never re-inflates the new day") {
    DailyEnergy daily;
    daily.record(kMonday, 2100.0);
    daily.roll_to(kTuesday);
    daily.record(kTuesday, 2100.5);
    daily.record(kMonday, 2100.2); // arrives late (backfill)
    CHECK(*daily.today_kwh() == Approx(0.5));
}

TEST_CASE("today never goes negative or down within a day") {
    DailyEnergy daily;
    daily.record(kMonday, 2100.0);
    daily.record(kMonday, 2102.0);
    daily.record(kMonday, 2101.0); // a glitch or a reordered upload
    CHECK(*daily.today_kwh() == Approx(2.0));
}

TEST_CASE("the state survives a round trip through JSON") {
    DailyEnergy daily;
    daily.record(kTuesday, 2000.0);
    daily.record(kTuesday, 2003.7);
    const auto restored = DailyEnergy::from_json(nlohmann::json::parse(daily.to_json().dump()));
    CHECK(*restored.today_kwh() == Approx(3.7));
    CHECK(*restored.day() == kTuesday);
    auto next = restored;
    next.roll_to(kWednesday);
    CHECK(*next.today_kwh() == Approx(0.0));
    CHECK_THROWS(DailyEnergy::from_json(nlohmann::json{{"day", "yesterday"}}));
}

} // namespace test_daily_energy
