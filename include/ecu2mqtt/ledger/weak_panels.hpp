// The weak-panel hint: a channel that produces clearly less than its ECU's median channel at the
// same moments, over a whole sunny stretch. Pure: the moments come in, the verdict goes out.
#pragma once

#include <array>
#include <compare>
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace ecu2mqtt {

struct ChannelId {
    std::string inverter;
    int channel = 0;
    auto operator<=>(const ChannelId&) const = default;
};

// One upload of one ECU: the DC power of each channel it reported, at the ECU's time.
struct ChannelMoment {
    std::int64_t at_s = 0;
    std::map<ChannelId, double> power_w;
};

// The thresholds, documented in docs/weak-panels.md.
struct WeakPanelRules {
    // A moment counts as sunny when the ECU's median channel gives at least this much: dawn,
    // dusk, night and heavy cloud stay below it and say nothing.
    double sunny_median_w = 50;
    // At a sunny moment a channel is low when it gives less than this share of the median.
    double low_ratio = 0.6;
    // A channel is weak when it was low at this share of the sunny moments it was reported at,
    // before midday and after midday alike...
    double low_share = 0.9;
    // ...and there were at least this many of them: two hours of five-minute uploads, a whole
    // sunny stretch rather than one cloud or one shadow...
    std::size_t min_sunny_moments = 24;
    // ...of which at least this many on either side of midday: a panel on a roof facing east is
    // low all afternoon and high in the morning, one facing west the other way round; only a
    // weak one is low on both sides.
    std::size_t min_moments_per_half = 12;
    // Midday by the ECU's clock, in seconds after its midnight: about solar noon under summer
    // time in most of Europe. Where exactly does not matter much: the halves need only hold
    // enough sunny moments, and a panel facing east or west is high on its side for hours.
    std::int64_t midday_s = 13 * 3600;
    // Fewer channels than this at a moment make no median to compare with.
    std::size_t min_channels = 4;
};

struct WeakChannel {
    ChannelId id;
    double median_ratio = 0; // its power over the ECU's median, the median of the sunny moments
    std::size_t sunny_moments = 0;
    std::size_t low_moments = 0;
};

// Whether a moment (seconds since the epoch, by the ECU's clock) is after the ECU's midday.
bool after_midday(std::int64_t at_s, const WeakPanelRules& rules);

// A channel's sunny and low moments, before [0] and after [1] the ECU's midday.
struct ChannelTally {
    std::array<std::size_t, 2> sunny{};
    std::array<std::size_t, 2> low{};
    std::size_t sunny_total() const { return sunny[0] + sunny[1]; }
    std::size_t low_total() const { return low[0] + low[1]; }
};
// Whether the rules mark a channel with that tally weak.
bool weak_by(const ChannelTally& tally, const WeakPanelRules& rules);

// The median of the values (0 for none).
double median_of(std::vector<double> values);

// The channels the rules mark weak over `moments` (any order), by id.
std::vector<WeakChannel> weak_channels(const std::vector<ChannelMoment>& moments,
                                       const WeakPanelRules& rules = {});

} // namespace ecu2mqtt
