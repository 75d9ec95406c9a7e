#include "ecu2mqtt/mqtt/ha_discovery.hpp"

#include "ecu2mqtt/mqtt/json_text.hpp"

#include <algorithm>

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
    int display_precision; // suggested_display_precision; -1: none
};

constexpr const char* kNone = nullptr;
constexpr const char* kDegreesCelsius = "\xC2\xB0"
                                        "C";

std::vector<SensorSpec> ecu_sensors() {
    return {
        {"power", "Power", "power_w", "power", "measurement", "W", kNone, 0},
        {"lifetime_energy", "Lifetime energy", "lifetime_energy_kwh", "energy", "total_increasing",
         "kWh", kNone, 1},
        {"today_energy", "Energy today", "today_energy_kwh", "energy", "total_increasing", "kWh",
         kNone, 2},
        {"inverters_online", "Inverters online", "inverters_online", kNone, "measurement", kNone,
         kNone, 0},
        {"last_seen", "Last seen", "last_seen", "timestamp", kNone, kNone, "diagnostic", -1},
        // The ECU's clock minus UTC as learned from its uploads: a time zone, or a clock that is
        // wrong.
        {"clock_offset", "Clock offset", "clock_offset_s", "duration", "measurement", "s",
         "diagnostic", 0},
    };
}

std::vector<SensorSpec> inverter_sensors(int channels) {
    std::vector<SensorSpec> specs{
        {"power", "Power", "power_w", "power", "measurement", "W", kNone, 0},
        {"temperature", "Temperature", "temperature_c", "temperature", "measurement",
         kDegreesCelsius, "diagnostic", 0},
        {"frequency", "Grid frequency", "frequency_hz", "frequency", "measurement", "Hz",
         "diagnostic", 1},
    };
    for (int ch = 1; ch <= channels; ++ch) {
        const std::string prefix = "ch" + std::to_string(ch);
        const std::string label = "Channel " + std::to_string(ch);
        specs.push_back({prefix + "_power", label + " power", prefix + "_power_w", "power",
                         "measurement", "W", kNone, 0});
        specs.push_back({prefix + "_voltage", label + " voltage", prefix + "_voltage_v", "voltage",
                         "measurement", "V", kNone, 0});
        specs.push_back({prefix + "_current", label + " current", prefix + "_current_a", "current",
                         "measurement", "A", kNone, 2});
    }
    return specs;
}

nlohmann::json component(const std::string& node, const SensorSpec& spec) {
    const std::string unique_id = node + "_" + spec.object;
    nlohmann::json c{
        {"p", "sensor"},
        {"name", spec.name},
        {"unique_id", unique_id},
        {"default_entity_id", "sensor." + unique_id},
        {"value_template", "{{ value_json." + spec.state_key + " }}"},
    };
    if (spec.device_class)
        c["device_class"] = spec.device_class;
    if (spec.state_class)
        c["state_class"] = spec.state_class;
    if (spec.unit)
        c["unit_of_measurement"] = spec.unit;
    if (spec.entity_category)
        c["entity_category"] = spec.entity_category;
    if (spec.display_precision >= 0)
        c["suggested_display_precision"] = spec.display_precision;
    return c;
}

DeviceDiscovery make_device(const TopicScheme& topics, const std::string& device_key,
                            nlohmann::json device, const std::vector<SensorSpec>& specs,
                            const std::string& state_topic, nlohmann::json availability,
                            const std::string& sw_version) {
    const std::string node = discovery_node_id(device_key);
    nlohmann::json components = nlohmann::json::object();
    for (const auto& spec : specs)
        components[spec.object] = component(node, spec);
    nlohmann::json payload{
        {"device", std::move(device)},
        {"origin",
         {{"name", "ecu2mqtt"}, {"sw_version", sw_version}, {"support_url", kSupportUrl}}},
        {"cmps", std::move(components)},
        {"state_topic", state_topic},
        {"availability", std::move(availability)},
        {"availability_mode", "all"},
        {"qos", 1},
    };
    return {device_discovery_topic(topics, device_key), std::move(payload)};
}

