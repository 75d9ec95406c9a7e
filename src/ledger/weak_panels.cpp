#include "ecu2mqtt/ledger/weak_panels.hpp"

#include <algorithm>

namespace ecu2mqtt {

double median_of(std::vector<double> values) {
    if (values.empty())
        return 0;
    const auto middle = values.begin() + static_cast<std::ptrdiff_t>(values.size() / 2);
    std::nth_element(values.begin(), middle, values.end());
    if (values.size() % 2)
        return *middle;
    const double upper = *middle;
    const double lower = *std::max_element(values.begin(), middle);
    return (lower + upper) / 2;
}

std::vector<WeakChannel> weak_channels(const std::vector<ChannelMoment>& moments,
                                       const WeakPanelRules& rules) {
    struct Tally {
        ChannelTally counts;
        std::vector<double> ratios;
    };
    std::map<ChannelId, Tally> tallies;
    for (const auto& moment : moments) {
        if (moment.power_w.size() < rules.min_channels)
            continue;
        std::vector<double> powers;
        powers.reserve(moment.power_w.size());
        for (const auto& [id, w] : moment.power_w)
            powers.push_back(w);
        const double median = median_of(std::move(powers));
        if (median < rules.sunny_median_w)
            continue; // dawn, dusk, night or a cloud over the whole plant
        const std::size_t half = after_midday(moment.at_s, rules) ? 1 : 0;
        for (const auto& [id, w] : moment.power_w) {
            auto& t = tallies[id];
            ++t.counts.sunny[half];
            const double ratio = w / median;
            t.counts.low[half] += ratio < rules.low_ratio ? 1 : 0;
            t.ratios.push_back(ratio);
        }
    }
    std::vector<WeakChannel> weak;
    for (auto& [id, t] : tallies)
        if (weak_by(t.counts, rules))
            weak.push_back(
                {id, median_of(std::move(t.ratios)), t.counts.sunny_total(), t.counts.low_total()});
    return weak;
}

bool weak_by(const ChannelTally& tally, const WeakPanelRules& rules) {
    const auto low_in = [&](std::size_t half) {
        return tally.sunny[half] >= rules.min_moments_per_half &&
               static_cast<double>(tally.low[half]) >=
                   rules.low_share * static_cast<double>(tally.sunny[half]);
    };
    return tally.sunny_total() >= rules.min_sunny_moments && low_in(0) && low_in(1);
}

bool after_midday(std::int64_t at_s, const WeakPanelRules& rules) {
    constexpr std::int64_t kDay = 86400;
    return ((at_s % kDay) + kDay) % kDay >= rules.midday_s;
}

} // namespace ecu2mqtt
