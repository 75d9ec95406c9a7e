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
        std::size_t sunny = 0;
        std::size_t low = 0;
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
        for (const auto& [id, w] : moment.power_w) {
            auto& t = tallies[id];
            ++t.sunny;
            const double ratio = w / median;
            t.low += ratio < rules.low_ratio ? 1 : 0;
            t.ratios.push_back(ratio);
        }
    }
    std::vector<WeakChannel> weak;
    for (auto& [id, t] : tallies)
        if (t.sunny >= rules.min_sunny_moments &&
            static_cast<double>(t.low) >= rules.low_share * static_cast<double>(t.sunny))
            weak.push_back({id, median_of(std::move(t.ratios)), t.sunny, t.low});
    return weak;
}

} // namespace ecu2mqtt
