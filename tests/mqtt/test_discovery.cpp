#include "ecu2mqtt/mqtt/ha_discovery.hpp"
#include "ecu2mqtt/protocol/decoder.hpp"
#include "support/test_paths.hpp"

#include <catch2/catch.hpp>
#include <regex>
#include <set>

using namespace ecu2mqtt;

namespace {

const TopicScheme kTopics{"ecu2mqtt", "homeassistant"};

const nlohmann::json* find_object(const std::vector<DiscoveryConfig>& configs,
                                  const std::string& object) {
    for (const auto& c : configs)
        if (c.topic.ends_with("/" + object + "/config"))
            return &c.payload;
    return nullptr;
}

} // namespace

TEST_CASE("ECU entities carry HA's accepted classes and units") {
    const auto configs = ecu_discovery(kTopics, "216000064136", "ECU-R", "1.2.3");
    REQUIRE(configs.size() == 5);
    const auto* power = find_object(configs, "power");
    REQUIRE(power);
    CHECK((*power)["device_class"] == "power");
    CHECK((*power)["unit_of_measurement"] == "W");
    CHECK((*power)["state_class"] == "measurement");
    const auto* lifetime = find_object(configs, "lifetime_energy");
    REQUIRE(lifetime);
    CHECK((*lifetime)["device_class"] == "energy");
    CHECK((*lifetime)["unit_of_measurement"] == "kWh");
    CHECK((*lifetime)["state_class"] == "total_increasing");
    const auto* today = find_object(configs, "today_energy");
    REQUIRE(today);
    CHECK((*today)["state_class"] == "total_increasing");
    const auto* seen = find_object(configs, "last_seen");
    REQUIRE(seen);
    CHECK((*seen)["device_class"] == "timestamp");
    CHECK_FALSE(seen->contains("unit_of_measurement"));
    CHECK_FALSE(seen->contains("state_class"));
    CHECK(power->at("device").at("manufacturer") == "APsystems");
    CHECK(power->at("device").at("serial_number") == "216000064136");
    CHECK(power->at("origin").at("sw_version") == "1.2.3");
}

TEST_CASE("inverter entities exist for the channels the model has, and no more") {
    const auto decoded = decode_message(test::captured_upload());
    const auto& up = std::get<RealtimeUpload>(*decoded_message(decoded));
    const auto yc600 =
        inverter_discovery(kTopics, up.ecu_id, known_inverter_from(up.inverters[0]), "v");
    const auto qs1 =
        inverter_discovery(kTopics, up.ecu_id, known_inverter_from(up.inverters[1]), "v");
    CHECK(yc600.size() == 3 + 2 * 3);
    CHECK(qs1.size() == 3 + 4 * 3);
    CHECK(find_object(yc600, "ch2_voltage"));
    CHECK_FALSE(find_object(yc600, "ch3_voltage"));
    CHECK(find_object(qs1, "ch4_current"));
    const auto* temperature = find_object(qs1, "temperature");
    REQUIRE(temperature);
    CHECK((*temperature)["unit_of_measurement"] == "\xC2\xB0"
                                                   "C"); // U+00B0, not a look-alike
    CHECK(qs1[0].payload["device"]["via_device"] == "ecu2mqtt_216000064136");
}

TEST_CASE("every config follows the 2026 discovery rules") {
    const std::regex node_and_object("^homeassistant/sensor/[a-zA-Z0-9_-]+/[a-zA-Z0-9_-]+/config$");
    auto configs = ecu_discovery(kTopics, "216000064136", "ECU-R", "v");
    const auto inverter =
        inverter_discovery(kTopics, "216000064136", {"806000011223", "806", "QS1", 4}, "v");
    configs.insert(configs.end(), inverter.begin(), inverter.end());
    std::set<std::string> unique_ids;
    for (const auto& c : configs) {
        INFO(c.topic);
        CHECK(std::regex_match(c.topic, node_and_object));
        CHECK_FALSE(c.payload.contains("object_id")); // removed from HA in 2026.4
        CHECK(c.payload["default_entity_id"] ==
              "sensor." + c.payload["unique_id"].get<std::string>());
        CHECK(unique_ids.insert(c.payload["unique_id"]).second);
        CHECK(c.payload["availability_mode"] == "all");
        CHECK(c.payload["availability"][0]["topic"] == "ecu2mqtt/bridge/state");
        CHECK(c.payload.contains("origin"));
        const std::string tmpl = c.payload["value_template"];
        CHECK(tmpl.starts_with("{{ value_json."));
    }
}

TEST_CASE("state payloads: absent inverters report 0 W and unknown voltage") {
    const KnownInverter qs1{"806000011223", "806", "QS1", 4};
    const auto absent = absent_inverter_payload(qs1, LocalDateTime{2024, 2, 6, 22, 0, 0});
    CHECK(absent["reporting"] == false);
    CHECK(absent["power_w"] == 0.0);
    CHECK(absent["ch4_power_w"] == 0.0);
    CHECK(absent["ch4_current_a"] == 0.0);
    CHECK(absent["ch4_voltage_v"].is_null());
    CHECK(absent["temperature_c"].is_null());
    CHECK_FALSE(absent.contains("ch5_power_w"));
}
