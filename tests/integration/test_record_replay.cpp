// --record keeps every message with its reply; `ecu2mqtt replay` sent to a fresh service
// reproduces the same MQTT state.
#include "ecu2mqtt/app/recorder.hpp"
#include "support/mqtt_probe.hpp"
#include "support/service_process.hpp"
#include "support/test_paths.hpp"
#include "support/upload_builder.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

using namespace std::chrono_literals;
using nlohmann::json;

namespace test_record_replay {
namespace {

// The newest ecu2mqtt state of every device at a broker once the ECU state for `final_timestamp`
// is there, without the receive time that differs between runs.
std::map<std::string, json> settled_states(const test::MosquittoBroker& broker,
                                           const std::string& final_timestamp) {
    test::MqttProbe probe(broker.url(), "ecu2mqtt/216000064136/#", "snapshot");
    REQUIRE(probe.wait_for_payload("ecu2mqtt/216000064136/state", [&](const std::string& p) {
        return json::parse(p)["timestamp"] == final_timestamp;
    }));
    std::map<std::string, json> states;
    for (const auto& m : probe.messages())
        if (m.topic.ends_with("/state")) {
            auto j = json::parse(m.payload);
            j.erase("last_seen");
            states[m.topic] = j; // later messages replace earlier ones
        }
    return states;
}

} // namespace

TEST_CASE("a recording replayed into a fresh service reproduces the same MQTT state") {
    const auto dir = test::make_temp_dir("ecu2mqtt-replay");
    std::map<std::string, json> original;
    std::uint16_t recorded_port = 0;
    {
        test::MosquittoBroker broker;
        test::ServiceProcess service(broker.url(), dir / "a", {"--record", (dir / "rec").string()});
        recorded_port = service.port();
        auto spec = test::captured_upload_spec();
        for (int minute = 0; minute < 3; ++minute) {
            spec.timestamp = "2024020611" + test::zero_padded(20 + minute * 5, 2) + "14";
            spec.decikwh = 21279 + minute;
            spec.inverters[1].channels[0].watts = 29 + minute;
            REQUIRE(test::upload(service.port(), test::build_upload(spec)).size() == 17);
        }
        std::string bad = test::captured_upload();
        bad[140] = 'x';
        REQUIRE(test::upload(service.port(), bad).size() == 17); // kept in the recording too
        original = settled_states(broker, "2024-02-06T11:30:14");
        CHECK(original.size() == 3);
    }
    std::vector<std::filesystem::path> files;
    for (const auto& entry : std::filesystem::directory_iterator(dir / "rec"))
        files.push_back(entry.path());
    REQUIRE(files.size() == 1);
    CHECK(files[0].filename().string().starts_with("ecu2mqtt-"));
    const std::string recording = test::read_file(files[0].string());
    std::stringstream lines(recording);
    std::string line;
    std::vector<ecu2mqtt::RecordedMessage> recorded;
    while (std::getline(lines, line))
        recorded.push_back(ecu2mqtt::parse_recording_line(line));
    REQUIRE(recorded.size() == 4);
    CHECK(recorded[0].port == recorded_port);
    CHECK(recorded[0].reply.value_or("") == "10120240206111514");
    CHECK(recorded[3].message[140] == 'x');
    CHECK(recorded[3].peer.starts_with("127.0.0.1:"));

    test::MosquittoBroker fresh_broker;
    test::ServiceProcess fresh(fresh_broker.url(), dir / "b");
    test::ChildProcess replay({ECU2MQTT_BINARY, "replay", "--speed", "0", "--port",
                               std::to_string(fresh.port()), files[0].string()},
                              (dir / "replay.txt").string());
    REQUIRE(replay.wait_for(20s) == 0);
    CHECK_THAT(replay.output(),
               Catch::Contains(
                   "replayed 4 messages: 4 replies as recorded, 0 different, 0 not delivered"));
    CHECK(settled_states(fresh_broker, "2024-02-06T11:30:14") == original);
    std::filesystem::remove_all(dir);
}

TEST_CASE("recording lines keep binary bytes losslessly") {
    const std::string binary("APS18\x00\xff\x80garbage END\n", 19);
    const auto line = ecu2mqtt::recording_line("2024-02-06T11:22:20+01:00", 8996, "10.0.0.2:1",
                                               binary, std::nullopt);
    CHECK(line.contains("message_base64"));
    CHECK(line["reply"].is_null());
    const auto back = ecu2mqtt::parse_recording_line(line.dump());
    CHECK(back.message == binary);
    CHECK_FALSE(back.reply);
    CHECK(back.port == 8996);
    CHECK_THROWS_AS(ecu2mqtt::parse_recording_line("{\"time\": 1}"), std::invalid_argument);
}

TEST_CASE("a simulated day in accelerated time: every upload answered, daily energy as produced") {
    const auto dir = test::make_temp_dir("ecu2mqtt-sim");
    test::MosquittoBroker broker;
    test::MqttProbe probe(broker.url(), "ecu2mqtt/+/state");
    test::ServiceProcess service(broker.url(), dir / "state", {"--log-level", "info"});
    test::ChildProcess sim({ECU2MQTT_SIM_BINARY, "--ports", std::to_string(service.port()),
                            "--ecus", "2", "--inverters", "3", "--models", "806,408", "--start",
                            "2024-06-21T00:00:00", "--hours", "24"},
                           (dir / "sim.json").string());
    REQUIRE(sim.wait_for(60s) == 0);
    const auto summary = json::parse(sim.output());
    CHECK(summary["uploads"] == 2 * 192); // 05:00 to 20:55 every five minutes
    CHECK(summary["answered"] == summary["uploads"]);
    for (const auto& ecu : summary["ecus"]) {
        const std::string topic = "ecu2mqtt/" + ecu["id"].get<std::string>() + "/state";
        const auto last = probe.wait_for_payload(
            topic,
            [](const std::string& p) {
                return json::parse(p)["timestamp"] == "2024-06-21T20:55:00";
            },
            30s);
        REQUIRE(last);
        const double published = json::parse(last->payload)["today_energy_kwh"];
        const double produced = ecu["produced_kwh_by_day"]["2024-06-21"];
        INFO(ecu["id"] << ": published " << published << " kWh, produced " << produced << " kWh");
        CHECK(produced > 10);
        // The lifetime counter the ECU reports has 0.1 kWh steps.
        CHECK(std::abs(published - produced) < 0.1);
    }
    std::filesystem::remove_all(dir);
}

} // namespace test_record_replay
