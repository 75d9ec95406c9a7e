// `ecu2mqtt history` as the real binary: the CSV on stdout, read beside a running service and
// after it stopped; messages on stderr with exit status 2 for a bad option, 1 when the
// database cannot be read.
#include "support/mosquitto_broker.hpp"
#include "support/net.hpp"
#include "support/service_process.hpp"
#include "support/test_paths.hpp"
#include "support/upload_builder.hpp"

#include <algorithm>
#include <catch2/catch.hpp>
#include <csignal>
#include <ctime>
#include <fstream>
#include <sstream>

using namespace std::chrono_literals;

namespace test_history_cli {
namespace {

struct Run {
    int status;
    std::string out;
    std::string err;
};

// stdout and stderr kept apart, so that a message can never end up in the CSV.
Run history(const std::vector<std::string>& args, const std::vector<std::string>& env = {}) {
    const auto dir = test::make_temp_dir("ecu2mqtt-history-cli");
    std::vector<std::string> argv{"/bin/sh", "-c", "exec \"$0\" history \"$@\" 2>\"$ERR_FILE\"",
                                  ECU2MQTT_BINARY};
    argv.insert(argv.end(), args.begin(), args.end());
    auto environment = env;
    environment.push_back("ERR_FILE=" + (dir / "err.txt").string());
    test::ChildProcess p(argv, (dir / "out.txt").string(), environment);
    const auto status = p.wait_for(10s);
    Run r{status.value_or(-1), p.output(), test::read_file((dir / "err.txt").string())};
    std::filesystem::remove_all(dir);
    return r;
}

int lines(const std::string& text) {
    return static_cast<int>(std::count(text.begin(), text.end(), '\n'));
}

// The energy column summed over the daily rows (the header left out).
double energy_sum(const std::string& csv) {
    double sum = 0;
    std::stringstream in(csv);
    std::string line;
    std::getline(in, line);
    while (std::getline(in, line)) {
        const auto first = line.find(',');
        const auto second = line.find(',', first + 1);
        sum += std::stod(line.substr(second + 1));
    }
    return sum;
}

const std::string kDailyHeader = "ecu_id,date,energy_kwh,peak_power_w,readings,first_lifetime_kwh,"
                                 "last_lifetime_kwh,energy_basis\r\n";

} // namespace

TEST_CASE("history exports what a running service kept, beside it and after it stopped") {
    test::MosquittoBroker broker;
    const auto dir = test::make_temp_dir("ecu2mqtt-history-service");
    const auto state_dir = (dir / "state").string();
    auto service = std::make_unique<test::ServiceProcess>(broker.url(), dir / "state");
    test::UploadSpec spec = test::captured_upload_spec();
    int decikwh = 30000;
    for (const int minutes_ago : {30, 25, 20}) {
        spec.timestamp = test::utc_stamp(minutes_ago * 60, 300);
        spec.decikwh = decikwh;
        decikwh += 12;
        // Answered only once kept.
        REQUIRE(test::upload(service->port(), test::build_upload(spec)).size() == 17);
    }

    const auto daily = history({"--state-dir", state_dir});
    CHECK(daily.status == 0);
    CHECK(daily.err.empty());
    REQUIRE(daily.out.starts_with(kDailyHeader));
    CHECK_THAT(daily.out, Catch::Contains("216000064136,"));
    // One row, or two when the uploads straddle midnight; either way 3000.0 -> 3002.4 kWh.
    CHECK(energy_sum(daily.out) == Approx(2.4));

    const auto curve = history({"--state-dir", state_dir, "--curve", "--ecu", "216000064136"});
    CHECK(curve.status == 0);
    CHECK(curve.out.starts_with("ecu_id,time,power_w,lifetime_kwh\r\n"));
    CHECK(lines(curve.out) == 1 + 3);
    CHECK_THAT(curve.out, Catch::Contains(",190.0,3000.000\r\n"));

    const auto other = history({"--state-dir", state_dir, "--ecu", "216000000009"});
    CHECK(other.status == 0);
    CHECK(other.out == kDailyHeader);

    // Stopped (the write-ahead log folded into the database): the same export, the state
    // directory now found through the environment as the service finds it.
    service->process().signal(SIGTERM);
    REQUIRE(service->process().wait_for(10s) == 0);
    service.reset();
    const auto after = history({}, {"ECU2MQTT_STATE_DIR=" + state_dir});
    CHECK(after.status == 0);
    CHECK(after.out == daily.out);
    std::filesystem::remove_all(dir);
}

TEST_CASE("history: a bad option exits 2, a database it cannot read exits 1, stdout stays "
          "empty") {
    const auto dir = test::make_temp_dir("ecu2mqtt-history-errors");
    struct Case {
        std::vector<std::string> args;
        int status;
        std::string message;
    };
    std::ofstream(dir / "ecu2mqtt.db") << "this is not a database, only some text that is long "
                                          "enough to be read as a header of one";
    for (const auto& c : std::vector<Case>{
             {{"--from", "2024-13-01"},
              2,
              "--from: expected a date YYYY-MM-DD, got \"2024-13-01\""},
             {{"--from", "2024-06-02", "--to", "2024-06-01"}, 2, "is after --to"},
             {{"--days", "7"}, 2, "unknown option \"--days\""},
             {{"--ecu", "abc"}, 2, "--ecu: expected an ECU id of 12 digits"},
             {{"--state-dir", (dir / "missing").string()}, 1, "no database at"},
             {{"--state-dir", dir.string()}, 1, (dir / "ecu2mqtt.db").string()},
         }) {
        INFO(c.args.front());
        const auto r = history(c.args);
        CHECK(r.status == c.status);
        CHECK(r.out.empty());
        CHECK_THAT(r.err, Catch::StartsWith("ecu2mqtt: ") && Catch::Contains(c.message));
    }
    std::filesystem::remove_all(dir);
}

} // namespace test_history_cli
