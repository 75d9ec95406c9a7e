// The real binary feeding a stand-in PVOutput on loopback: statuses survive PVOutput being away
// and a restart of the service, and the API key appears nowhere but in the request header.
#include "support/eventually.hpp"
#include "support/fake_pvoutput.hpp"
#include "support/http_client.hpp"
#include "support/mosquitto_broker.hpp"
#include "support/net.hpp"
#include "support/service_process.hpp"
#include "support/test_paths.hpp"
#include "support/upload_builder.hpp"

#include <catch2/catch.hpp>
#include <csignal>
#include <nlohmann/json.hpp>

using namespace std::chrono_literals;
using nlohmann::json;

namespace test_pvoutput_binary {
namespace {

const std::string kKey = "k3y-7f1c9a52e0";
const std::string kSystem = "4242";

struct Sent {
    std::string stamp; // the ECU's YYYYMMDDhhmmss
    long long decikwh = 0;
    int centiwatts = 0;
};

std::string upload_of(const Sent& sent) {
    test::UploadSpec spec = test::captured_upload_spec();
    spec.timestamp = sent.stamp;
    spec.decikwh = sent.decikwh;
    spec.centiwatts = sent.centiwatts;
    return test::build_upload(spec);
}

// "system yyyymmdd hh:mm" of the five-minute status an upload stamped `stamp` fills.
std::string status_key(const std::string& stamp) {
    const int minute = std::stoi(stamp.substr(10, 2)) / 5 * 5;
    return kSystem + " " + stamp.substr(0, 8) + " " + stamp.substr(8, 2) + ":" +
           (minute < 10 ? "0" : "") + std::to_string(minute);
}

std::vector<std::string> service_args(const test::FakePvoutput& pvoutput, std::uint16_t http) {
    return {"--pvoutput-system-id", kSystem,         "--pvoutput-url",
            pvoutput.url(),         "--http-listen", "127.0.0.1:" + std::to_string(http)};
}

} // namespace

TEST_CASE("pvoutput, the real binary: statuses made while PVOutput is away reach it after a "
          "restart, with lifetime Wh and power, and the key is never shown") {
    test::MosquittoBroker broker;
    test::FakePvoutput pvoutput(kKey);
    const auto dir = test::make_temp_dir("ecu2mqtt-pvoutput-binary");
    const std::vector<std::string> env{"ECU2MQTT_PVOUTPUT_API_KEY=" + kKey};
    // Four uploads five minutes apart, the last five minutes ago: the first three intervals are
    // complete (a later upload began the next), the fourth waits for its successor.
    const std::vector<Sent> uploads{{test::utc_stamp(20 * 60), 21279, 19000},
                                    {test::utc_stamp(15 * 60), 21281, 25000},
                                    {test::utc_stamp(10 * 60), 21283, 31000},
                                    {test::utc_stamp(5 * 60), 21285, 28000}};
    std::string logs;

    pvoutput.set_down(true);
    {
        const auto http = test::free_port();
        test::ServiceProcess service(broker.url(), dir / "state", service_args(pvoutput, http),
                                     true, env);
        for (const auto& sent : uploads)
            REQUIRE(test::upload(service.port(), upload_of(sent)).size() == 17);
        // Tried, and PVOutput hung up without an answer.
        REQUIRE(service.process().wait_for_output("event=pvoutput_unreachable", 30s));
        CHECK(pvoutput.statuses().empty());
        service.process().signal(SIGTERM);
        REQUIRE(service.process().wait_for(15s) == 0);
        logs += service.log();
    }

    pvoutput.set_down(false);
    const auto http = test::free_port();
    test::ServiceProcess service(broker.url(), dir / "state", service_args(pvoutput, http), true,
                                 env);
    REQUIRE(test::eventually([&] { return pvoutput.statuses().size() >= 3; }, 60s));

    const auto statuses = pvoutput.statuses();
    CHECK(statuses.size() == 3);
    for (std::size_t i = 0; i < 3; ++i) {
        const auto status = statuses.find(status_key(uploads[i].stamp));
        REQUIRE(status != statuses.end());
        CHECK(status->second.cumulative);                        // c1=2: a lifetime counter
        CHECK(status->second.v1 == uploads[i].decikwh * 100);    // 0.1 kWh steps, in Wh
        CHECK(status->second.v2 == uploads[i].centiwatts / 100); // W
    }
    CHECK(statuses.count(status_key(uploads[3].stamp)) == 0); // its interval is not over yet

    // Marked as sent in the database, and nothing left but the interval still open.
    json pvo;
    REQUIRE(test::eventually(
        [&] {
            pvo = json::parse(test::http_get(http, "/api/status").body)["pvoutput"];
            return pvo["sent"] == 3;
        },
        10s));
    CHECK(pvo["rejected"] == 0);
    CHECK(pvo["expired"] == 0);
    CHECK(pvo["stopped"] == false);

    const auto page = test::http_get(http, "/").body;
    const auto status_json = test::http_get(http, "/api/status").body;
    const auto metrics = test::http_get(http, "/metrics").body;
    logs += service.log();
    CHECK(logs.find(kKey) == std::string::npos);
    CHECK(page.find(kKey) == std::string::npos);
    CHECK(status_json.find(kKey) == std::string::npos);
    CHECK(metrics.find(kKey) == std::string::npos);
}

} // namespace test_pvoutput_binary
