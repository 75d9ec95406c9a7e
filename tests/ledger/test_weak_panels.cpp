// The weak-panel hint over simulated days: one weak channel is marked, clouds, dawn, dusk, night
// and a passing shadow are not.
#include "ecu2mqtt/ledger/weak_panels.hpp"
#include "ecu2mqtt/tools/solar_simulation.hpp"

#include <catch2/catch.hpp>
#include <functional>
#include <random>

using namespace ecu2mqtt;

namespace test_weak_panels {
namespace {

// Two QS1 (4 channels each) and two YC600 (2 each), channels between 85 % and 100 % of the peak.
std::vector<ChannelId> plant() {
    std::vector<ChannelId> ids;
    for (const auto& [uid, channels] : std::vector<std::pair<std::string, int>>{
             {"806000000001", 4}, {"806000000002", 4}, {"408000000003", 2}, {"408000000004", 2}})
        for (int c = 1; c <= channels; ++c)
            ids.push_back({uid, c});
    return ids;
}

// Five-minute uploads from `from_hour` to `to_hour` on a June day; `share(id, minute of day)`
// scales each channel's clear-sky output.
std::vector<ChannelMoment> day(int from_hour, int to_hour,
                               const std::function<double(const ChannelId&, int)>& share) {
    std::vector<ChannelMoment> moments;
    const auto ids = plant();
    for (int minute = from_hour * 60; minute < to_hour * 60; minute += 5) {
        const LocalDateTime t{2024, 6, 21, minute / 60, minute % 60, 0};
        ChannelMoment m{minute * 60, {}};
        for (std::size_t i = 0; i < ids.size(); ++i) {
            const double factor = 0.85 + 0.15 * static_cast<double>(i % 4) / 3.0;
            m.power_w[ids[i]] = 300 * solar_fraction(t) * factor * share(ids[i], minute);
        }
        moments.push_back(std::move(m));
    }
    return moments;
}

const ChannelId kWeak{"806000000002", 3};

} // namespace

TEST_CASE("weak panels: one channel at 40 % of its neighbours for a sunny day is marked") {
    const auto moments =
        day(0, 24, [](const ChannelId& id, int) { return id == kWeak ? 0.4 * 0.93 : 1.0; });
    const auto weak = weak_channels(moments);
    REQUIRE(weak.size() == 1);
    CHECK(weak[0].id == kWeak);
    CHECK(weak[0].median_ratio == Approx(0.4).margin(0.05));
    CHECK(weak[0].sunny_moments >= 24);
    CHECK(weak[0].low_moments == weak[0].sunny_moments);
}

TEST_CASE("weak panels: a sunny day with every channel well is not marked") {
    CHECK(weak_channels(day(0, 24, [](const ChannelId&, int) { return 1.0; })).empty());
}

TEST_CASE("weak panels: passing clouds over all channels are not marked") {
    std::mt19937 random(7);
    std::uniform_real_distribution<double> cloud(0.1, 1.0);
    std::map<int, double> cover; // one cloud level per moment, the same for every channel
    const auto moments = day(0, 24, [&](const ChannelId&, int minute) {
        if (!cover.contains(minute))
            cover[minute] = cloud(random);
        return cover[minute];
    });
    CHECK(weak_channels(moments).empty());
}

TEST_CASE("weak panels: dawn, dusk and night are not marked, even with a channel far behind") {
    // A channel facing west gives a fifth of the others in the morning: mornings and evenings
    // alone never make a sunny stretch.
    const auto west = [](const ChannelId& id, int) { return id == kWeak ? 0.2 : 1.0; };
    auto moments = day(4, 7, west);
    const auto dusk = day(19, 22, west);
    moments.insert(moments.end(), dusk.begin(), dusk.end());
    CHECK(weak_channels(moments).empty());
    CHECK(weak_channels(day(22, 24, west)).empty()); // night: nothing produces
    CHECK(weak_channels(day(0, 4, west)).empty());
}

TEST_CASE("weak panels: a shadow on one channel for half an hour is not marked") {
    const auto moments = day(0, 24, [](const ChannelId& id, int minute) {
        return id == kWeak && minute >= 12 * 60 && minute < 12 * 60 + 30 ? 0.2 : 1.0;
    });
    CHECK(weak_channels(moments).empty());
}

TEST_CASE("weak panels: too few sunny moments or channels say nothing") {
    const auto weak = [](const ChannelId& id, int) { return id == kWeak ? 0.4 : 1.0; };
    CHECK(weak_channels(day(12, 13, weak)).empty()); // one hour: 12 moments
    CHECK(weak_channels(day(11, 14, weak)).size() == 1);
    WeakPanelRules rules;
    rules.min_channels = 13; // the plant has 12
    CHECK(weak_channels(day(0, 24, weak), rules).empty());
}

TEST_CASE("weak panels: the median of even and odd counts") {
    CHECK(median_of({}) == 0);
    CHECK(median_of({3, 1, 2}) == 2);
    CHECK(median_of({4, 1, 3, 2}) == Approx(2.5));
}

} // namespace test_weak_panels
