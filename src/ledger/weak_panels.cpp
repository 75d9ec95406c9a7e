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
        std::size_t sunny[2] = {0, 0}; // before and after midday
        std::size_t low[2] = {0, 0};
        std::vector<double> ratios;
    };
    const auto weak_in = [&rules](std::size_t sunny, std::size_t low) {
        return sunny >= rules.min_moments_per_half &&
               static_cast<double>(low) >= rules.low_share * static_cast<double>(sunny);
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
        const int half = after_midday(moment.at_s, rules) ? 1 : 0;
        for (const auto& [id, w] : moment.power_w) {
            auto& t = tallies[id];
            ++t.sunny[half];
            const double ratio = w / median;
            t.low[half] += ratio < rules.low_ratio ? 1 : 0;
            t.ratios.push_back(ratio);
        }
    }
    std::vector<WeakChannel> weak;
    for (auto& [id, t] : tallies) {
        const auto sunny = t.sunny[0] + t.sunny[1];
        if (sunny >= rules.min_sunny_moments && weak_in(t.sunny[0], t.low[0]) &&
            weak_in(t.sunny[1], t.low[1]))
            weak.push_back({id, median_of(std::move(t.ratios)), sunny, t.low[0] + t.low[1]});
    }
    return weak;
}

bool after_midday(std::int64_t at_s, const WeakPanelRules& rules) {
    constexpr std::int64_t kDay = 86400;
    return ((at_s % kDay) + kDay) % kDay >= rules.midday_s;
}

} // namespace ecu2mqtt
