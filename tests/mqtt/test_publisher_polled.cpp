// What polling adds to what Home Assistant sees: the publisher with a real Mosquitto.
#include "support/mosquitto_broker.hpp"
#include "support/mqtt_probe.hpp"
#include "support/running_publisher.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

using namespace ecu2mqtt;
using namespace std::chrono_literals;
using nlohmann::json;

namespace test_publisher_polled {
namespace {

const std::string kEcu = "216000064136";
const std::string kUid = "806000000001";
const std::string kState = "ecu2mqtt/" + kEcu + "/state";
const std::string kInverterState = "ecu2mqtt/" + kEcu + "/" + kUid + "/state";
const std::string kEcuConfig = "homeassistant/device/ecu2mqtt_" + kEcu + "/config";
const std::string kInverterConfig = "homeassistant/device/ecu2mqtt_" + kUid + "/config";

test::UploadSpec reading(const std::string& stamp, long long decikwh) {
    test::UploadSpec spec;
    spec.timestamp = stamp;
    spec.decikwh = decikwh;
    spec.centiwatts = 10000;
    spec.inverters = {test::inverter_with(kUid, 4, 25)};
    return spec;
}

std::int64_t unix_of(const test::FixedClock& clock) {
    return std::chrono::duration_cast<std::chrono::seconds>(clock.now().time_since_epoch()).count();
}

// As the poller hands them over: polled at `clock`'s time.
PolledEcuFacts polled_facts(const test::FixedClock& clock) {
    PolledEcuFacts facts;
    facts.firmware = "ECU_R_1.3.6C";
    facts.time_zone = "Etc/GMT-8";
    facts.inverters_registered = 6;
    facts.inverters[kUid] = {170, {231.0}, unix_of(clock), unix_of(clock)};
    return facts;
}

void polling_on(PipelineConfig& config, StoreLimits&) {
    config.polling = true;
}

// A first run with polling on, until the polled entities are announced: one upload at 10:00
// and one poll that answered every step.
void upload_and_poll_once(const test::MosquittoBroker& broker, const std::filesystem::path& dir,
                          test::MqttProbe& probe, test::FixedClock& clock) {
    test::RunningPublisher publisher(broker.url(), dir / "state", clock, polling_on);
    publisher.upload(reading("20240621100000", 30000));
    publisher.polled(kEcu, polled_facts(clock));
    REQUIRE(probe.wait_for_payload(kInverterConfig, [](const std::string& p) {
        return !p.empty() && json::parse(p)["cmps"].contains("signal_level");
    }));
}

} // namespace

TEST_CASE("polled keys reach the broker and the discovery configs, absent before any poll",
          "[polled]") {
    test::MosquittoBroker broker;
    const auto dir = test::make_temp_dir("ecu2mqtt-polled");
    test::MqttProbe probe(broker.url(), "#");
    test::FixedClock clock({2024, 6, 21, 10, 0, 5});
    test::RunningPublisher publisher(broker.url(), dir / "state", clock);

    publisher.upload(reading("20240621100000", 30000));
    const auto plain = probe.wait_for_payload(kState, [](const std::string&) { return true; });
    REQUIRE(plain);
    CHECK_FALSE(json::parse(plain->payload).contains("firmware")); // polling off: nothing new
    const auto plain_inverter =
        probe.wait_for_payload(kInverterState, [](const std::string&) { return true; });
    REQUIRE(plain_inverter);
    CHECK_FALSE(json::parse(plain_inverter->payload).contains("signal_level"));

    // A poll's facts: the ECU state is published again at once, with its discovery.
    publisher.polled(kEcu, polled_facts(clock));
    const auto state = probe.wait_for_payload(
        kState, [](const std::string& p) { return json::parse(p).contains("firmware"); });
    REQUIRE(state);
    const auto ecu_state = json::parse(state->payload);
    CHECK(ecu_state["firmware"] == "ECU_R_1.3.6C");
    CHECK(ecu_state["time_zone"] == "Etc/GMT-8");
    CHECK(ecu_state["inverters_registered"] == 6);
    CHECK(ecu_state["power_w"] == 100.0); // the upload's values are as they were
    const auto ecu_config = probe.wait_for_payload(kEcuConfig, [](const std::string& p) {
        return !p.empty() && json::parse(p)["device"].contains("sw_version");
    });
    REQUIRE(ecu_config);
    const auto config = json::parse(ecu_config->payload);
    CHECK(config["device"]["sw_version"] == "ECU_R_1.3.6C");
    CHECK(config["cmps"]["firmware"]["entity_category"] == "diagnostic");
    CHECK(config["cmps"].contains("inverters_registered"));
    const auto inverter_config = probe.wait_for_payload(kInverterConfig, [](const std::string& p) {
        return !p.empty() && json::parse(p)["cmps"].contains("signal_level");
    });
    REQUIRE(inverter_config);
    CHECK(json::parse(inverter_config->payload)["cmps"].contains("ac_voltage"));

    // The next upload carries the inverter's polled keys.
    clock.set({2024, 6, 21, 10, 5, 5});
    publisher.upload(reading("20240621100500", 30001));
    const auto inverter = probe.wait_for_payload(kInverterState, [](const std::string& p) {
        return json::parse(p).contains("signal_level");
    });
    REQUIRE(inverter);
    const auto inverter_state = json::parse(inverter->payload);
    CHECK(inverter_state["signal_level"] == 170);
    CHECK(inverter_state["ac_voltage_v"] == 231.0);
    CHECK(inverter_state["timestamp"] == "2024-06-21T10:05:00");
    std::filesystem::remove_all(dir);
}

TEST_CASE("polled inverter values older than three poll intervals go out as unknown", "[polled]") {
    test::MosquittoBroker broker;
    const auto dir = test::make_temp_dir("ecu2mqtt-polled-stale");
    test::MqttProbe probe(broker.url(), "#");
    test::FixedClock clock({2024, 6, 21, 10, 0, 5});
    test::RunningPublisher publisher(
        broker.url(), dir / "state", clock,
        [](PipelineConfig& config, StoreLimits&) { config.poll_interval = 120s; });

    publisher.upload(reading("20240621100000", 30000));
    publisher.polled(kEcu, polled_facts(clock)); // the last poll that answers
    const auto carries = [](const std::string& stamp) {
        return [stamp](const std::string& p) {
            const auto j = json::parse(p);
            return j["timestamp"] == stamp && j.contains("signal_level");
        };
    };

    // Three intervals after that poll, its values are still current.
    clock.set({2024, 6, 21, 10, 6, 5});
    publisher.upload(reading("20240621100600", 30001));
    const auto fresh = probe.wait_for_payload(kInverterState, carries("2024-06-21T10:06:00"));
    REQUIRE(fresh);
    CHECK(json::parse(fresh->payload)["signal_level"] == 170);
    CHECK(json::parse(fresh->payload)["ac_voltage_v"] == 231.0);

    // Then the port stays silent: a fresh reading no longer carries the frozen values.
    clock.set({2024, 6, 21, 10, 11, 5});
    publisher.upload(reading("20240621101100", 30002));
    const auto stale = probe.wait_for_payload(kInverterState, carries("2024-06-21T10:11:00"));
    REQUIRE(stale);
    const auto state = json::parse(stale->payload);
    CHECK(state["signal_level"].is_null());
    REQUIRE(state.contains("ac_voltage_v"));
    CHECK(state["ac_voltage_v"].is_null());
    CHECK(state["power_w"] == 100.0); // the upload's own values as ever

    // A poll that answers again brings the values back with the next upload.
    publisher.polled(kEcu, polled_facts(clock));
    clock.set({2024, 6, 21, 10, 16, 5});
    publisher.upload(reading("20240621101600", 30003));
    const auto again = probe.wait_for_payload(kInverterState, carries("2024-06-21T10:16:00"));
    REQUIRE(again);
    CHECK(json::parse(again->payload)["signal_level"] == 170);
    std::filesystem::remove_all(dir);
}

TEST_CASE("a restart keeps the polled entities, their old values unknown", "[polled]") {
    test::MosquittoBroker broker;
    const auto dir = test::make_temp_dir("ecu2mqtt-polled-restart");
    test::MqttProbe probe(broker.url(), "#");
    test::FixedClock clock({2024, 6, 21, 10, 0, 5});
    upload_and_poll_once(broker, dir, probe, clock);
    // Down for an hour; its port 8899 does not answer after the restart.
    probe.clear();
    clock.set({2024, 6, 21, 11, 0, 5});
    test::RunningPublisher publisher(broker.url(), dir / "state", clock, polling_on);
    const auto ecu_config = probe.wait_for_topic(kEcuConfig);
    REQUIRE(ecu_config);
    const auto config = json::parse(ecu_config->payload);
    CHECK(config["device"]["sw_version"] == "ECU_R_1.3.6C");
    for (const char* key : {"firmware", "time_zone", "inverters_registered"}) {
        INFO(key);
        // Announced as before, not a removal marker ({"p":"sensor"} alone deletes it).
        CHECK(config["cmps"][key]["entity_category"] == "diagnostic");
    }
    const auto inverter_config = probe.wait_for_topic(kInverterConfig);
    REQUIRE(inverter_config);
    const auto inverter_cmps = json::parse(inverter_config->payload)["cmps"];
    CHECK(inverter_cmps["signal_level"]["entity_category"] == "diagnostic");
    CHECK(inverter_cmps["ac_voltage"]["unit_of_measurement"] == "V");

    // The next upload: the entities stay, their hour-old values go out as unknown.
    publisher.upload(reading("20240621110000", 30010));
    const auto inverter = probe.wait_for_payload(kInverterState, [](const std::string& p) {
        return json::parse(p)["timestamp"] == "2024-06-21T11:00:00";
    });
    REQUIRE(inverter);
    const auto state = json::parse(inverter->payload);
    REQUIRE(state.contains("signal_level"));
    CHECK(state["signal_level"].is_null());
    CHECK(state["ac_voltage_v"].is_null());
    const auto ecu_state = probe.wait_for_payload(kState, [](const std::string& p) {
        return json::parse(p)["timestamp"] == "2024-06-21T11:00:00";
    });
    REQUIRE(ecu_state);
    CHECK(json::parse(ecu_state->payload)["firmware"] == "ECU_R_1.3.6C");
    std::filesystem::remove_all(dir);
}

TEST_CASE("after a restart, a first poll that answers ECU info only keeps the stored inverters' "
          "entities",
          "[polled]") {
    test::MosquittoBroker broker;
    const auto dir = test::make_temp_dir("ecu2mqtt-polled-partial");
    test::MqttProbe probe(broker.url(), "#");
    test::FixedClock clock({2024, 6, 21, 10, 0, 5});
    upload_and_poll_once(broker, dir, probe, clock);
    probe.clear();
    clock.set({2024, 6, 21, 10, 10, 5});
    test::RunningPublisher publisher(broker.url(), dir / "state", clock, polling_on);
    REQUIRE(probe.wait_for_topic(kInverterConfig));
    probe.clear();
    // The ECU answers 0001 with a new firmware; 0002 and 0030 time out.
    PolledEcuFacts info_only = polled_facts(clock);
    info_only.firmware = "ECU_R_1.3.7";
    info_only.inverters.clear();
    publisher.polled(kEcu, info_only);
    const auto ecu_config = probe.wait_for_payload(kEcuConfig, [](const std::string& p) {
        return !p.empty() && json::parse(p)["device"]["sw_version"] == "ECU_R_1.3.7";
    });
    REQUIRE(ecu_config);
    // The next upload: the inverter's polled keys stay (unknown once old), and its device
    // config is never sent again without them.
    publisher.upload(reading("20240621101000", 30010));
    const auto inverter = probe.wait_for_payload(kInverterState, [](const std::string& p) {
        return json::parse(p)["timestamp"] == "2024-06-21T10:10:00";
    });
    REQUIRE(inverter);
    CHECK(json::parse(inverter->payload).contains("signal_level"));
    CHECK(json::parse(inverter->payload).contains("ac_voltage_v"));
    CHECK(probe.count([](const test::Received& m) {
        return m.topic == kInverterConfig &&
               (m.payload.empty() || !json::parse(m.payload)["cmps"].contains("signal_level"));
    }) == 0);
    std::filesystem::remove_all(dir);
}

TEST_CASE("after a restart, a first poll without real-time data keeps the stored grid voltage "
          "entities",
          "[polled]") {
    test::MosquittoBroker broker;
    const auto dir = test::make_temp_dir("ecu2mqtt-polled-no-0002");
    test::MqttProbe probe(broker.url(), "#");
    test::FixedClock clock({2024, 6, 21, 10, 0, 5});
    upload_and_poll_once(broker, dir, probe, clock);
    probe.clear();
    clock.set({2024, 6, 21, 10, 10, 5});
    test::RunningPublisher publisher(broker.url(), dir / "state", clock, polling_on);
    REQUIRE(probe.wait_for_topic(kInverterConfig));
    // 0001 and 0030 answer, 0002 times out: signal levels, no voltage.
    PolledEcuFacts no_realtime = polled_facts(clock);
    no_realtime.inverters[kUid].ac_voltage_v.clear();
    no_realtime.inverters[kUid].ac_voltage_at = 0;
    no_realtime.inverters[kUid].signal_level = 171;
    publisher.polled(kEcu, no_realtime);
    publisher.upload(reading("20240621101000", 30010));
    const auto inverter = probe.wait_for_payload(kInverterState, [](const std::string& p) {
        return json::parse(p)["timestamp"] == "2024-06-21T10:10:00";
    });
    REQUIRE(inverter);
    CHECK(json::parse(inverter->payload)["signal_level"] == 171);
    CHECK(json::parse(inverter->payload).contains("ac_voltage_v"));
    CHECK(probe.count([](const test::Received& m) {
        return m.topic == kInverterConfig &&
               (m.payload.empty() || !json::parse(m.payload)["cmps"].contains("ac_voltage"));
    }) == 0);
    std::filesystem::remove_all(dir);
}

TEST_CASE("with polling turned off, stored polled facts are not loaded: their entities go",
          "[polled]") {
    test::MosquittoBroker broker;
    const auto dir = test::make_temp_dir("ecu2mqtt-polled-off");
    test::MqttProbe probe(broker.url(), "#");
    test::FixedClock clock({2024, 6, 21, 10, 0, 5});
    {
        test::RunningPublisher publisher(
            broker.url(), dir / "state", clock,
            [](PipelineConfig& config, StoreLimits&) { config.polling = true; });
        publisher.upload(reading("20240621100000", 30000));
        publisher.polled(kEcu, polled_facts(clock));
        REQUIRE(probe.wait_for_payload(kEcuConfig, [](const std::string& p) {
            return !p.empty() && json::parse(p)["device"].contains("sw_version");
        }));
    }
    probe.clear();
    test::RunningPublisher publisher(broker.url(), dir / "state", clock);
    const auto ecu_config = probe.wait_for_topic(kEcuConfig);
    REQUIRE(ecu_config);
    const auto config = json::parse(ecu_config->payload);
    CHECK_FALSE(config["device"].contains("sw_version"));
    CHECK(config["cmps"]["firmware"] == json{{"p", "sensor"}}); // removed from Home Assistant
    std::filesystem::remove_all(dir);
}

} // namespace test_publisher_polled
