// A simulated week through the real publisher and store (a real Mosquitto, a clock the test
// moves), then `ecu2mqtt history`: each day's energy is what the simulated ECU itself says it
// produced that day, and the curve has one row per upload kept.
#include "ecu2mqtt/protocol/decoder.hpp"
#include "ecu2mqtt/tools/history_command.hpp"
#include "ecu2mqtt/tools/solar_simulation.hpp"
#include "support/mosquitto_broker.hpp"
#include "support/running_publisher.hpp"

#include <catch2/catch.hpp>
#include <map>
#include <set>
#include <sstream>

using namespace ecu2mqtt;

namespace test_history_week {
namespace {

std::vector<std::vector<std::string>> csv_rows(const std::string& csv) {
    std::vector<std::vector<std::string>> rows;
    std::stringstream lines(csv);
    std::string line;
    while (std::getline(lines, line)) {
        REQUIRE(line.ends_with('\r'));
        line.pop_back();
        rows.emplace_back();
        std::stringstream fields(line);
        std::string field;
        while (std::getline(fields, field, ','))
            rows.back().push_back(field);
    }
    return rows;
}

struct RemovedAtEnd {
    std::filesystem::path path;
    ~RemovedAtEnd() {
        std::error_code ec;
        std::filesystem::remove_all(path, ec);
    }
};

// What the test delivered, per ECU day: the timestamps of the uploads kept, their peak power.
struct Delivered {
    std::set<std::string> times;
    double peak_w = 0;
};

} // namespace

TEST_CASE("a simulated week exports the simulator's own daily energy and a curve row per upload") {
    test::MosquittoBroker broker;
    const RemovedAtEnd dir{test::make_temp_dir("ecu2mqtt-history-week")}; // after the publisher
    const auto state_dir = dir.path / "state";
    // Four QS1 of four panels, each panel up to 300 W: about 36 kWh on a clear day.
    SimulatedEcu ecu(
        "216000000001",
        {{"806000000001", 4}, {"806000000002", 4}, {"806000000003", 4}, {"806000000004", 4}}, 300,
        7, 2000.0 * 1000);
    const LocalDateTime first_day{2024, 6, 17, 0, 0, 0};
    test::FixedClock clock(first_day);
    std::map<std::string, Delivered> delivered; // by ECU day
    test::RunningPublisher publisher(broker.url(), state_dir, clock,
                                     [](auto& config, auto&) { config.discovery = false; });

    const auto deliver = [&](const std::string& message, const LocalDateTime& arrival) {
        clock.set(arrival);
        const auto handling = publisher.upload(message);
        REQUIRE(handling.handled);
        REQUIRE_FALSE(handling.clock_suspect);
        if (handling.duplicate)
            return;
        const auto decoded = decode_message(message);
        const auto& upload = std::get<RealtimeUpload>(*decoded_message(decoded));
        auto& day = delivered[format_iso(date_of(upload.timestamp))];
        day.times.insert(format_iso(upload.timestamp));
        day.peak_w = std::max(day.peak_w, upload.power_w);
    };

    // Seven days of uploads every five minutes from 05:00 to 20:55, nothing at night. On the
    // third day the network is down from 09:00 to 11:55 and the ECU sends what it kept once it is
    // back (late readings); on the fifth the ECU makes no upload from 13:00 to 16:55 (its counter
    // still counts: the curve has a hole); on the sixth one upload arrives twice.
    std::vector<std::pair<LocalDateTime, std::string>> held;
    std::optional<LocalDateTime> previous;
    for (int d = 0; d < 7; ++d) {
        for (int minute = 5 * 60; minute < 21 * 60; minute += 5) {
            const auto t = add_seconds(first_day, d * 86400 + minute * 60);
            if (d == 4 && t.hour >= 13 && t.hour < 17)
                continue;
            const auto since = previous ? to_epoch_seconds(t) - to_epoch_seconds(*previous) : 300;
            previous = t;
            const auto message = ecu.upload_at(t, since);
            if (d == 2 && t.hour >= 9 && t.hour < 12) {
                held.emplace_back(t, message);
                continue;
            }
            deliver(message, add_seconds(t, 17));
            for (std::size_t k = 0; k < held.size(); ++k)
                deliver(held[k].second, add_seconds(t, 20 + static_cast<std::int64_t>(k)));
            held.clear();
            if (d == 5 && t.hour == 12 && t.minute == 0)
                deliver(message, add_seconds(t, 30));
        }
    }
    REQUIRE(delivered.size() == 7);

    // Exported while the publisher still has the database open, as beside the running service.
    std::ostringstream daily, curve, err;
    REQUIRE(run_history(state_dir, {}, daily, err) == 0);
    REQUIRE(run_history(state_dir, {{}, true}, curve, err) == 0);
    CHECK(err.str().empty());

    const auto& produced = ecu.produced_kwh_by_day();
    const auto days = csv_rows(daily.str());
    REQUIRE(days.size() == 1 + 7);
    CHECK(days[0][0] == "ecu_id");
    // The upload carries the lifetime counter in whole 0.1 kWh steps (cut off, not rounded), so
    // each end of a day's difference is up to 0.1 kWh below the true counter: a day's energy is
    // off by less than 0.1 kWh either way, and so is the week's, as the steps between days cancel.
    constexpr double kCounterStepKwh = 0.1;
    double exported_week = 0, produced_week = 0;
    for (std::size_t i = 1; i < days.size(); ++i) {
        const auto& row = days[i];
        REQUIRE(row.size() == 8);
        const std::string& day = row[1];
        INFO("ECU day " << day);
        CHECK(row[0] == "216000000001");
        REQUIRE(produced.count(day) == 1);
        const double energy = std::stod(row[2]);
        CHECK(std::abs(energy - produced.at(day)) < kCounterStepKwh);
        CHECK(std::stod(row[3]) == Approx(delivered[day].peak_w).margin(0.05));
        CHECK(row[4] == std::to_string(delivered[day].times.size()));
        CHECK(row[7] == (i == 1 ? "first_reading" : "previous_day"));
        exported_week += energy;
        produced_week += produced.at(day);
    }
    CHECK(std::abs(exported_week - produced_week) < kCounterStepKwh);
    // The days differ (the fifth lost its afternoon's uploads), so a day's energy landing on
    // its neighbour would show.
    CHECK(std::abs(produced.at("2024-06-21") - produced.at("2024-06-20")) > 1.0);

    const auto points = csv_rows(curve.str());
    REQUIRE(!points.empty());
    CHECK(points[0] == std::vector<std::string>{"ecu_id", "time", "power_w", "lifetime_kwh"});
    std::map<std::string, std::set<std::string>> curve_times;
    for (std::size_t i = 1; i < points.size(); ++i)
        curve_times[points[i][1].substr(0, 10)].insert(points[i][1]);
    CHECK(points.size() - 1 == 7 * 192 - 48); // the fifth day's hole of four hours
    for (const auto& [day, kept] : delivered) {
        INFO("ECU day " << day);
        CHECK(curve_times[day] == kept.times);
    }
    CHECK(curve_times["2024-06-19"].size() == 192); // the late readings are in their place
    CHECK(curve_times["2024-06-21"].size() == 192 - 48);
}

} // namespace test_history_week
