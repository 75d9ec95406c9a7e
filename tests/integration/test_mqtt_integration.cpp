// The real binary publishing to a real Mosquitto, checked by a real subscriber.
#include "ecu2mqtt/protocol/local_time.hpp"
#include "support/mqtt_probe.hpp"
#include "support/service_process.hpp"
#include "support/store_probe.hpp"
#include "support/test_paths.hpp"
#include "support/upload_builder.hpp"

#include <catch2/catch.hpp>
#include <ctime>
#include <nlohmann/json.hpp>
#include <regex>

using namespace std::chrono_literals;
using nlohmann::json;

namespace test_mqtt_integration {
namespace {

const std::string kEcu = "216000064136";
const std::string kEcuState = "ecu2mqtt/" + kEcu + "/state";
const std::string kYc600State = "ecu2mqtt/" + kEcu + "/408000111178/state";
const std::string kQs1State = "ecu2mqtt/" + kEcu + "/806000011223/state";
const std::string kBridge = "ecu2mqtt/bridge/state";
constexpr std::size_t kConfigsForCapture = 3; // one device each: ECU, YC600, QS1

bool is_config(const test::Received& m) {
    return m.topic.starts_with("homeassistant/") && m.topic.ends_with("/config");
}

// A test's own broker, state directory and subscriber on everything.
struct Bench {
    Bench() : state_dir(test::make_temp_dir("ecu2mqtt-it") / "state") {}
    ~Bench() {
        std::error_code ec;
        std::filesystem::remove_all(state_dir.parent_path(), ec);
    }
    test::MosquittoBroker broker;
    std::filesystem::path state_dir;
};

json payload_of(const std::optional<test::Received>& m) {
    REQUIRE(m);
    return json::parse(m->payload);
}

} // namespace

TEST_CASE("an upload becomes discovery, state and availability at a real subscriber") {
    Bench bench;
    test::MqttProbe probe(bench.broker.url(), "#");
    test::ServiceProcess service(bench.broker.url(), bench.state_dir);
    REQUIRE(test::upload(service.port(), test::captured_upload()) == "10120240206111714");

    const auto ecu = payload_of(probe.wait_for_topic(kEcuState));
    // The values the capture's own header states.
    CHECK(ecu["id"] == kEcu);
    CHECK(ecu["model"] == "ECU-R");
    CHECK(ecu["power_w"] == 190.0);
    CHECK(ecu["lifetime_energy_kwh"] == 2127.9);
    CHECK(ecu["inverters_online"] == 2);
    CHECK(ecu["timestamp"] == "2024-02-06T11:22:14");
    CHECK(ecu["today_energy_kwh"] == 0.0);
    CHECK(std::regex_match(ecu["last_seen"].get<std::string>(),
                           std::regex(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d)")));

    const auto qs1 = payload_of(probe.wait_for_topic(kQs1State));
    CHECK(qs1["model"] == "QS1");
    CHECK(qs1["power_w"] == 155.0);
    CHECK(qs1["temperature_c"] == 15.0);
    CHECK(qs1["frequency_hz"] == 50.0);
    CHECK(qs1["ch3_voltage_v"] == 33.4);
    CHECK(qs1["ch3_current_a"] == 1.4);
    CHECK(qs1["ch3_power_w"] == 45.0);
    CHECK(qs1["reporting"] == true);
    const auto yc600 = payload_of(probe.wait_for_topic(kYc600State));
    CHECK(yc600["ch1_voltage_v"] == 33.8);
    CHECK_FALSE(yc600.contains("ch3_voltage_v"));

    CHECK(probe.wait_for_payload("ecu2mqtt/" + kEcu + "/availability",
                                 [](auto& p) { return p == "online"; }));
    CHECK(probe.wait_for_payload("ecu2mqtt/" + kEcu + "/806000011223/availability",
                                 [](auto& p) { return p == "online"; }));
    CHECK(probe.wait_for_payload(kBridge, [](auto& p) { return p == "online"; }));

    REQUIRE(probe.wait_for_count(is_config, kConfigsForCapture));
    std::map<std::string, json> configs;
    for (const auto& m : probe.messages())
        if (is_config(m))
            configs[m.topic] = json::parse(m.payload); // every payload parses
    CHECK(configs.size() == kConfigsForCapture);
    const auto& ecu_device = configs.at("homeassistant/device/ecu2mqtt_" + kEcu + "/config");
    CHECK(ecu_device["state_topic"] == kEcuState);
    const auto& lifetime = ecu_device["cmps"]["lifetime_energy"];
    CHECK(lifetime["p"] == "sensor");
    CHECK(lifetime["device_class"] == "energy");
    CHECK(lifetime["state_class"] == "total_increasing");
    CHECK(lifetime["unit_of_measurement"] == "kWh");
    const auto& qs1_device = configs.at("homeassistant/device/ecu2mqtt_806000011223/config");
    const auto& voltage = qs1_device["cmps"]["ch4_voltage"];
    CHECK(voltage["device_class"] == "voltage");
    CHECK(voltage["unit_of_measurement"] == "V");
    CHECK(voltage["state_class"] == "measurement");
    CHECK(qs1_device["device"]["via_device"] == "ecu2mqtt_" + kEcu);
    CHECK(qs1_device["state_topic"] == kQs1State);
    const auto& yc600_device = configs.at("homeassistant/device/ecu2mqtt_408000111178/config");
    CHECK(yc600_device["cmps"]["temperature"]["unit_of_measurement"] == "\xC2\xB0"
                                                                        "C");
    for (const auto& [topic, config] : configs) {
        const json& state = config["state_topic"] == kEcuState   ? ecu
                            : config["state_topic"] == kQs1State ? qs1
                                                                 : yc600;
        for (const auto& [object, component] : config["cmps"].items()) {
            INFO(topic << " " << object);
            // The value template must point at a key the state payload really has.
            const std::string tmpl = component["value_template"];
            const std::string key = tmpl.substr(14, tmpl.size() - 17);
            CHECK(state.contains(key));
        }
    }

    SECTION("everything but raw is retained: a late subscriber gets it all at once") {
        test::MqttProbe late(bench.broker.url(), "#", "late");
        REQUIRE(late.wait_for_topic(kQs1State));
        REQUIRE(late.wait_for_count(is_config, kConfigsForCapture));
        for (const auto& m : late.messages()) {
            INFO(m.topic);
            CHECK(m.retained);
        }
    }

    SECTION("a config is not re-sent with every upload; Home Assistant's restart re-sends all") {
        auto next = test::captured_upload_spec();
        next.timestamp = "20240206112714";
        next.centiwatts = 20000;
        next.inverters[0].channels[0].watts = 27;
        probe.clear();
        REQUIRE(test::upload(service.port(), test::build_upload(next)) == "10120240206112214");
        CHECK(payload_of(probe.wait_for_payload(kEcuState, [](auto& p) {
                  return p.find("200.0") != std::string::npos;
              }))["power_w"] == 200.0);
        CHECK(payload_of(probe.wait_for_topic(kYc600State))["ch1_power_w"] == 27.0);
        std::this_thread::sleep_for(200ms);
        CHECK(probe.count(is_config) == 0);

        probe.publish("homeassistant/status", "online");
        REQUIRE(probe.wait_for_count(is_config, kConfigsForCapture));
        CHECK(probe.wait_for_topic(kEcuState)); // and the states after them
    }
}

TEST_CASE("the last will says offline when the service is killed - SIGTERM says it too") {
    Bench bench;
    test::MqttProbe probe(bench.broker.url(), kBridge);
    {
        test::ServiceProcess service(bench.broker.url(), bench.state_dir);
        REQUIRE(probe.wait_for_payload(kBridge, [](auto& p) { return p == "online"; }));
        probe.clear();
        service.process().signal(SIGKILL);
        const auto offline = probe.wait_for_payload(
            kBridge, [](auto& p) { return p == "offline"; }, 10s);
        REQUIRE(offline);
    }
    {
        test::ServiceProcess service(bench.broker.url(), bench.state_dir);
        REQUIRE(probe.wait_for_payload(kBridge, [](auto& p) { return p == "online"; }));
        probe.clear();
        service.process().signal(SIGTERM);
        CHECK(service.process().wait_for(2s) == 0);
        CHECK(probe.wait_for_payload(kBridge, [](auto& p) { return p == "offline"; }));
    }
    test::MqttProbe late(bench.broker.url(), kBridge, "late");
    const auto retained = late.wait_for_topic(kBridge);
    REQUIRE(retained);
    CHECK(retained->payload == "offline");
    CHECK(retained->retained);
}

TEST_CASE("a broker that is down at start gets the data when it comes up - the ECU is answered "
          "meanwhile") {
    Bench bench;
    bench.broker.stop();
    test::ServiceProcess service(bench.broker.url(), bench.state_dir);
    CHECK(test::upload(service.port(), test::captured_upload()) == "10120240206111714");
    CHECK(service.process().wait_for_output("event=mqtt_connect_failed", 5s));
    bench.broker.start();
    test::MqttProbe probe(bench.broker.url(), "ecu2mqtt/#");
    const auto ecu = payload_of(probe.wait_for_topic(kEcuState, 15s));
    CHECK(ecu["power_w"] == 190.0);
    CHECK(probe.wait_for_topic(kQs1State));
}

TEST_CASE("a wrong password gives a clear error and the ECU is still answered") {
    test::MosquittoBroker broker("ecu", "right");
    const auto dir = test::make_temp_dir("ecu2mqtt-it");
    test::ServiceProcess service(broker.url(), dir / "state",
                                 {"--mqtt-user", "ecu", "--mqtt-password", "not-the-pw-123"});
    CHECK(service.process().wait_for_output("event=mqtt_connect_failed", 5s));
    CHECK(test::upload(service.port(), test::captured_upload()) == "10120240206111714");
    const auto log = service.log();
    CHECK((log.find("not authorized") != std::string::npos ||
           log.find("bad user name or password") != std::string::npos));
    CHECK(log.find("not-the-pw-123") == std::string::npos);
    std::filesystem::remove_all(dir);
}

TEST_CASE("the right password connects and is never logged") {
    test::MosquittoBroker broker("ecu", "s3cret-pw");
    const auto dir = test::make_temp_dir("ecu2mqtt-it");
    test::ServiceProcess service(broker.url(), dir / "state",
                                 {"--mqtt-user", "ecu", "--mqtt-password", "s3cret-pw"});
    CHECK(service.process().wait_for_output("event=mqtt_connected", 5s));
    CHECK(service.log().find("s3cret-pw") == std::string::npos);
    std::filesystem::remove_all(dir);
}

TEST_CASE("night: an inverter missing from an upload reports 0 W and stays available") {
    Bench bench;
    test::MqttProbe probe(bench.broker.url(), "ecu2mqtt/#");
    test::ServiceProcess service(bench.broker.url(), bench.state_dir);
    REQUIRE(test::upload(service.port(), test::captured_upload()) == "10120240206111714");
    REQUIRE(probe.wait_for_topic(kEcuState)); // published after the inverters'
    test::UploadSpec night;
    night.decikwh = 21290;
    night.timestamp = "20240206230000";
    probe.clear();
    REQUIRE(test::upload(service.port(), test::build_upload(night)) == "10120240206225500");
    const auto qs1 = payload_of(probe.wait_for_topic(kQs1State));
    CHECK(qs1["reporting"] == false);
    CHECK(qs1["power_w"] == 0.0);
    CHECK(qs1["ch4_power_w"] == 0.0);
    CHECK(qs1["ch4_voltage_v"].is_null());
    const auto ecu = payload_of(probe.wait_for_topic(kEcuState));
    CHECK(ecu["power_w"] == 0.0);
    CHECK(ecu["lifetime_energy_kwh"] == 2129.0);
    CHECK(ecu["today_energy_kwh"] == Approx(1.1));
    std::this_thread::sleep_for(200ms);
    CHECK(probe.count([](const test::Received& m) { return m.payload == "offline"; }) == 0);
}

TEST_CASE("an ECU silent past --ecu-timeout goes offline, and online again with its next upload") {
    Bench bench;
    test::MqttProbe probe(bench.broker.url(), "ecu2mqtt/#");
    test::ServiceProcess service(bench.broker.url(), bench.state_dir, {"--ecu-timeout", "1"});
    const std::string availability = "ecu2mqtt/" + kEcu + "/availability";
    REQUIRE(test::upload(service.port(), test::captured_upload()) == "10120240206111714");
    REQUIRE(probe.wait_for_payload(availability, [](auto& p) { return p == "online"; }));
    CHECK(probe.wait_for_payload(
        availability, [](auto& p) { return p == "offline"; }, 5s));
    CHECK(probe.wait_for_payload("ecu2mqtt/" + kEcu + "/806000011223/availability",
                                 [](auto& p) { return p == "offline"; }));
    probe.clear();
    auto later = test::captured_upload_spec();
    later.timestamp = "20240206113000";
    REQUIRE(test::upload(service.port(), test::build_upload(later)) == "10120240206112500");
    CHECK(probe.wait_for_payload(availability, [](auto& p) { return p == "online"; }));
}

TEST_CASE("daily energy survives a restart and counts from the day's baseline") {
    Bench bench;
    test::MqttProbe probe(bench.broker.url(), kEcuState);
    const std::string day = test::today_utc();
    auto upload_at = [&](test::ServiceProcess& service, const std::string& hhmmss,
                         long long decikwh) {
        test::UploadSpec spec;
        spec.timestamp = day + hhmmss;
        spec.decikwh = decikwh;
        spec.inverters = {test::inverter_with("806000011223", 4, 100)};
        spec.centiwatts = 40000;
        probe.clear();
        REQUIRE(test::upload(service.port(), test::build_upload(spec)).size() == 17);
        const std::string stamp = day.substr(0, 4) + "-" + day.substr(4, 2) + "-" +
                                  day.substr(6, 2) + "T" + hhmmss.substr(0, 2) + ":" +
                                  hhmmss.substr(2, 2) + ":" + hhmmss.substr(4, 2);
        return payload_of(probe.wait_for_payload(
            kEcuState, [&](const std::string& p) { return json::parse(p)["timestamp"] == stamp; }));
    };
    {
        test::ServiceProcess service(bench.broker.url(), bench.state_dir);
        CHECK(upload_at(service, "000100", 10000)["today_energy_kwh"] == 0.0);
        CHECK(upload_at(service, "000600", 10015)["today_energy_kwh"] == Approx(1.5));
        service.process().signal(SIGTERM);
        REQUIRE(service.process().wait_for(2s) == 0);
    }
    test::ServiceProcess restarted(bench.broker.url(), bench.state_dir);
    CHECK(restarted.process().wait_for_output("event=state_loaded ecu=" + kEcu, 5s));
    const auto after = upload_at(restarted, "001100", 10020);
    CHECK(after["today_energy_kwh"] == Approx(2.0));
    CHECK(after["lifetime_energy_kwh"] == 1002.0);
}

TEST_CASE("an unreadable stored ECU state is reported and the ECU starts afresh, never fatal") {
    Bench bench;
    {
        test::ServiceProcess service(bench.broker.url(), bench.state_dir);
        REQUIRE(test::upload(service.port(), test::captured_upload()) == "10120240206111714");
        service.process().signal(SIGTERM);
        REQUIRE(service.process().wait_for(2s) == 0);
    }
    test::execute(bench.state_dir, "UPDATE ecu_state SET state = '{\"ecu_id\": \"2160000'");
    test::ServiceProcess service(bench.broker.url(), bench.state_dir);
    CHECK(service.process().wait_for_output("event=state_unreadable ecu=" + kEcu, 5s));
    auto spec = test::captured_upload_spec();
    spec.timestamp = "20240206112714"; // the next upload, five minutes on
    CHECK(test::upload(service.port(), test::build_upload(spec)) == "10120240206112214");
    const auto stored = test::query_rows(bench.state_dir, "SELECT state FROM ecu_state", 1);
    REQUIRE(stored.size() == 1);
    CHECK(json::parse(stored[0][0])["ecu_id"] == kEcu); // overwritten by the new upload
}

TEST_CASE("raw publishing sends the message text unretained and no-discovery sends no config") {
    Bench bench;
    test::MqttProbe probe(bench.broker.url(), "#");
    test::ServiceProcess service(bench.broker.url(), bench.state_dir,
                                 {"--publish-raw", "--no-discovery"});
    REQUIRE(service.process().wait_for_output("event=mqtt_connected", 5s));
    REQUIRE(test::upload(service.port(), test::captured_upload()) == "10120240206111714");
    const auto raw = probe.wait_for_topic("ecu2mqtt/" + kEcu + "/raw");
    REQUIRE(raw);
    CHECK(raw->payload == test::captured_upload());
    CHECK_FALSE(raw->retained);
    REQUIRE(probe.wait_for_topic(kEcuState));
    CHECK(probe.count(is_config) == 0);
}

} // namespace test_mqtt_integration
