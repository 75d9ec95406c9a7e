#include "ecu2mqtt/mqtt/ha_discovery.hpp"
#include "ecu2mqtt/mqtt/weak_panel_payloads.hpp"
#include "ecu2mqtt/protocol/decoder.hpp"
#include "support/test_paths.hpp"

#include <catch2/catch.hpp>
#include <regex>
#include <set>

using namespace ecu2mqtt;

namespace test_discovery {
namespace {

const TopicScheme kTopics{"ecu2mqtt", "homeassistant"};

const nlohmann::json* find_component(const DeviceDiscovery& config, const std::string& object) {
    const auto& components = config.payload.at("cmps");
    const auto it = components.find(object);
    return it == components.end() ? nullptr : &*it;
}

} // namespace

TEST_CASE("one device config per ECU, with HA's accepted classes, units and precision") {
    const auto config = ecu_discovery(kTopics, "216000064136", "ECU-R", "1.2.3");
    CHECK(config.topic == "homeassistant/device/ecu2mqtt_216000064136/config");
    CHECK(config.payload.at("cmps").size() == 6);
    CHECK(config.payload.at("state_topic") == "ecu2mqtt/216000064136/state");
    const auto* power = find_component(config, "power");
    REQUIRE(power);
    CHECK((*power)["p"] == "sensor");
    CHECK((*power)["device_class"] == "power");
    CHECK((*power)["unit_of_measurement"] == "W");
    CHECK((*power)["state_class"] == "measurement");
    CHECK((*power)["suggested_display_precision"] == 0);
    const auto* lifetime = find_component(config, "lifetime_energy");
    REQUIRE(lifetime);
    CHECK((*lifetime)["device_class"] == "energy");
    CHECK((*lifetime)["unit_of_measurement"] == "kWh");
    CHECK((*lifetime)["state_class"] == "total_increasing");
    CHECK((*lifetime)["suggested_display_precision"] == 1);
    const auto* today = find_component(config, "today_energy");
    REQUIRE(today);
    CHECK((*today)["state_class"] == "total_increasing");
    const auto* seen = find_component(config, "last_seen");
    REQUIRE(seen);
    CHECK((*seen)["device_class"] == "timestamp");
    CHECK_FALSE(seen->contains("unit_of_measurement"));
    CHECK_FALSE(seen->contains("state_class"));
    CHECK_FALSE(seen->contains("suggested_display_precision"));
    const auto* offset = find_component(config, "clock_offset");
    REQUIRE(offset);
    CHECK((*offset)["device_class"] == "duration");
    CHECK((*offset)["unit_of_measurement"] == "s");
    CHECK((*offset)["entity_category"] == "diagnostic");
    CHECK(config.payload.at("device").at("manufacturer") == "APsystems");
    CHECK(config.payload.at("device").at("serial_number") == "216000064136");
    CHECK(config.payload.at("origin").at("sw_version") == "1.2.3");
    CHECK(config.payload.at("origin").at("support_url").get<std::string>().starts_with("https://"));
}

TEST_CASE("inverter devices have components for the channels the model has, and no more") {
    const auto decoded = decode_message(test::captured_upload());
    const auto& up = std::get<RealtimeUpload>(*decoded_message(decoded));
    const auto yc600 =
        inverter_discovery(kTopics, up.ecu_id, known_inverter_from(up.inverters[0]), "v");
    const auto qs1 =
        inverter_discovery(kTopics, up.ecu_id, known_inverter_from(up.inverters[1]), "v");
    CHECK(yc600.payload.at("cmps").size() == 3 + 2 * 3);
    CHECK(qs1.payload.at("cmps").size() == 3 + 4 * 3);
    CHECK(find_component(yc600, "ch2_voltage"));
    CHECK_FALSE(find_component(yc600, "ch3_voltage"));
    CHECK(find_component(qs1, "ch4_current"));
    const auto* temperature = find_component(qs1, "temperature");
    REQUIRE(temperature);
    CHECK((*temperature)["unit_of_measurement"] == "\xC2\xB0"
                                                   "C"); // U+00B0, not a look-alike
    CHECK(qs1.payload["device"]["via_device"] == "ecu2mqtt_216000064136");
    CHECK(qs1.payload["device"]["model_id"] == up.inverters[1].model_code);
    CHECK(qs1.payload["device"]["model"] == "QS1");
}

TEST_CASE("every device config follows the 2026 discovery rules") {
    const std::regex device_topic("^homeassistant/device/ecu2mqtt_[0-9]+/config$");
    const std::vector<DeviceDiscovery> configs{
        ecu_discovery(kTopics, "216000064136", "ECU-R", "v"),
        inverter_discovery(kTopics, "216000064136", {"806000011223", "806", "QS1", 4}, "v")};
    std::set<std::string> unique_ids;
    for (const auto& c : configs) {
        INFO(c.topic);
        CHECK(std::regex_match(c.topic, device_topic));
        CHECK(c.payload["availability_mode"] == "all");
        CHECK(c.payload["availability"][0]["topic"] == "ecu2mqtt/bridge/state");
        CHECK(c.payload.contains("origin"));
        for (const auto& [object, component] : c.payload.at("cmps").items()) {
            INFO(object);
            CHECK_FALSE(component.contains("object_id")); // removed from HA in 2026.4
            CHECK(component["default_entity_id"] ==
                  "sensor." + component["unique_id"].get<std::string>());
            CHECK(unique_ids.insert(component["unique_id"]).second);
            const std::string tmpl = component["value_template"];
            CHECK(tmpl.starts_with("{{ value_json."));
        }
    }
}

TEST_CASE("our discovery topics are recognised, nobody else's") {
    CHECK(our_device_key(kTopics, "homeassistant/device/ecu2mqtt_806000011223/config") ==
          "806000011223");
    CHECK_FALSE(our_device_key(kTopics, "homeassistant/device/zigbee2mqtt_0x1/config"));
    CHECK_FALSE(our_device_key(kTopics, "homeassistant/sensor/ecu2mqtt_1/power/config"));
    CHECK_FALSE(our_device_key(kTopics, "homeassistant/device/ecu2mqtt_/config"));
    CHECK_FALSE(our_device_key(kTopics, "homeassistant/device/ecu2mqtt_a/b/config"));
}

TEST_CASE("a channel that went away is named with its platform only, so HA removes it") {
    auto two_channels =
        inverter_discovery(kTopics, "216000064136", {"806000011223", "806", "QS1", 2}, "v");
    const auto four_channels =
        inverter_discovery(kTopics, "216000064136", {"806000011223", "806", "QS1", 4}, "v");
    mark_removed_components(two_channels, component_ids(four_channels.payload));
    const auto* gone = find_component(two_channels, "ch4_voltage");
    REQUIRE(gone);
    CHECK(*gone == nlohmann::json{{"p", "sensor"}});
    CHECK(find_component(two_channels, "ch2_voltage")->contains("unique_id"));
    CHECK(two_channels.payload.at("cmps").size() == four_channels.payload.at("cmps").size());
}

TEST_CASE("an inverter's weak-panel entity reads its own channels from the ECU's hint", "[weak]") {
    auto config =
        inverter_discovery(kTopics, "216000064136", {"806000011223", "806", "QS1", 4}, "v");
    const auto without = component_ids(config.payload);
    CHECK_FALSE(without.contains("weak_panel"));
    add_weak_panel_component(config, kTopics, "216000064136", "806000011223");
    const auto* entity = find_component(config, "weak_panel");
    REQUIRE(entity);
    CHECK((*entity)["p"] == "binary_sensor");
    CHECK((*entity)["device_class"] == "problem");
    CHECK((*entity)["entity_category"] == "diagnostic");
    CHECK((*entity)["state_topic"] == "ecu2mqtt/216000064136/weak_panels");
    CHECK((*entity)["unique_id"] == "ecu2mqtt_806000011223_weak_panel");
    CHECK_THAT((*entity)["value_template"].get<std::string>(),
               Catch::Contains("selectattr('inverter', 'eq', '806000011223')"));
    // Gone again (the hint no longer ready): removed under its own platform.
    auto plain =
        inverter_discovery(kTopics, "216000064136", {"806000011223", "806", "QS1", 4}, "v");
    mark_removed_components(plain, component_ids(config.payload));
    CHECK(*find_component(plain, "weak_panel") == nlohmann::json{{"p", "binary_sensor"}});
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

TEST_CASE("a device config under our name is another bridge's when it names another bridge") {
    KnownInverter inverter;
    inverter.uid = "806000011223";
    inverter.model = "QS1";
    inverter.channels = 4;
    const TopicScheme other{"solar-site-2", "homeassistant"};
    CHECK_FALSE(announced_by_another_bridge(
        kTopics, inverter_discovery(kTopics, "216000064136", inverter, "1").payload));
    CHECK(announced_by_another_bridge(
        kTopics, inverter_discovery(other, "216000064136", inverter, "1").payload));
    CHECK(announced_by_another_bridge(kTopics,
                                      ecu_discovery(other, "216000064136", "ECU-R", "1").payload));
    // Without a bridge named, or not a config at all: ours to clear, as before.
    CHECK_FALSE(announced_by_another_bridge(kTopics, nlohmann::json::parse(R"({"cmps":{}})")));
    CHECK_FALSE(announced_by_another_bridge(
        kTopics, nlohmann::json::parse(R"({"availability":[{"topic":"x/y"}, 3, {"topic":1}]})")));
    CHECK_FALSE(announced_by_another_bridge(kTopics, nlohmann::json::parse("[1,2]")));
}

TEST_CASE("device configs written as text are the documents' dump(), byte for byte") {
    const TopicScheme odd_topics{"solar/\"roof\"", "ha\\prefix"};
    for (const auto& topics : {kTopics, odd_topics})
        for (const std::string version : {"1.2.3", "0.1.0-\xC3\xA9t\xC3\xA9"}) {
            for (const std::string model : {"ECU-R", "ECU-C \"pro\"", "ECU \xC3\x96sterreich"})
                CHECK(ecu_discovery_text(topics, "216000064136", model, version) ==
                      ecu_discovery(topics, "216000064136", model, version).payload.dump());
            // Twelve channels put "ch10_..." before "ch1_...", as the document sorts them.
            for (int channels : {0, 1, 2, 4, 12}) {
                const KnownInverter inverter{"806000012345", "0B", "QS1 \"A\"", channels};
                CHECK(inverter_discovery_text(topics, "216000064136", inverter, version) ==
                      inverter_discovery(topics, "216000064136", inverter, version).payload.dump());
            }
        }
}

} // namespace test_discovery
