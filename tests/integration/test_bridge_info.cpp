// The retained `<base>/bridge/info` from the real binary through a real Mosquitto that asks for a
// password: what the bridge runs with and tracks, never the user or the password.
#include "support/mosquitto_broker.hpp"
#include "support/mqtt_probe.hpp"
#include "support/net.hpp"
#include "support/service_process.hpp"
#include "support/test_paths.hpp"
#include "support/upload_builder.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

using namespace std::chrono_literals;
using nlohmann::json;

TEST_CASE("bridge/info: retained, without user or password, and published again when an ECU "
          "and its inverters are tracked") {
    const std::string user = "bridgeuser7";
    const std::string password = "pw-never-shown-42";
    test::MosquittoBroker broker(user, password);
    const auto dir = test::make_temp_dir("ecu2mqtt-bridge-info");
    test::ServiceProcess service(broker.url(), dir / "state", {"--mqtt-user", user}, true,
                                 {"ECU2MQTT_MQTT_PASSWORD=" + password});
    const std::string topic = "ecu2mqtt/bridge/info";
    const auto no_secret = [&](const std::string& payload) {
        CHECK(payload.find(password) == std::string::npos);
        CHECK(payload.find(user) == std::string::npos);
        const auto info = json::parse(payload);
        CHECK_FALSE(info["options"].contains("mqtt_password"));
        CHECK_FALSE(info["options"].contains("mqtt_user"));
    };

    {
        test::MqttProbe probe(broker.url(), topic, "before", {}, user, password);
        const auto first = probe.wait_for_payload(
            topic, [](const std::string& p) { return json::parse(p)["ecu_count"] == 0; }, 10s);
        REQUIRE(first);
        // A subscriber arriving now gets it retained (the probe above may have got it live).
        test::MqttProbe late(broker.url(), topic, "late", {}, user, password);
        const auto retained = late.wait_for_payload(
            topic, [](const std::string& p) { return json::parse(p)["ecu_count"] == 0; });
        REQUIRE(retained);
        CHECK(retained->retained);
        no_secret(first->payload);
        const auto info = json::parse(first->payload);
        CHECK_FALSE(info["version"].get<std::string>().empty());
        CHECK(info["broker"] == broker.url());
        CHECK(info["listen"]["address"] == "127.0.0.1");
        CHECK(info["listen"]["ports"][0] == service.port());
        CHECK(info["http"].get<std::string>().starts_with("127.0.0.1:"));
        CHECK(info["http"] != "127.0.0.1:0"); // the port as bound
        CHECK(info["options"]["base_topic"] == "ecu2mqtt");
        CHECK(info["options"]["max_ecus"] == 16);
        CHECK(info["inverter_count"] == 0);
    }

    // The captured upload: one ECU with a YC600 and a QS1.
    REQUIRE(test::upload(service.port(), test::captured_upload()).size() == 17);
    test::MqttProbe after(broker.url(), topic, "after", {}, user, password);
    const auto changed = after.wait_for_payload(
        topic, [](const std::string& p) { return json::parse(p)["ecu_count"] == 1; }, 15s);
    REQUIRE(changed);
    CHECK(changed->retained); // a subscriber arriving after the change gets it retained
    no_secret(changed->payload);
    const auto info = json::parse(changed->payload);
    CHECK(info["inverter_count"] == 2);
    CHECK(info["ecus"] == json::parse(R"([{"id":"216000064136","inverters":2}])"));
    std::filesystem::remove_all(dir);
}
