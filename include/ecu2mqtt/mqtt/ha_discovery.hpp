// Home Assistant MQTT device discovery: one retained config per ECU and per inverter. Pure.
#pragma once

#include "ecu2mqtt/mqtt/mqtt_payloads.hpp"

#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>

namespace ecu2mqtt {

// `<prefix>/device/<node_id>/config`, whose `cmps` holds every entity of the device (Home
// Assistant 2024.11 and later). An empty retained payload on the topic removes the device.
struct DeviceDiscovery {
    std::string topic;
    nlohmann::json payload;
};

inline constexpr const char* kSupportUrl = "https://github.com/ecu2mqtt/ecu2mqtt";

// "ecu2mqtt_<ECU id or inverter UID>": the device identifier and the node id in the topic.
std::string discovery_node_id(const std::string& device_key);
std::string device_discovery_topic(const TopicScheme& topics, const std::string& device_key);
// The device key of one of our discovery topics, nullopt for anybody else's.
std::optional<std::string> our_device_key(const TopicScheme& topics, const std::string& topic);

DeviceDiscovery ecu_discovery(const TopicScheme& topics, const std::string& ecu_id,
                              const std::string& ecu_model, const std::string& sw_version);

// Entities for the channels the inverter really reported, no more.
DeviceDiscovery inverter_discovery(const TopicScheme& topics, const std::string& ecu_id,
                                   const KnownInverter& inverter, const std::string& sw_version);

// The same configs' payloads as text, byte for byte their dump(), without building a document:
// every ECU's first upload announces all its devices, and in a burst of new ECUs building and
// dumping the documents was the largest cost.
std::string ecu_discovery_text(const TopicScheme& topics, const std::string& ecu_id,
                               const std::string& ecu_model, const std::string& sw_version);
std::string inverter_discovery_text(const TopicScheme& topics, const std::string& ecu_id,
                                    const KnownInverter& inverter, const std::string& sw_version);

// True when a device config under our name was announced by another ecu2mqtt on the same
// broker: its availability names a bridge state topic, and not ours (another --base-topic).
// Such a device is not ours to clear. A config naming no bridge at all counts as ours.
bool announced_by_another_bridge(const TopicScheme& topics, const nlohmann::json& payload);

// The component ids (keys of `cmps`) of a device config payload, removal markers left out;
// empty for anything else.
std::set<std::string> component_ids(const nlohmann::json& payload);

// Home Assistant removes a component from a device only when a config names it with nothing but
// its platform: adds such an entry for every id in `previous` that `config` no longer has.
void mark_removed_components(DeviceDiscovery& config, const std::set<std::string>& previous);

} // namespace ecu2mqtt
