// A forged lifetime counter against the real binary and a real Mosquitto (issue 18's repro): the
// retained state, /metrics and `ecu2mqtt history` agree on the real counter, also after a restart.
#include "support/child_process.hpp"
#include "support/http_client.hpp"
#include "support/mosquitto_broker.hpp"
#include "support/mqtt_probe.hpp"
#include "support/net.hpp"
#include "support/service_process.hpp"
#include "support/store_probe.hpp"
#include "support/test_paths.hpp"
#include "support/upload_builder.hpp"

#include <catch2/catch.hpp>
#include <csignal>
#include <ctime>
#include <nlohmann/json.hpp>
#include <sstream>

using namespace std::chrono_literals;
using nlohmann::json;

namespace test_counter_integration {
namespace {

const std::string kEcu = "216000064136";
const std::string kState = "ecu2mqtt/" + kEcu + "/state";

// `seconds_ago` before now on whole minutes, UTC (the service runs with TZ=UTC): compact and ISO.
std::pair<std::string, std::string> stamps(std::int64_t seconds_ago) {
    std::time_t t = std::time(nullptr) - seconds_ago;
    t -= t % 60;
    std::tm tm{};
    gmtime_r(&t, &tm);
    char compact[16];
    char iso[24];
    std::strftime(compact, sizeof compact, "%Y%m%d%H%M%S", &tm);
    std::strftime(iso, sizeof iso, "%Y-%m-%dT%H:%M:%S", &tm);
    return {compact, iso};
}

// The captured upload (a YC600 and a QS1) stamped then, with this counter: answered once kept.
void upload(const test::ServiceProcess& service, const std::string& stamp, long long decikwh) {
    auto spec = test::captured_upload_spec();
    spec.timestamp = stamp;
    spec.decikwh = decikwh;
    REQUIRE(test::upload(service.port(), test::build_upload(spec)).size() == 17);
}

std::string metric_value(const std::string& metrics, const std::string& series) {
    const auto at = metrics.find("\n" + series + " ");
    REQUIRE(at != std::string::npos);
    const auto start = at + series.size() + 2;
    return metrics.substr(start, metrics.find('\n', start) - start);
}

std::string history(const std::filesystem::path& state_dir, const std::vector<std::string>& args) {
    const auto out = state_dir.parent_path() / "history.csv";
    std::vector<std::string> argv{ECU2MQTT_BINARY, "history", "--state-dir", state_dir.string()};
    argv.insert(argv.end(), args.begin(), args.end());
    test::ChildProcess p(argv, out.string());
    REQUIRE(p.wait_for(10s) == 0);
    return p.output();
}

} // namespace

TEST_CASE("counter: one forged 999999.9 kWh upload: state, metrics and history keep the real "
          "counter, also after a restart") {
    test::MosquittoBroker broker;
    const auto dir = test::make_temp_dir("ecu2mqtt-counter");
    const auto state_dir = dir / "state";
    const auto http_port = test::free_port();
    const std::vector<std::string> args{"--http-listen", "127.0.0.1:" + std::to_string(http_port)};
    auto service = std::make_unique<test::ServiceProcess>(broker.url(), state_dir, args);

    // Three real uploads at 1000.0 to 1000.2 kWh, then the forged one from the same peer with a
    // plausible newer timestamp, then real ones again at 1000.5 to 1000.7 kWh.
    std::int64_t ago = 50 * 60;
    for (const long long decikwh : {10000, 10001, 10002}) {
        upload(*service, stamps(ago).first, decikwh);
        ago -= 300;
    }
    upload(*service, stamps(ago + 120).first, 9999999);
    CHECK(service->process().wait_for_output("event=upload_counter_suspect ecu=" + kEcu, 5s));
    for (const long long decikwh : {10005, 10006, 10007}) {
        upload(*service, stamps(ago).first, decikwh);
        ago -= 300;
    }
    CHECK(service->log().find("lifetime_energy_went_down") == std::string::npos);
    // Its bytes are kept, as a clock-suspect upload's are.
    CHECK(test::wait_for_number(state_dir,
                                "SELECT count(*) FROM raw_messages WHERE why = "
                                "'counter-suspect lifetime 999999.90 kWh'",
                                1) == 1);

    service->process().signal(SIGTERM);
    REQUIRE(service->process().wait_for(10s) == 0);
    service = std::make_unique<test::ServiceProcess>(broker.url(), state_dir, args);
    const auto [last_stamp, last_iso] = stamps(ago);
    upload(*service, last_stamp, 10009);

    test::MqttProbe probe(broker.url(), kState);
    const auto state = probe.wait_for_payload(
        kState, [&](const std::string& p) { return json::parse(p)["timestamp"] == last_iso; });
    REQUIRE(state);
    // A subscriber arriving now gets it retained (the probe above may have been there first and
    // got it live).
    test::MqttProbe late(broker.url(), kState, "late");
    const auto retained = late.wait_for_payload(
        kState, [&](const std::string& p) { return json::parse(p)["timestamp"] == last_iso; });
    REQUIRE(retained);
    CHECK(retained->retained);
    const auto payload = json::parse(state->payload);
    CHECK(payload["lifetime_energy_kwh"] == Approx(1000.9));
    const bool one_day = stamps(50 * 60).first.substr(0, 8) == last_stamp.substr(0, 8);
    if (one_day) // today's energy counts from the first reading of the day
        CHECK(payload["today_energy_kwh"] == Approx(0.9));
    else
        CHECK(payload["today_energy_kwh"].get<double>() <= 0.9 + 1e-9);

    const auto metrics = test::http_get(http_port, "/metrics").body;
    CHECK(std::stod(metric_value(metrics, "ecu2mqtt_ecu_lifetime_energy_joules{ecu=\"" + kEcu +
                                              "\"}")) == Approx(1000.9 * 3.6e6));

    const auto daily = history(state_dir, {"--ecu", kEcu});
    CHECK(daily.find("999999") == std::string::npos);
    CHECK(daily.find(",1000.900,") != std::string::npos); // the last lifetime of the day
    double energy = 0;
    std::stringstream rows(daily);
    std::string line;
    std::getline(rows, line);
    while (std::getline(rows, line)) {
        const auto first = line.find(',');
        const auto second = line.find(',', first + 1);
        energy += std::stod(line.substr(second + 1));
    }
    CHECK(energy == Approx(0.9));
    const auto curve = history(state_dir, {"--ecu", kEcu, "--curve"});
    CHECK(curve.find("999999") == std::string::npos);
    std::filesystem::remove_all(dir);
}

} // namespace test_counter_integration
