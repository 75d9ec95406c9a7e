#include "ecu2mqtt/ledger/counter_model.hpp"

#include "ecu2mqtt/ledger/ecu_ledger.hpp"

#include <algorithm>

namespace ecu2mqtt::counter_model {

namespace {

// Four channels for an inverter block that did not decode: the most any model has.
constexpr int kMostChannelsPerInverter = 4;

std::int64_t elapsed_s(const CounterSample& from, const CounterSample& to) {
    const std::int64_t by_ecu = to_epoch_seconds(to.timestamp) - to_epoch_seconds(from.timestamp);
    const std::int64_t by_host = to.received_s - from.received_s;
    return std::max<std::int64_t>({by_ecu, by_host, 0});
}

} // namespace

double ceiling_kw(const std::map<std::string, LedgerInverter>& known,
                  const RealtimeUpload& upload) {
    int channels = 0;
    for (const auto& [uid, inverter] : known)
        channels += inverter.channels;
    for (const auto& reading : upload.inverters)
        if (!known.contains(reading.uid))
            channels += static_cast<int>(reading.channels.size());
    // What the message itself holds, not its header's count of inverters online: that is a
    // number a forger chooses (up to 999), and it would buy a ceiling no plant has.
    channels += static_cast<int>(upload.skipped_blocks.size()) * kMostChannelsPerInverter;
    return std::max(channels, kMinimumChannels) * kChannelCeilingW * kMargin / 1000.0;
}

double plausible_rise_kwh(const CounterSample& from, const CounterSample& to, double ceiling_kw) {
    return ceiling_kw * static_cast<double>(elapsed_s(from, to)) / 3600.0 + kRoundingKwh;
}

Fit fit_after(const CounterSample& from, const CounterSample& next, double ceiling_kw) {
    const double rise = next.lifetime_kwh - from.lifetime_kwh;
    if (rise > plausible_rise_kwh(from, next, ceiling_kw))
        return Fit::Jump;
    if (rise < -kRoundingKwh)
        return Fit::Dip;
    return Fit::Agrees;
}

bool fits_before(const CounterSample& newest, const CounterSample& earlier, double ceiling_kw) {
    if (earlier.lifetime_kwh - newest.lifetime_kwh >
        plausible_rise_kwh(newest, earlier, ceiling_kw))
        return false;
    const std::int64_t by_ecu = std::max<std::int64_t>(0, to_epoch_seconds(newest.timestamp) -
                                                              to_epoch_seconds(earlier.timestamp));
    const double most = ceiling_kw * static_cast<double>(by_ecu) / 3600.0 + kRoundingKwh;
    return newest.lifetime_kwh - earlier.lifetime_kwh <= most;
}

bool extend_run(std::vector<CounterSample>& run, const CounterSample& next, double ceiling_kw,
                int adopt_after) {
    if (!run.empty()) {
        const CounterSample& last = run.back();
        if (next.timestamp == last.timestamp && next.lifetime_kwh == last.lifetime_kwh)
            return false; // the same reading sent again confirms nothing
        const bool follows =
            next.timestamp > last.timestamp && fit_after(last, next, ceiling_kw) == Fit::Agrees;
        if (!follows)
            run.clear();
    }
    run.push_back(next);
    const auto needed = static_cast<std::size_t>(std::max(adopt_after, 1));
    if (run.size() > needed)
        run.erase(run.begin(), run.end() - static_cast<std::ptrdiff_t>(needed));
    const std::int64_t spread = run.back().received_s - run.front().received_s;
    return run.size() >= needed && spread >= kRunSpacingS * static_cast<std::int64_t>(needed - 1);
}

} // namespace ecu2mqtt::counter_model
