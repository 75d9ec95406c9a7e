#include "ecu2mqtt/mqtt/polled_facts.hpp"

namespace ecu2mqtt {
namespace {

std::vector<std::string> voltage_keys(std::size_t phases) {
    if (phases == 1)
        return {"ac_voltage_v"};
    std::vector<std::string> keys;
    for (std::size_t phase = 1; phase <= phases; ++phase)
        keys.push_back("ac_voltage_l" + std::to_string(phase) + "_v");
    return keys;
}

nlohmann::json diagnostic_sensor(const std::string& node, const std::string& object,
                                 const std::string& name, const std::string& state_key) {
    const std::string unique_id = node + "_" + object;
    return {{"p", "sensor"},
            {"name", name},
            {"unique_id", unique_id},
            {"default_entity_id", "sensor." + unique_id},
            {"value_template", "{{ value_json." + state_key + " }}"},
            {"entity_category", "diagnostic"}};
}

} // namespace

void add_polled_ecu_keys(nlohmann::json& ecu_state, const PolledEcuFacts& facts) {
    if (facts.firmware)
        ecu_state["firmware"] = *facts.firmware;
    if (facts.time_zone)
        ecu_state["time_zone"] = *facts.time_zone;
    if (facts.inverters_registered)
        ecu_state["inverters_registered"] = *facts.inverters_registered;
}

void append_polled_inverter_keys(std::string& inverter_state, const PolledInverterFacts& facts,
                                 std::int64_t fresh_since_unix) {
    if (inverter_state.empty() || inverter_state.back() != '}')
        return;
    std::string keys;
    const auto add = [&keys](const std::string& key, const nlohmann::json& value) {
        keys += ",\"" + key + "\":" + value.dump();
    };
    if (facts.signal_level)
        add("signal_level", facts.signal_level_at >= fresh_since_unix
                                ? nlohmann::json(*facts.signal_level)
                                : nlohmann::json(nullptr));
    const bool voltage_fresh = facts.ac_voltage_at >= fresh_since_unix;
    const auto names = voltage_keys(facts.ac_voltage_v.size());
    for (std::size_t phase = 0; phase < facts.ac_voltage_v.size(); ++phase)
        add(names[phase], voltage_fresh && facts.ac_voltage_v[phase]
                              ? nlohmann::json(*facts.ac_voltage_v[phase])
                              : nlohmann::json(nullptr));
    if (inverter_state.size() == 2 && !keys.empty()) // `{}`
        keys.erase(0, 1);
    inverter_state.insert(inverter_state.size() - 1, keys);
}

void add_polled_ecu_discovery(DeviceDiscovery& ecu_config, const PolledEcuFacts& facts) {
    auto& payload = ecu_config.payload;
    const auto node = payload["device"]["identifiers"][0].get<std::string>();
    auto& cmps = payload["cmps"];
    if (facts.firmware) {
        payload["device"]["sw_version"] = *facts.firmware;
        cmps["firmware"] = diagnostic_sensor(node, "firmware", "Firmware", "firmware");
    }
    if (facts.time_zone)
        cmps["time_zone"] = diagnostic_sensor(node, "time_zone", "Time zone", "time_zone");
    if (facts.inverters_registered) {
        auto sensor = diagnostic_sensor(node, "inverters_registered", "Inverters registered",
                                        "inverters_registered");
        sensor["state_class"] = "measurement";
        cmps["inverters_registered"] = std::move(sensor);
    }
}

void add_polled_inverter_discovery(DeviceDiscovery& inverter_config, const std::string& uid,
                                   const PolledInverterFacts& facts) {
    auto& cmps = inverter_config.payload["cmps"];
    const auto node = discovery_node_id(uid);
    if (facts.signal_level) {
        auto sensor = diagnostic_sensor(node, "signal_level", "Signal level", "signal_level");
        sensor["state_class"] = "measurement";
        cmps["signal_level"] = std::move(sensor);
    }
    const auto names = voltage_keys(facts.ac_voltage_v.size());
    for (std::size_t phase = 0; phase < names.size(); ++phase) {
        const std::string object = names[phase].substr(0, names[phase].size() - 2);
        const std::string label =
            names.size() == 1 ? "Grid voltage" : "Grid voltage L" + std::to_string(phase + 1);
        auto sensor = diagnostic_sensor(node, object, label, names[phase]);
        sensor["device_class"] = "voltage";
        sensor["state_class"] = "measurement";
        sensor["unit_of_measurement"] = "V";
        sensor["suggested_display_precision"] = 0;
        cmps[object] = std::move(sensor);
    }
}

} // namespace ecu2mqtt