// component() as text; the keys in dump()'s (sorted) order.
void append_component(std::string& out, const std::string& node, const SensorSpec& spec) {
    const std::string unique_id = node + "_" + spec.object;
    JsonObjectWriter c(out);
    c.string("default_entity_id", "sensor." + unique_id);
    if (spec.device_class)
        c.string("device_class", spec.device_class);
    if (spec.entity_category)
        c.string("entity_category", spec.entity_category);
    c.string("name", spec.name);
    c.string("p", "sensor");
    if (spec.state_class)
        c.string("state_class", spec.state_class);
    if (spec.display_precision >= 0)
        c.integer("suggested_display_precision", spec.display_precision);
    c.string("unique_id", unique_id);
    if (spec.unit)
        c.string("unit_of_measurement", spec.unit);
    c.string("value_template", "{{ value_json." + spec.state_key + " }}");
    c.close();
}

void append_string_array(std::string& out, std::initializer_list<std::string_view> items,
                         std::string_view member) {
    out += '[';
    bool first = true;
    for (const auto item : items) {
        if (!first)
            out += ',';
        first = false;
        if (member.empty()) {
            append_json_string(out, item);
        } else {
            out += "{\"";
            out += member;
            out += "\":";
            append_json_string(out, item);
            out += '}';
        }
    }
    out += ']';
}

// make_device() as text. `device` writes the device object's members after "identifiers" (the
// first key, and the same for every device), in sorted order.
template <class DeviceMembers>
std::string device_text(const std::string& device_key, std::vector<SensorSpec> specs,
                        const std::string& state_topic,
                        std::initializer_list<std::string_view> availability,
                        const std::string& sw_version, DeviceMembers&& device) {
    const std::string node = discovery_node_id(device_key);
    std::sort(specs.begin(), specs.end(),
              [](const SensorSpec& a, const SensorSpec& b) { return a.object < b.object; });
    std::string out;
    out.reserve(512 + 420 * specs.size());
    JsonObjectWriter payload(out);
    append_string_array(payload.key("availability"), availability, "topic");
    payload.string("availability_mode", "all");
    auto& cmps = payload.key("cmps");
    cmps += '{';
    for (std::size_t i = 0; i < specs.size(); ++i) {
        if (i > 0)
            cmps += ',';
        append_json_string(cmps, specs[i].object);
        cmps += ':';
        append_component(cmps, node, specs[i]);
    }
    cmps += '}';
    JsonObjectWriter members(payload.key("device"));
    append_string_array(members.key("identifiers"), {node}, {});
    device(members);
    members.close();
    JsonObjectWriter origin(payload.key("origin"));
    origin.string("name", "ecu2mqtt");
    origin.string("support_url", kSupportUrl);
    origin.string("sw_version", sw_version);
    origin.close();
    payload.integer("qos", 1);
    payload.string("state_topic", state_topic);
    payload.close();
    return out;
}

} // namespace

std::string discovery_node_id(const std::string& device_key) {
    return "ecu2mqtt_" + device_key;
}

std::string device_discovery_topic(const TopicScheme& topics, const std::string& device_key) {
    return topics.discovery_prefix + "/device/" + discovery_node_id(device_key) + "/config";
}

std::optional<std::string> our_device_key(const TopicScheme& topics, const std::string& topic) {
    const std::string head = topics.discovery_prefix + "/device/ecu2mqtt_";
    const std::string tail = "/config";
    if (!topic.starts_with(head) || !topic.ends_with(tail) ||
        topic.size() <= head.size() + tail.size())
        return std::nullopt;
    const auto key = topic.substr(head.size(), topic.size() - head.size() - tail.size());
    if (key.find('/') != std::string::npos)
        return std::nullopt;
    return key;
}

DeviceDiscovery ecu_discovery(const TopicScheme& topics, const std::string& ecu_id,
                              const std::string& ecu_model, const std::string& sw_version) {
    nlohmann::json device{{"identifiers", {discovery_node_id(ecu_id)}},
                          {"name", "APsystems " + ecu_model + " " + ecu_id},
                          {"manufacturer", "APsystems"},
                          {"model", ecu_model},
                          {"serial_number", ecu_id}};
    nlohmann::json availability{{{"topic", topics.bridge_state()}},
                                {{"topic", topics.ecu_availability(ecu_id)}}};
    return make_device(topics, ecu_id, std::move(device), ecu_sensors(), topics.ecu_state(ecu_id),
                       std::move(availability), sw_version);
}

