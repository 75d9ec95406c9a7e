// What bridge/info says of the bridge: the options in force, never a secret.
#include "ecu2mqtt/app/bridge_facts.hpp"
#include "ecu2mqtt/mqtt/bridge_info.hpp"

#include <catch2/catch.hpp>

using namespace ecu2mqtt;
using nlohmann::json;

TEST_CASE("bridge facts: options in force, no user, no password, not even in the broker URL") {
    Options o;
    o.mqtt_url = "mqtt://someone:hunter2@broker.lan:1883";
    o.mqtt_user = "someone";
    o.mqtt_password = "hunter2";
    o.ports = {8995, 8996};
    o.http_port = 0;
    const auto facts = bridge_facts(o, "1.2.3", 40123);
    const std::string text = facts.dump();
    CHECK(text.find("hunter2") == std::string::npos);
    CHECK(text.find("someone") == std::string::npos);
    CHECK(facts["broker"] == "mqtt://broker.lan:1883");
    CHECK(facts["version"] == "1.2.3");
    CHECK(facts["listen"]["ports"] == json::array({8995, 8996}));
    CHECK(facts["http"] == "127.0.0.1:40123");
    CHECK(facts["options"]["history_days"] == 400);
    CHECK_FALSE(facts["options"].contains("mqtt_user"));
    CHECK_FALSE(facts["options"].contains("mqtt_password"));
    o.http = false;
    CHECK(bridge_facts(o, "1.2.3", std::nullopt)["http"].is_null());
}

TEST_CASE("bridge info: the facts with the ECUs and inverters tracked") {
    const json facts{{"version", "1"}};
    const auto none = json::parse(bridge_info_payload(facts, {}));
    CHECK(none["ecu_count"] == 0);
    CHECK(none["inverter_count"] == 0);
    const auto payload = bridge_info_payload(facts, {{"216000000001", 25}, {"216000000002", 24}});
    const auto two = json::parse(payload);
    CHECK(two["version"] == "1");
    CHECK(two["ecu_count"] == 2);
    CHECK(two["inverter_count"] == 49);
    CHECK(two["ecus"][1] == json{{"id", "216000000002"}, {"inverters", 24}});
    CHECK(payload == bridge_info_payload(facts, {{"216000000001", 25}, {"216000000002", 24}}));
}
