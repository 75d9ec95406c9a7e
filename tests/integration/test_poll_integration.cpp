// Polling port 8899 through the real binaries: ecu2mqtt --poll-ecus auto against ecu2mqtt-sim's
// simulated ECU (uploads and port 8899 from one loopback address), with a real Mosquitto.
#include "support/http_client.hpp"
#include "support/local_api_server.hpp"
#include "support/mqtt_probe.hpp"
#include "support/service_process.hpp"
#include "support/temp_dir.hpp"
#include "support/upload_builder.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <random>
#include <thread>

using namespace std::chrono_literals;
using nlohmann::json;

namespace test_poll_integration {
namespace {

const std::string kEcu = "216000000001";

// A loopback address of its own per run (127.0.0.0/8 is all loopback), so that port 8899 there
// is free even while other tests run side by side.
std::string own_loopback_address() {
    std::random_device random;
    std::uniform_int_distribution<int> byte(2, 254);
    return "127." + std::to_string(byte(random)) + "." + std::to_string(byte(random)) + "." +
           std::to_string(byte(random));
}

// One upload per real second for 12 s (simulated minutes, dated today), from `address`, with
// port 8899 served there.
std::vector<std::string> sim_args(std::uint16_t service_port, const std::string& address,
                                  std::vector<std::string> fault = {}) {
    const auto today = test::today_utc();
    std::vector<std::string> args{ECU2MQTT_SIM_BINARY,
                                  "--ports",
                                  std::to_string(service_port),
                                  "--from",
                                  address,
                                  "--local-api",
                                  address,
                                  "--models",
                                  "806,501",
                                  "--start",
                                  today.substr(0, 4) + "-" + today.substr(4, 2) + "-" +
                                      today.substr(6, 2) + "T10:00:00",
                                  "--interval",
                                  "60",
                                  "--speed",
                                  "60",
                                  "--hours",
                                  "0.2"};
    args.insert(args.end(), fault.begin(), fault.end());
    return args;
}

// A simulated ECU port 8899 on 127.0.0.1, served on a thread of its own.
struct ServedLocalApi {
    boost::asio::io_context io;
    boost::asio::executor_work_guard<boost::asio::io_context::executor_type> guard =
        boost::asio::make_work_guard(io);
    test::LocalApiServer ecu{io};
    std::thread serving{[this] { io.run(); }};
    ~ServedLocalApi() {
        io.stop();
        serving.join();
    }
};

} // namespace

TEST_CASE("poll auto: the simulated ECU is found from its uploads, and firmware, time zone and "
          "signal levels reach Mosquitto and the discovery configs",
          "[poll_integration]") {
    // Also when the firmware drops the trailing END\n: the reply is read to the ECU's close.
    const auto ending = GENERATE(std::vector<std::string>{},
                                 std::vector<std::string>{"--local-api-fault", "no-end"});
    test::TempDir dir("ecu2mqtt-poll");
    test::MosquittoBroker broker;
    test::MqttProbe probe(broker.url(), "#");
    test::ServiceProcess service(broker.url(), dir.path / "state",
                                 {"--log-level", "info", "--poll-ecus", "auto"});
    const auto address = own_loopback_address();
    test::ChildProcess sim(sim_args(service.port(), address, ending),
                           (dir.path / "sim.json").string());

    CHECK(service.process().wait_for_output("event=poll_ecu_found", 5s));
    CHECK_THAT(service.log(), Catch::Contains(address));
    const auto ecu_state = probe.wait_for_payload(
        "ecu2mqtt/" + kEcu + "/state",
        [](const std::string& p) { return json::parse(p).contains("firmware"); }, 15s);
    REQUIRE(ecu_state);
    const auto state = json::parse(ecu_state->payload);
    CHECK(state["firmware"] == "ECU_R_1.3.6C");
    CHECK(state["time_zone"] == "Europe/Amsterdam");
    CHECK(state["inverters_registered"] == 2);
    // The inverter keys come with the next upload.
    const auto inverter_state = probe.wait_for(
        [](const test::Received& m) {
            return m.topic.starts_with("ecu2mqtt/" + kEcu + "/") && m.topic.ends_with("/state") &&
                   m.topic != "ecu2mqtt/" + kEcu + "/state" &&
                   json::parse(m.payload).contains("signal_level");
        },
        10s);
    REQUIRE(inverter_state);
    const auto level = json::parse(inverter_state->payload)["signal_level"];
    CHECK(level.get<int>() >= 0);
    CHECK(level.get<int>() <= 255);
    CHECK(probe.wait_for(
        [](const test::Received& m) {
            return m.topic.starts_with("homeassistant/") &&
                   m.payload.find("\"sw_version\":\"ECU_R_1.3.6C\"") != std::string::npos;
        },
        5s));
    CHECK(probe.wait_for(
        [](const test::Received& m) {
            return m.topic.starts_with("homeassistant/") &&
                   m.payload.find("\"Signal level\"") != std::string::npos;
        },
        5s));

    REQUIRE(sim.wait_for(30s) == 0);
    const auto summary = json::parse(sim.output());
    CHECK(summary["answered"] == summary["uploads"]);
    CHECK(summary["local_api_requests"] == 3); // one poll: the three read-only requests
    CHECK_THAT(service.log(), !Catch::Contains("event=poll_failed"));
}

TEST_CASE("poll auto, port 8899 misbehaving: a logged poll failure and backoff, while every "
          "upload is answered at once and published",
          "[poll_integration]") {
    const auto fault = GENERATE(std::vector<std::string>{"--local-api-fault", "refuse"},
                                std::vector<std::string>{"--local-api-fault", "silent"},
                                std::vector<std::string>{"--local-api-fault", "truncate"},
                                std::vector<std::string>{"--local-api-wedge-after", "0"});
    INFO("sim " << fault[0] << " " << fault[1]);
    test::TempDir dir("ecu2mqtt-poll");
    test::MosquittoBroker broker;
    test::MqttProbe probe(broker.url(), "ecu2mqtt/" + kEcu + "/state");
    test::ServiceProcess service(
        broker.url(), dir.path / "state",
        {"--log-level", "info", "--poll-ecus", "auto", "--poll-timeout", "3"});
    test::ChildProcess sim(sim_args(service.port(), own_loopback_address(), fault),
                           (dir.path / "sim.json").string());

    // The first poll comes 5 s after the first upload; a silent ECU holds it for the 3 s timeout,
    // while the simulator goes on uploading once a second.
    CHECK(service.process().wait_for_output("event=poll_failed", 12s));
    CHECK(service.process().wait_for_output("event=poll_backoff", 1s));
    REQUIRE(sim.wait_for(30s) == 0);
    const auto summary = json::parse(sim.output());
    CHECK(summary["uploads"] == 13);
    CHECK(summary["answered"] == summary["uploads"]);
    // Answered as without polling: far below the 3 s that the silent poll is held open.
    CHECK(summary["slowest_reply_ms"].get<int>() < 1000);
    const auto last = probe.wait_for_payload(
        "ecu2mqtt/" + kEcu + "/state",
        [](const std::string& p) {
            return json::parse(p)["timestamp"].get<std::string>().ends_with("T10:12:00");
        },
        5s);
    REQUIRE(last);
    CHECK_FALSE(json::parse(last->payload).contains("firmware")); // a failed poll adds nothing
}

TEST_CASE("poll: an address answering as an ECU that another polled address uploads from feeds "
          "nothing to it",
          "[poll_integration]") {
    // A stand-in on 127.0.0.1 answering ECU info as the simulated ECU, with another time zone
    // (Etc/GMT-8) than the simulated ECU's own (Europe/Amsterdam).
    ServedLocalApi served;
    auto& impostor = served.ecu;

    test::TempDir dir("ecu2mqtt-poll");
    test::MosquittoBroker broker;
    test::MqttProbe probe(broker.url(), "ecu2mqtt/" + kEcu + "/state");
    const auto address = own_loopback_address();
    test::ServiceProcess service(broker.url(), dir.path / "state",
                                 {"--log-level", "info", "--poll-ecus",
                                  address + ",127.0.0.1:" + std::to_string(impostor.port()),
                                  "--poll-timeout", "3"});
    test::ChildProcess sim(sim_args(service.port(), address), (dir.path / "sim.json").string());

    CHECK(service.process().wait_for_output(
        "answered as ECU " + kEcu + ", which is polled at " + address + ":8899", 15s));
    // The ECU's own answer still comes through.
    CHECK(probe.wait_for_payload(
        "ecu2mqtt/" + kEcu + "/state",
        [](const std::string& p) { return json::parse(p).contains("time_zone"); }, 10s));
    REQUIRE(sim.wait_for(30s) == 0);
    for (const auto& m : probe.messages()) {
        const auto state = json::parse(m.payload);
        if (state.contains("time_zone"))
            CHECK(state["time_zone"] == "Europe/Amsterdam");
    }
    CHECK_THAT(service.log(), Catch::Contains("event=poll_ecu_tied ecu=" + kEcu));
}

TEST_CASE("poll auto: a copy of an ECU's upload sent from another address does not move its polls",
          "[poll_integration]") {
    test::TempDir dir("ecu2mqtt-poll");
    test::MosquittoBroker broker;
    const auto http = test::free_port();
    test::ServiceProcess service(broker.url(), dir.path / "state",
                                 {"--log-level", "info", "--poll-ecus", "auto", "--poll-timeout",
                                  "3", "--http-listen", "127.0.0.1:" + std::to_string(http)});
    const auto ecu_address = own_loopback_address();
    auto other_address = own_loopback_address();
    while (other_address == ecu_address)
        other_address = own_loopback_address();
    const auto upload_at = [](int minutes_ago) {
        auto spec = test::captured_upload_spec();
        spec.ecu_id = kEcu;
        spec.timestamp = test::utc_stamp(minutes_ago * 60);
        return test::build_upload(spec);
    };
    const auto polled_at = [&] {
        const auto status = json::parse(test::http_get(http, "/api/status").body);
        for (const auto& ecu : status["ecus"])
            if (ecu["id"] == kEcu)
                return ecu["poll_state"].get<std::string>();
        return std::string("no such ECU");
    };

    const auto first = upload_at(10);
    REQUIRE(test::upload_from(ecu_address, service.port(), first).size() == 17);
    REQUIRE(service.process().wait_for_output("event=poll_ecu_found", 5s));
    CHECK_THAT(polled_at(), Catch::Contains("port 8899 at " + ecu_address + " "));

    // Another device on the LAN sends a copy: answered as a repeat, and the polls stay.
    REQUIRE(test::upload_from(other_address, service.port(), first).size() == 17);
    CHECK_THAT(polled_at(), Catch::Contains("port 8899 at " + ecu_address + " "));

    // A new reading from the other address is the ECU itself on a new lease: its polls follow.
    REQUIRE(test::upload_from(other_address, service.port(), upload_at(5)).size() == 17);
    CHECK(service.process().wait_for_output(
        "event=poll_ecu_moved ecu=" + kEcu + " from=" + ecu_address + " to=" + other_address, 5s));
    CHECK_THAT(polled_at(), Catch::Contains("port 8899 at " + other_address + " "));
}

TEST_CASE("poll: after a restart a changed time zone is held back like any other change",
          "[poll_integration]") {
    ServedLocalApi served;
    test::TempDir dir("ecu2mqtt-poll");
    test::MosquittoBroker broker;
    const std::vector<std::string> args{
        "--poll-ecus", "127.0.0.1:" + std::to_string(served.ecu.port()), "--poll-timeout", "3"};
    const auto upload_at = [](int minutes_ago) {
        auto spec = test::captured_upload_spec();
        spec.ecu_id = kEcu;
        spec.timestamp = test::utc_stamp(minutes_ago * 60);
        return test::build_upload(spec);
    };
    const auto zone_of = [](const test::Received& m) {
        const auto state = json::parse(m.payload);
        return state.contains("time_zone") ? state["time_zone"].get<std::string>() : "";
    };
    const auto state_topic = "ecu2mqtt/" + kEcu + "/state";
    {
        test::ServiceProcess service(broker.url(), dir.path / "state", args);
        test::MqttProbe probe(broker.url(), state_topic);
        REQUIRE(test::upload(service.port(), upload_at(10)).size() == 17);
        const auto polled =
            probe.wait_for([&](const test::Received& m) { return zone_of(m) == "Etc/GMT-8"; }, 15s);
        REQUIRE(polled);
    } // stopped: the polled facts stay with the ECU's state

    // The ECU now says another zone: after the restart as before it, one poll is not enough.
    served.ecu.set_reply("0001",
                         test::ecu_info_with_zone(served.ecu.reply("0001"), "Asia/Shanghai"));
    test::ServiceProcess service(broker.url(), dir.path / "state", args);
    REQUIRE(service.process().wait_for_output("event=time_zone_changed ecu=" + kEcu, 15s));
    test::MqttProbe probe(broker.url(), state_topic);
    REQUIRE(test::upload(service.port(), upload_at(5)).size() == 17);
    const auto newest = probe.wait_for( // the state of that upload, with the polled keys
        [&](const test::Received& m) { return !m.retained && !zone_of(m).empty(); }, 10s);
    REQUIRE(newest);
    CHECK(zone_of(*newest) == "Etc/GMT-8");
    CHECK_THAT(service.log(), !Catch::Contains("event=time_zone_change_taken"));
}

} // namespace test_poll_integration
