// The weak-panel hint on MQTT: the ECU's retained topic and the Home Assistant entities that read
// it (one on the ECU, one component on each inverter).
#pragma once

#include "ecu2mqtt/mqtt/mqtt_payloads.hpp"

#include <cstddef>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace ecu2mqtt {

// One weak channel as published.
struct WeakChannelShown {
    std::string inverter;
    int channel = 0;
    double median_ratio = 0; // its power over the ECU's median
    std::size_t sunny_moments = 0;
};

// `<base>/<ecu_id>/weak_panels`, retained: {"problem": "ON" or "OFF", "channels": [{"inverter",
// "channel", "ratio", "sunny_moments"}]}.
std::string weak_panels_topic(const TopicScheme& topics, const std::string& ecu_id);
nlohmann::json weak_panels_json(const std::vector<WeakChannelShown>& weak);

// The ECU's diagnostic `binary_sensor` of class `problem` ("Weak panel"), on the ECU's device,
// announced on its own: `<prefix>/binary_sensor/ecu2mqtt_<ecu_id>/weak_panel/config`.
struct EntityDiscovery {
    std::string topic;
    nlohmann::json payload;
};
EntityDiscovery weak_panel_discovery(const TopicScheme& topics, const std::string& ecu_id,
                                     const std::string& sw_version);

// The inverter's diagnostic `binary_sensor` of class `problem` ("Weak panel"), added to its
// device config as component `weak_panel`: its state is the ECU's `weak_panels` topic, ON when
// that lists a channel of this inverter.
struct DeviceDiscovery;
void add_weak_panel_component(DeviceDiscovery& inverter_config, const TopicScheme& topics,
                              const std::string& ecu_id, const std::string& uid);

} // namespace ecu2mqtt
