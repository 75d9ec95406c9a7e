// Per ECU, the channel powers of its recent live uploads and the weak-panel hint over them, as the
// pipeline keeps it; what it publishes is in mqtt/weak_panel_payloads.
#pragma once

#include "ecu2mqtt/ledger/weak_panel_tally.hpp"
#include "ecu2mqtt/ledger/weak_panels.hpp"
#include "ecu2mqtt/mqtt/weak_panel_payloads.hpp"
#include "ecu2mqtt/protocol/ecu_message.hpp"

#include <map>
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

// A moment's channel powers as the store keeps them (ChannelPowers::powers), and back with its
// ECU time ("YYYY-MM-DDThh:mm:ss"); none when either is unreadable.
std::string encode_channel_powers(const ChannelMoment& moment);
std::optional<ChannelMoment> decode_channel_powers(const std::string& ecu_time,
                                                   const std::string& powers);

// The weak channels as the payload shows them.
std::vector<WeakChannelShown> shown(const std::vector<WeakChannel>& weak);

} // namespace ecu2mqtt