DeviceDiscovery inverter_discovery(const TopicScheme& topics, const std::string& ecu_id,
                                   const KnownInverter& inverter, const std::string& sw_version) {
    nlohmann::json device{{"identifiers", {discovery_node_id(inverter.uid)}},
                          {"name", "APsystems " + inverter.model + " " + inverter.uid},
                          {"manufacturer", "APsystems"},
                          {"model", inverter.model},
                          {"model_id", inverter.model_code},
                          {"serial_number", inverter.uid},
                          {"via_device", discovery_node_id(ecu_id)}};
    nlohmann::json availability{{{"topic", topics.bridge_state()}},
                                {{"topic", topics.ecu_availability(ecu_id)}},
                                {{"topic", topics.inverter_availability(ecu_id, inverter.uid)}}};
    return make_device(topics, inverter.uid, std::move(device), inverter_sensors(inverter.channels),
                       topics.inverter_state(ecu_id, inverter.uid), std::move(availability),
                       sw_version);
}

std::string ecu_discovery_text(const TopicScheme& topics, const std::string& ecu_id,
                               const std::string& ecu_model, const std::string& sw_version) {
    return device_text(ecu_id, ecu_sensors(), topics.ecu_state(ecu_id),
                       {topics.bridge_state(), topics.ecu_availability(ecu_id)}, sw_version,
                       [&](JsonObjectWriter& device) {
                           device.string("manufacturer", "APsystems");
                           device.string("model", ecu_model);
                           device.string("name", "APsystems " + ecu_model + " " + ecu_id);
                           device.string("serial_number", ecu_id);
                       });
}

std::string inverter_discovery_text(const TopicScheme& topics, const std::string& ecu_id,
                                    const KnownInverter& inverter, const std::string& sw_version) {
    return device_text(inverter.uid, inverter_sensors(inverter.channels),
                       topics.inverter_state(ecu_id, inverter.uid),
                       {topics.bridge_state(), topics.ecu_availability(ecu_id),
                        topics.inverter_availability(ecu_id, inverter.uid)},
                       sw_version, [&](JsonObjectWriter& device) {
                           device.string("manufacturer", "APsystems");
                           device.string("model", inverter.model);
                           device.string("model_id", inverter.model_code);
                           device.string("name",
                                         "APsystems " + inverter.model + " " + inverter.uid);
                           device.string("serial_number", inverter.uid);
                           device.string("via_device", discovery_node_id(ecu_id));
                       });
}

bool announced_by_another_bridge(const TopicScheme& topics, const nlohmann::json& payload) {
    if (!payload.is_object())
        return false;
    const auto availability = payload.find("availability");
    if (availability == payload.end() || !availability->is_array())
        return false;
    bool other_bridge = false;
    for (const auto& entry : *availability) {
        if (!entry.is_object() || !entry.contains("topic") || !entry["topic"].is_string())
            continue;
        const auto& topic = entry["topic"].get_ref<const std::string&>();
        if (topic == topics.bridge_state())
            return false;
        other_bridge = other_bridge || topic.ends_with("/bridge/state");
    }
    return other_bridge;
}

std::set<std::string> component_ids(const nlohmann::json& payload) {
    std::set<std::string> ids;
    if (!payload.is_object())
        return ids;
    const auto it = payload.find("cmps");
    if (it == payload.end() || !it->is_object())
        return ids;
    for (const auto& [id, value] : it->items())
        if (!(value.is_object() && value.size() == 1)) // a removal marker: already gone
            ids.insert(id);
    return ids;
}

void mark_removed_components(DeviceDiscovery& config, const std::set<std::string>& previous) {
    auto& components = config.payload["cmps"];
    for (const auto& id : previous)
        if (!components.contains(id)) // every component is a sensor but the weak-panel hint
            components[id] = {{"p", id == "weak_panel" ? "binary_sensor" : "sensor"}};
}

} // namespace ecu2mqtt
