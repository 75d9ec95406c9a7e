#include "ecu2mqtt/ledger/weak_panel_tally.hpp"

namespace ecu2mqtt {

void WeakPanelTally::add(ChannelMoment moment) {
    Scored scored{std::move(moment), 0, 0};
    if (scored.moment.power_w.size() >= rules_.min_channels) {
        std::vector<double> powers;
        powers.reserve(scored.moment.power_w.size());
        for (const auto& [id, w] : scored.moment.power_w)
            powers.push_back(w);
        const double median = median_of(std::move(powers));
        if (median >= rules_.sunny_median_w)
            scored.median = median;
    }
    scored.half = after_midday(scored.moment.at_s, rules_) ? 1 : 0;
    count(scored, +1);
    window_.push_back(std::move(scored));
    while (window_.size() > capacity_) {
        count(window_.front(), -1);
        window_.pop_front();
    }
}

void WeakPanelTally::count(const Scored& scored, int sign) {
    if (scored.median == 0)
        return;
    sunny_ += sign > 0 ? 1 : -1;
    for (const auto& [id, w] : scored.moment.power_w) {
        auto& t = tallies_[id];
        // The same division as when it was added: a moment leaves the tally as it came in.
        const bool low = w / scored.median < rules_.low_ratio;
        if (sign > 0) {
            ++t.sunny[scored.half];
            t.low[scored.half] += low ? 1 : 0;
            continue;
        }
        --t.sunny[scored.half];
        t.low[scored.half] -= low ? 1 : 0;
        if (t.sunny_total() == 0)
            tallies_.erase(id); // a channel gone from the uploads leaves no tally behind
    }
}

double WeakPanelTally::median_ratio(const ChannelId& id) const {
    std::vector<double> ratios;
    for (const auto& scored : window_) {
        if (scored.median == 0)
            continue;
        if (const auto it = scored.moment.power_w.find(id); it != scored.moment.power_w.end())
            ratios.push_back(it->second / scored.median);
    }
    return median_of(std::move(ratios));
}

std::vector<WeakChannel> WeakPanelTally::weak() const {
    std::vector<WeakChannel> weak;
    for (const auto& [id, t] : tallies_)
        if (weak_by(t, rules_))
            weak.push_back({id, median_ratio(id), t.sunny_total(), t.low_total()});
    return weak;
}

} // namespace ecu2mqtt
