// The weak-panel hint kept up to date upload by upload: a running tally per channel over a
// window of the newest moments, so that one upload costs about as much as its channels.
// Pure; gives the verdicts weak_channels() gives over the same moments.
#pragma once

#include "ecu2mqtt/ledger/weak_panels.hpp"

#include <deque>

namespace ecu2mqtt {

class WeakPanelTally {
  public:
    explicit WeakPanelTally(std::size_t capacity, WeakPanelRules rules = {})
        : capacity_(capacity), rules_(rules) {}

    // The newest moment; past `capacity` the oldest leaves the window.
    void add(ChannelMoment moment);
    // weak_channels() over the moments in the window.
    std::vector<WeakChannel> weak() const;
    // Sunny moments in the window.
    std::size_t sunny_moments() const { return sunny_; }
    std::size_t size() const { return window_.size(); }

  private:
    struct Scored {
        ChannelMoment moment;
        double median = 0;    // 0: not a sunny moment
        std::size_t half = 0; // 0 before the ECU's midday, 1 after
    };
    // Adds (+1) or takes back (-1) a sunny moment's share in each of its channels' tallies.
    void count(const Scored& scored, int sign);
    double median_ratio(const ChannelId& id) const;

    std::size_t capacity_;
    WeakPanelRules rules_;
    std::deque<Scored> window_;
    std::map<ChannelId, ChannelTally> tallies_;
    std::size_t sunny_ = 0;
};

} // namespace ecu2mqtt
