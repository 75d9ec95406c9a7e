// Home Assistant MQTT discovery configs for an ECU and its inverters. Pure.
#pragma once

#include "ecu2mqtt/mqtt/mqtt_payloads.hpp"

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace ecu2mqtt {

struct DiscoveryConfig {
    std::string topic; // <prefix>/sensor/<node_id>/<object_id>/config
    nlohmann::json payload;
};

std::vector<DiscoveryConfig> ecu_discovery(const TopicScheme& topics, const std::string& ecu_id,
                                           const std::string& ecu_model,
                                           const std::string& sw_version);

// Entities for the channels the inverter really reported, no more.
std::vector<DiscoveryConfig> inverter_discovery(const TopicScheme& topics,
                                                const std::string& ecu_id,
                                                const KnownInverter& inverter,
                                                const std::string& sw_version);

} // namespace ecu2mqtt
