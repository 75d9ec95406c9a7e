#include "ecu2mqtt/mqtt/weak_panel_watch.hpp"

#include "ecu2mqtt/mqtt/ha_discovery.hpp"
#include "ecu2mqtt/protocol/local_time.hpp"

#include <algorithm>
#include <cmath>

namespace ecu2mqtt {
namespace {

bool same_channels(const std::vector<WeakChannel>& a, const std::vector<WeakChannel>& b) {
    return std::equal(a.begin(), a.end(), b.begin(), b.end(),
                      [](const WeakChannel& x, const WeakChannel& y) { return x.id == y.id; });
}

} // namespace

ChannelMoment WeakPanelWatch::moment_of(const RealtimeUpload& upload) {
    ChannelMoment moment{to_epoch_seconds(upload.timestamp), {}};
    for (const auto& inverter : upload.inverters)
        for (const auto& c : inverter.channels)
            moment.power_w[{inverter.uid, c.channel}] = c.power_w;
    return moment;
}

void WeakPanelWatch::seed(const std::string& ecu_id, std::vector<ChannelMoment> moments) {
    auto& ecu = ecus_.insert_or_assign(ecu_id, PerEcu(rules_)).first->second;
    for (auto& moment : moments)
        ecu.tally.add(std::move(moment));
    ecu.weak = ecu.tally.weak();
    ecu.ready = ecu.tally.sunny_moments() >= rules_.min_sunny_moments;
}

bool WeakPanelWatch::observe(const std::string& ecu_id, ChannelMoment moment) {
    auto& ecu = ecus_.try_emplace(ecu_id, rules_).first->second;
    // A running tally: recomputing the day of moments on every upload was a fifth of the CPU
    // an upload of 25 QS1 cost.
    ecu.tally.add(std::move(moment));
    auto weak = ecu.tally.weak();
    const bool became_ready = !ecu.ready && ecu.tally.sunny_moments() >= rules_.min_sunny_moments;
    ecu.ready = ecu.ready || became_ready;
    const bool changed = !ecu.published || became_ready || !same_channels(weak, ecu.weak);
    ecu.weak = std::move(weak);
    ecu.published = true;
    return changed;
}

std::vector<WeakChannel> WeakPanelWatch::weak(const std::string& ecu_id) const {
    const auto it = ecus_.find(ecu_id);
    return it == ecus_.end() ? std::vector<WeakChannel>{} : it->second.weak;
}

bool WeakPanelWatch::ready(const std::string& ecu_id) const {
    const auto it = ecus_.find(ecu_id);
    return it != ecus_.end() && it->second.ready;
}

std::string encode_channel_powers(const ChannelMoment& moment) {
    auto powers = nlohmann::json::array();
    for (const auto& [id, w] : moment.power_w)
        powers.push_back({id.inverter, id.channel, w});
    return powers.dump();
}

std::optional<ChannelMoment> decode_channel_powers(const std::string& ecu_time,
                                                   const std::string& powers) {
    std::string compact;
    for (const char c : ecu_time)
        if (c != '-' && c != ':' && c != 'T')
            compact += c;
    const auto t = parse_compact_timestamp(compact);
    const auto json = nlohmann::json::parse(powers, nullptr, false);
    if (!t || !json.is_array())
        return std::nullopt;
    ChannelMoment moment{to_epoch_seconds(*t), {}};
    for (const auto& p : json) {
        if (!p.is_array() || p.size() != 3 || !p[0].is_string() || !p[1].is_number_integer() ||
            !p[2].is_number())
            return std::nullopt;
        moment.power_w[{p[0].get<std::string>(), p[1].get<int>()}] = p[2].get<double>();
    }
    return moment;
}

std::string weak_panels_topic(const TopicScheme& topics, const std::string& ecu_id) {
    return topics.base + "/" + ecu_id + "/weak_panels";
}

nlohmann::json weak_panels_json(const std::vector<WeakChannel>& weak) {
    nlohmann::json channels = nlohmann::json::array();
    for (const auto& w : weak)
        channels.push_back({{"inverter", w.id.inverter},
                            {"channel", w.id.channel},
                            {"ratio", std::round(w.median_ratio * 100) / 100},
                            {"sunny_moments", w.sunny_moments}});
    return {{"problem", weak.empty() ? "OFF" : "ON"}, {"channels", std::move(channels)}};
}

EntityDiscovery weak_panel_discovery(const TopicScheme& topics, const std::string& ecu_id,
                                     const std::string& sw_version) {
    const std::string node = discovery_node_id(ecu_id);
    const std::string unique_id = node + "_weak_panel";
    const std::string state_topic = weak_panels_topic(topics, ecu_id);
    nlohmann::json payload{
        {"name", "Weak panel"},
        {"unique_id", unique_id},
        {"default_entity_id", "binary_sensor." + unique_id},
        {"device_class", "problem"},
        {"entity_category", "diagnostic"},
        {"state_topic", state_topic},
        {"value_template", "{{ value_json.problem }}"},
        {"json_attributes_topic", state_topic},
        {"json_attributes_template", "{{ {'channels': value_json.channels} | tojson }}"},
        {"device", {{"identifiers", {node}}}},
        {"origin",
         {{"name", "ecu2mqtt"}, {"sw_version", sw_version}, {"support_url", kSupportUrl}}},
        {"availability",
         {{{"topic", topics.bridge_state()}}, {{"topic", topics.ecu_availability(ecu_id)}}}},
        {"availability_mode", "all"},
        {"qos", 1},
    };
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
    inverter_config.payload["cmps"]["weak_panel"] = {
        {"p", "binary_sensor"},
        {"name", "Weak panel"},
        {"unique_id", unique_id},
        {"default_entity_id", "binary_sensor." + unique_id},
        {"device_class", "problem"},
        {"entity_category", "diagnostic"},
        {"state_topic", state_topic},
        {"value_template", "{{ 'ON' if (" + its_channels + ") else 'OFF' }}"},
        {"json_attributes_topic", state_topic},
        {"json_attributes_template",
         "{{ {'channels': " + its_channels + " | map(attribute='channel') | list} | tojson }}"},
    };
}

} // namespace ecu2mqtt
