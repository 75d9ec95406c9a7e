#include "ecu2mqtt/mqtt/ha_discovery.hpp"

namespace ecu2mqtt {
namespace {

// One row per entity: what it is called, where its value sits in the state JSON, and how Home
// Assistant should treat it. Units and classes follow HA's accepted combinations.
struct SensorSpec {
    std::string object;    // object id within the device, e.g. "power", "ch1_voltage"
    std::string name;      // short entity name; HA prefixes the device name
    std::string state_key; // key in the state JSON
    const char* device_class;
    const char* state_class;
    const char* unit;
    const char* entity_category;
};

constexpr const char* kNone = nullptr;
constexpr const char* kDegreesCelsius = "\xC2\xB0"
                                        "C";

std::vector<SensorSpec> ecu_sensors() {
    return {
        {"power", "Power", "power_w", "power", "measurement", "W", kNone},
        {"lifetime_energy", "Lifetime energy", "lifetime_energy_kwh", "energy", "total_increasing",
         "kWh", kNone},
        {"today_energy", "Energy today", "today_energy_kwh", "energy", "total_increasing", "kWh",
         kNone},
        {"inverters_online", "Inverters online", "inverters_online", kNone, "measurement", kNone,
         kNone},
        {"last_seen", "Last seen", "last_seen", "timestamp", kNone, kNone, "diagnostic"},
    };
}

std::vector<SensorSpec> inverter_sensors(int channels) {
    std::vector<SensorSpec> specs{
        {"power", "Power", "power_w", "power", "measurement", "W", kNone},
        {"temperature", "Temperature", "temperature_c", "temperature", "measurement",
         kDegreesCelsius, "diagnostic"},
        {"frequency", "Grid frequency", "frequency_hz", "frequency", "measurement", "Hz",
         "diagnostic"},
    };
    for (int ch = 1; ch <= channels; ++ch) {
        const std::string prefix = "ch" + std::to_string(ch);
        const std::string label = "Channel " + std::to_string(ch);
        specs.push_back({prefix + "_power", label + " power", prefix + "_power_w", "power",
                         "measurement", "W", kNone});
        specs.push_back({prefix + "_voltage", label + " voltage", prefix + "_voltage_v", "voltage",
                         "measurement", "V", kNone});
        specs.push_back({prefix + "_current", label + " current", prefix + "_current_a", "current",
                         "measurement", "A", kNone});
    }
    return specs;
}

std::string node_id_for(const std::string& device_key) {
    return "ecu2mqtt_" + device_key;
}

DiscoveryConfig make_config(const TopicScheme& topics, const std::string& device_key,
                            const SensorSpec& spec, const std::string& state_topic,
                            const nlohmann::json& availability, const nlohmann::json& device,
                            const std::string& sw_version) {
    const std::string node = node_id_for(device_key);
    const std::string unique_id = node + "_" + spec.object;
    nlohmann::json payload{
        {"name", spec.name},
        {"unique_id", unique_id},
        {"default_entity_id", "sensor." + unique_id},
        {"state_topic", state_topic},
        {"value_template", "{{ value_json." + spec.state_key + " }}"},
        {"availability", availability},
        {"availability_mode", "all"},
        {"device", device},
        {"origin", {{"name", "ecu2mqtt"}, {"sw_version", sw_version}}},
    };
    if (spec.device_class)
        payload["device_class"] = spec.device_class;
    if (spec.state_class)
        payload["state_class"] = spec.state_class;
    if (spec.unit)
        payload["unit_of_measurement"] = spec.unit;
    if (spec.entity_category)
        payload["entity_category"] = spec.entity_category;
    return {topics.discovery_prefix + "/sensor/" + node + "/" + spec.object + "/config",
            std::move(payload)};
}

} // namespace

std::vector<DiscoveryConfig> ecu_discovery(const TopicScheme& topics, const std::string& ecu_id,
                                           const std::string& ecu_model,
                                           const std::string& sw_version) {
    const nlohmann::json device{{"identifiers", {node_id_for(ecu_id)}},
                                {"name", "APsystems " + ecu_model + " " + ecu_id},
                                {"manufacturer", "APsystems"},
                                {"model", ecu_model},
                                {"serial_number", ecu_id}};
    const nlohmann::json availability{{{"topic", topics.bridge_state()}},
                                      {{"topic", topics.ecu_availability(ecu_id)}}};
    std::vector<DiscoveryConfig> configs;
    for (const auto& spec : ecu_sensors())
        configs.push_back(make_config(topics, ecu_id, spec, topics.ecu_state(ecu_id), availability,
                                      device, sw_version));
    return configs;
}

std::vector<DiscoveryConfig> inverter_discovery(const TopicScheme& topics,
                                                const std::string& ecu_id,
                                                const KnownInverter& inverter,
                                                const std::string& sw_version) {
    const nlohmann::json device{{"identifiers", {node_id_for(inverter.uid)}},
                                {"name", "APsystems " + inverter.model + " " + inverter.uid},
                                {"manufacturer", "APsystems"},
                                {"model", inverter.model},
                                {"serial_number", inverter.uid},
                                {"via_device", node_id_for(ecu_id)}};
    const nlohmann::json availability{
        {{"topic", topics.bridge_state()}},
        {{"topic", topics.ecu_availability(ecu_id)}},
        {{"topic", topics.inverter_availability(ecu_id, inverter.uid)}}};
    std::vector<DiscoveryConfig> configs;
    for (const auto& spec : inverter_sensors(inverter.channels))
        configs.push_back(make_config(topics, inverter.uid, spec,
                                      topics.inverter_state(ecu_id, inverter.uid), availability,
                                      device, sw_version));
    return configs;
}

} // namespace ecu2mqtt
