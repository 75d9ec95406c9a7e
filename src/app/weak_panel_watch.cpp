#include "ecu2mqtt/app/weak_panel_watch.hpp"

#include "ecu2mqtt/protocol/local_time.hpp"

#include <algorithm>
#include <nlohmann/json.hpp>

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

std::vector<WeakChannelShown> shown(const std::vector<WeakChannel>& weak) {
    std::vector<WeakChannelShown> channels;
    channels.reserve(weak.size());
    for (const auto& w : weak)
        channels.push_back({w.id.inverter, w.id.channel, w.median_ratio, w.sunny_moments});
    return channels;
}

} // namespace ecu2mqtt
