// Per ECU, the channel powers of its recent live uploads and the weak-panel hint over them, with
// the retained topic and the Home Assistant entity that carry it.
#pragma once

#include "ecu2mqtt/ledger/weak_panel_tally.hpp"
#include "ecu2mqtt/ledger/weak_panels.hpp"
#include "ecu2mqtt/mqtt/mqtt_payloads.hpp"
#include "ecu2mqtt/protocol/ecu_message.hpp"

#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

namespace ecu2mqtt {

class WeakPanelWatch {
  public:
    static constexpr std::size_t kMaxMoments = 288; // a day of five-minute uploads

    explicit WeakPanelWatch(WeakPanelRules rules = {}) : rules_(rules) {}

    // The channel powers of a live upload.
    static ChannelMoment moment_of(const RealtimeUpload& upload);
    // A live upload of its ECU. True when the ECU's weak channels are to be published: on its
    // first upload, and whenever they change.
    bool observe(const RealtimeUpload& upload) { return observe(upload.ecu_id, moment_of(upload)); }
    bool observe(const std::string& ecu_id, ChannelMoment moment);
    // The ECU's moments kept before a restart (oldest first), before its first upload of this
    // run: the hint goes on from where it was. Publishes nothing.
    void seed(const std::string& ecu_id, std::vector<ChannelMoment> moments);
    std::vector<WeakChannel> weak(const std::string& ecu_id) const;
    // Whether the ECU has had a whole sunny stretch (rules.min_sunny_moments) since the start:
    // from then on the hint means something, and its Home Assistant entity is announced.
    bool ready(const std::string& ecu_id) const;
    void forget(const std::string& ecu_id) { ecus_.erase(ecu_id); }

  private:
    struct PerEcu {
        explicit PerEcu(const WeakPanelRules& rules) : tally(kMaxMoments, rules) {}
        WeakPanelTally tally; // over its newest kMaxMoments
        std::vector<WeakChannel> weak;
        bool published = false;
        bool ready = false;
    };
    WeakPanelRules rules_;
    std::map<std::string, PerEcu> ecus_;
};

// `<base>/<ecu_id>/weak_panels`, retained: {"problem": "ON" or "OFF", "channels": [{"inverter",
// "channel", "ratio", "sunny_moments"}]}.
// A moment's channel powers as the store keeps them (ChannelPowers::powers), and back with its
// ECU time ("YYYY-MM-DDThh:mm:ss"); none when either is unreadable.
std::string encode_channel_powers(const ChannelMoment& moment);
std::optional<ChannelMoment> decode_channel_powers(const std::string& ecu_time,
                                                   const std::string& powers);

std::string weak_panels_topic(const TopicScheme& topics, const std::string& ecu_id);
nlohmann::json weak_panels_json(const std::vector<WeakChannel>& weak);

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
