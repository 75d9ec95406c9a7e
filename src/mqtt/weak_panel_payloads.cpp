#include "ecu2mqtt/mqtt/weak_panel_payloads.hpp"

#include "ecu2mqtt/mqtt/ha_discovery.hpp"

#include <cmath>

namespace ecu2mqtt {
namespace {

// What the ECU's entity and each inverter's component share.
nlohmann::json weak_panel_entity(const std::string& unique_id, const std::string& state_topic) {
    return {
        {"name", "Weak panel"},
        {"unique_id", unique_id},
        {"default_entity_id", "binary_sensor." + unique_id},
        {"device_class", "problem"},
        {"entity_category", "diagnostic"},
        {"state_topic", state_topic},
        {"json_attributes_topic", state_topic},
    };
}

} // namespace

std::string weak_panels_topic(const TopicScheme& topics, const std::string& ecu_id) {
    return topics.base + "/" + ecu_id + "/weak_panels";
}

nlohmann::json weak_panels_json(const std::vector<WeakChannelShown>& weak) {
    nlohmann::json channels = nlohmann::json::array();
    for (const auto& w : weak)
        channels.push_back({{"inverter", w.inverter},
                            {"channel", w.channel},
                            {"ratio", std::round(w.median_ratio * 100) / 100},
                            {"sunny_moments", w.sunny_moments}});
    return {{"problem", weak.empty() ? "OFF" : "ON"}, {"channels", std::move(channels)}};
}

EntityDiscovery weak_panel_discovery(const TopicScheme& topics, const std::string& ecu_id,
                                     const std::string& sw_version) {
    const std::string node = discovery_node_id(ecu_id);
    const std::string unique_id = node + "_weak_panel";
    const std::string state_topic = weak_panels_topic(topics, ecu_id);
    auto payload = weak_panel_entity(unique_id, state_topic);
    payload.update({
        {"value_template", "{{ value_json.problem }}"},
        {"json_attributes_template", "{{ {'channels': value_json.channels} | tojson }}"},
        {"device", {{"identifiers", {node}}}},
        {"origin",
         {{"name", "ecu2mqtt"}, {"sw_version", sw_version}, {"support_url", kSupportUrl}}},
        {"availability",
         {{{"topic", topics.bridge_state()}}, {{"topic", topics.ecu_availability(ecu_id)}}}},
        {"availability_mode", "all"},
        {"qos", 1},
    });
    return {topics.discovery_prefix + "/binary_sensor/" + node + "/weak_panel/config",
            std::move(payload)};
}

void add_weak_panel_component(DeviceDiscovery& inverter_config, const TopicScheme& topics,
                              const std::string& ecu_id, const std::string& uid) {
    const std::string unique_id = discovery_node_id(uid) + "_weak_panel";
    const std::string state_topic = weak_panels_topic(topics, ecu_id);
    // One retained topic per ECU serves all of its inverters: each picks its own channels.
    const std::string its_channels =
        "value_json.channels | selectattr('inverter', 'eq', '" + uid + "') | list";
    auto component = weak_panel_entity(unique_id, state_topic);
    component.update({
        {"p", "binary_sensor"},
        {"value_template", "{{ 'ON' if (" + its_channels + ") else 'OFF' }}"},
        {"json_attributes_template",
         "{{ {'channels': " + its_channels + " | map(attribute='channel') | list} | tojson }}"},
    });
    inverter_config.payload["cmps"]["weak_panel"] = std::move(component);
}

} // namespace ecu2mqtt
