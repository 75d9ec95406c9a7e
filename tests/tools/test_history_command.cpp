// `ecu2mqtt history` on a database filled through the store, as the service fills it: which days
// and points a selection gives, how a day's energy is counted (also across a counter reset),
// and the CSV's shape.
#include "ecu2mqtt/store/store.hpp"
#include "ecu2mqtt/tools/history_command.hpp"
#include "support/mosquitto_broker.hpp"
#include "support/store_probe.hpp"

#include "ecu2mqtt/net/asio.hpp"
#include <catch2/catch.hpp>
#include <fstream>
#include <sstream>

using namespace ecu2mqtt;
using namespace std::chrono_literals;

namespace test_history_command {
namespace {

using test::TempDir;

const std::string kEcuA = "216000000001";
const std::string kEcuB = "216000000002";

// Commits the points as the publisher does, one power point per kept upload.
void keep(const std::filesystem::path& state_dir, const std::vector<PowerPoint>& points) {
    boost::asio::io_context io;
    std::optional<std::string> error;
    {
        Store store(Store::file_in(state_dir), {}, io.get_executor());
        WriteBatch batch;
        for (const auto& point : points)
            batch.add_power_point(point);
        store.submit(std::move(batch), [&](const std::string& e) { error = e; });
    } // the store commits what was submitted before it closes
    io.run();
    REQUIRE(error == std::string());
}

std::vector<EnergyDay> days_of(const std::filesystem::path& state_dir,
                               const HistorySelection& selection = {}) {
    HistoryReader reader(Store::file_in(state_dir));
    return reader.daily_energy(selection);
}

std::vector<PowerPoint> curve_of(const std::filesystem::path& state_dir,
                                 const HistorySelection& selection = {}) {
    HistoryReader reader(Store::file_in(state_dir));
    std::vector<PowerPoint> points;
    reader.power_curve(selection, [&](const PowerPoint& p) { points.push_back(p); });
    return points;
}

// Three days of ECU A with a day without data between the second and the third, one of B.
std::vector<PowerPoint> two_ecus() {
    return {
        {kEcuA, "2024-06-01T05:00:00", 0, 100.0},      {kEcuA, "2024-06-01T13:00:00", 900, 103.2},
        {kEcuA, "2024-06-01T20:55:00", 0, 105.0},      {kEcuA, "2024-06-02T05:00:00", 0, 105.0},
        {kEcuA, "2024-06-02T12:00:00", 1250.5, 107.0}, {kEcuA, "2024-06-02T20:00:00", 0, 109.5},
        {kEcuA, "2024-06-04T05:00:00", 0, 112.0},      {kEcuA, "2024-06-04T20:00:00", 300, 113.1},
        {kEcuB, "2024-06-02T12:00:00", 40, 7.0},       {kEcuB, "2024-06-02T12:05:00", 45, 7.1},
    };
}

std::vector<std::string> lines_of(const std::string& csv) {
    std::vector<std::string> lines;
    std::size_t start = 0;
    while (start < csv.size()) {
        const auto end = csv.find("\r\n", start);
        REQUIRE(end != std::string::npos); // every line, the last too, ends with CRLF
        lines.push_back(csv.substr(start, end - start));
        start = end + 2;
    }
    return lines;
}

const std::string kDailyHeader = "ecu_id,date,energy_kwh,peak_power_w,readings,first_lifetime_kwh,"
                                 "last_lifetime_kwh,energy_basis";

} // namespace

TEST_CASE("a day's energy counts from the last reading of the previous day with data") {
    TempDir dir;
    keep(dir.path, two_ecus());
    const auto days = days_of(dir.path);
    REQUIRE(days.size() == 4);
    // Ordered by ECU, then day.
    CHECK(days[0].ecu_id == kEcuA);
    CHECK(days[0].day == "2024-06-01");
    CHECK(days[1].day == "2024-06-02");
    CHECK(days[2].day == "2024-06-04");
    CHECK(days[3].ecu_id == kEcuB);

    // No earlier day: from the day's own first reading.
    CHECK(days[0].basis == EnergyBasis::FirstReading);
    CHECK(days[0].energy_kwh == Approx(5.0));
    CHECK(days[0].peak_power_w == 900);
    CHECK(days[0].readings == 3);
    CHECK(days[0].first_lifetime_kwh == 100.0);
    CHECK(days[0].last_lifetime_kwh == 105.0);

    CHECK(days[1].basis == EnergyBasis::PreviousDay);
    CHECK(days[1].energy_kwh == Approx(4.5));
    // 06-03 has no data: what was produced then (109.5 -> 112.0 overnight) is on 06-04.
    CHECK(days[2].basis == EnergyBasis::EarlierDay);
    CHECK(days[2].energy_kwh == Approx(3.6));

    CHECK(days[3].basis == EnergyBasis::FirstReading);
    CHECK(days[3].energy_kwh == Approx(0.1));
}

TEST_CASE(
    "history: --from and --to are inclusive, and the first day selected still counts from the day "
    "before") {
    TempDir dir;
    keep(dir.path, two_ecus());
    const auto only = days_of(dir.path, {kEcuA, "2024-06-02", "2024-06-02"});
    REQUIRE(only.size() == 1);
    CHECK(only[0].day == "2024-06-02");
    CHECK(only[0].basis == EnergyBasis::PreviousDay);
    CHECK(only[0].energy_kwh == Approx(4.5)); // not 109.5 - 105.0 from its own first reading

    CHECK(days_of(dir.path, {"", "2024-06-02", ""}).size() == 3); // A: 02, 04; B: 02
    CHECK(days_of(dir.path, {"", "", "2024-06-02"}).size() == 3); // A: 01, 02; B: 02
    CHECK(days_of(dir.path, {"", "2024-06-03", "2024-06-03"}).empty());
    CHECK(days_of(dir.path, {"", "2024-06-05", ""}).empty());
}

TEST_CASE("history: --ecu selects one ECU's days and points") {
    TempDir dir;
    keep(dir.path, two_ecus());
    const auto b = days_of(dir.path, {kEcuB, "", ""});
    REQUIRE(b.size() == 1);
    CHECK(b[0].ecu_id == kEcuB);
    const auto curve = curve_of(dir.path, {kEcuA, "", ""});
    CHECK(curve.size() == 8);
    for (const auto& point : curve)
        CHECK(point.ecu_id == kEcuA);
    CHECK(days_of(dir.path, {"216000000009", "", ""}).empty());
}

TEST_CASE("a point belongs to the ECU day its own timestamp names, up to 23:59:59") {
    TempDir dir;
    keep(dir.path, {{kEcuA, "2024-06-01T23:55:00", 0, 10.0},
                    {kEcuA, "2024-06-01T23:59:59", 0, 10.1},
                    {kEcuA, "2024-06-02T00:00:00", 0, 10.2},
                    {kEcuA, "2024-06-02T00:05:00", 0, 10.3}});
    const auto first = curve_of(dir.path, {"", "", "2024-06-01"});
    REQUIRE(first.size() == 2);
    CHECK(first.back().ecu_time == "2024-06-01T23:59:59");
    const auto second = curve_of(dir.path, {"", "2024-06-02", "2024-06-02"});
    REQUIRE(second.size() == 2);
    CHECK(second.front().ecu_time == "2024-06-02T00:00:00");
    CHECK(second.front().lifetime_kwh == 10.2);
    // Ordered by time within the ECU.
    CHECK(second.back().ecu_time == "2024-06-02T00:05:00");
    CHECK(curve_of(dir.path, {"", "2024-06-01", "9999-12-31"}).size() == 4);

    const auto days = days_of(dir.path);
    REQUIRE(days.size() == 2);
    CHECK(days[0].readings == 2);
    CHECK(days[1].energy_kwh == Approx(0.2)); // 10.1 at 23:59:59 to 10.3
}

TEST_CASE("a counter that goes down never gives negative energy: only its rises count that day") {
    TempDir dir;
    SECTION("reset overnight") {
        keep(dir.path, {{kEcuA, "2024-06-01T12:00:00", 500, 2000.0},
                        {kEcuA, "2024-06-02T06:00:00", 0, 0.2},
                        {kEcuA, "2024-06-02T12:00:00", 800, 2.0},
                        {kEcuA, "2024-06-02T20:00:00", 0, 3.0},
                        {kEcuA, "2024-06-03T12:00:00", 700, 5.0}});
        const auto days = days_of(dir.path);
        REQUIRE(days.size() == 3);
        CHECK(days[1].basis == EnergyBasis::CounterReset);
        CHECK(days[1].energy_kwh == Approx(2.8)); // 0.2 -> 3.0; what came before 0.2 is unknown
        // The next day counts from the new counter as usual.
        CHECK(days[2].basis == EnergyBasis::PreviousDay);
        CHECK(days[2].energy_kwh == Approx(2.0));
    }
    SECTION("reset in the middle of the day") {
        keep(dir.path, {{kEcuA, "2024-06-01T20:00:00", 0, 500.0},
                        {kEcuA, "2024-06-02T09:00:00", 300, 500.5},
                        {kEcuA, "2024-06-02T11:00:00", 600, 501.0},
                        {kEcuA, "2024-06-02T11:05:00", 600, 0.0},
                        {kEcuA, "2024-06-02T15:00:00", 400, 0.4},
                        {kEcuA, "2024-06-02T19:00:00", 100, 1.0},
                        {kEcuA, "2024-06-03T19:00:00", 100, 4.0}});
        const auto days = days_of(dir.path);
        REQUIRE(days.size() == 3);
        CHECK(days[1].basis == EnergyBasis::CounterReset);
        CHECK(days[1].energy_kwh == Approx(2.0)); // 500.0 -> 501.0, then 0.0 -> 1.0
        CHECK(days[1].first_lifetime_kwh == 0.0); // the day's lowest and highest readings
        CHECK(days[1].last_lifetime_kwh == 501.0);
        // The day after counts from the last reading, not from the highest one before the drop.
        CHECK(days[2].basis == EnergyBasis::PreviousDay);
        CHECK(days[2].energy_kwh == Approx(3.0));
    }
    for (const auto& day : days_of(dir.path))
        CHECK(day.energy_kwh >= 0.0);
}

TEST_CASE("nothing selected gives the header alone, and so does a database without history") {
    TempDir dir;
    keep(dir.path, {});
    std::ostringstream out, err;
    CHECK(run_history(dir.path, {}, out, err) == 0);
    CHECK(out.str() == kDailyHeader + "\r\n");
    CHECK(err.str().empty());

    keep(dir.path, two_ecus());
    std::ostringstream curve;
    CHECK(run_history(dir.path, {{"216000000009", "", ""}, true}, curve, err) == 0);
    CHECK(curve.str() == "ecu_id,time,power_w,lifetime_kwh\r\n");
}

TEST_CASE("the CSV has a header, fixed decimals, CRLF line ends, and quotes only when needed") {
    TempDir dir;
    keep(dir.path, two_ecus());
    std::ostringstream out, err;
    REQUIRE(run_history(dir.path, {{kEcuA, "2024-06-02", "2024-06-02"}, false}, out, err) == 0);
    CHECK(lines_of(out.str()) ==
          std::vector<std::string>{kDailyHeader, "216000000001,2024-06-02,4.500,1250.5,3,105.000,"
                                                 "109.500,previous_day"});

    std::ostringstream curve;
    REQUIRE(run_history(dir.path, {{kEcuB, "", ""}, true}, curve, err) == 0);
    CHECK(lines_of(curve.str()) == std::vector<std::string>{"ecu_id,time,power_w,lifetime_kwh",
                                                            "216000000002,2024-06-02T12:00:00,40.0,"
                                                            "7.000",
                                                            "216000000002,2024-06-02T12:05:00,45.0,"
                                                            "7.100"});

    CHECK(csv_field("216000000001") == "216000000001");
    CHECK(csv_field("a,b") == "\"a,b\"");
    CHECK(csv_field("say \"hi\"") == "\"say \"\"hi\"\"\"");
    CHECK(csv_field("two\nlines") == "\"two\nlines\"");
    CHECK(csv_field("") == "");

    std::ostringstream odd;
    EnergyDay day;
    day.ecu_id = "id,with comma";
    day.day = "2024-06-02";
    day.energy_kwh = -1e-12; // rounding noise prints as zero, not as -0.000
    day.peak_power_w = 1234.56;
    write_daily_energy_csv(odd, {day});
    CHECK(lines_of(odd.str()).back() ==
          "\"id,with comma\",2024-06-02,0.000,1234.6,0,0.000,0.000,previous_day");
}

TEST_CASE("a missing database, a file that is not one, and a newer schema fail with exit 1 and "
          "the path") {
    TempDir dir;
    std::ostringstream out, err;
    CHECK(run_history(dir.path / "nowhere", {}, out, err) == 1);
    CHECK_THAT(err.str(), Catch::Contains("no database at") &&
                              Catch::Contains((dir.path / "nowhere" / "ecu2mqtt.db").string()));
    CHECK(out.str().empty());

    std::ofstream(Store::file_in(dir.path)) << "not a database, just text that is long enough to "
                                               "hold a header of one hundred bytes or so ......";
    err.str("");
    CHECK(run_history(dir.path, {}, out, err) == 1);
    CHECK_THAT(err.str(), Catch::Contains(Store::file_in(dir.path).string()));
    CHECK(out.str().empty());

    std::filesystem::remove(Store::file_in(dir.path));
    keep(dir.path, two_ecus());
    test::execute(dir.path, "PRAGMA user_version = " + std::to_string(Store::kSchemaVersion + 1));
    err.str("");
    CHECK(run_history(dir.path, {}, out, err) == 1);
    CHECK_THAT(err.str(), Catch::Contains("newer ecu2mqtt"));
    CHECK(out.str().empty());
}

TEST_CASE("the export reads while the store is open and writing, and never writes itself") {
    TempDir dir;
    keep(dir.path, two_ecus());
    boost::asio::io_context io;
    Store store(Store::file_in(dir.path), {}, io.get_executor());
    const auto before = std::filesystem::last_write_time(Store::file_in(dir.path));
    // A writer in the middle of a transaction, as the service's store is while it commits.
    test::DatabaseWriteLock lock(Store::file_in(dir.path));
    std::ostringstream out, err;
    CHECK(run_history(dir.path, {}, out, err) == 0);
    CHECK(lines_of(out.str()).size() == 5);
    CHECK(err.str().empty());
    lock.release();
    CHECK(std::filesystem::last_write_time(Store::file_in(dir.path)) == before);
}

} // namespace test_history_command
