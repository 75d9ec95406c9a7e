#include "ecu2mqtt/tools/solar_simulation.hpp"

#include "ecu2mqtt/protocol/upload_encoder.hpp"

#include <cmath>
#include <numbers>

namespace ecu2mqtt {
namespace {

constexpr double kSunrise = 6.0, kSunset = 20.0;
constexpr std::size_t kHistory = 600; // two days of five-minute uploads

} // namespace

double solar_fraction(const LocalDateTime& t) {
    const double hour = t.hour + t.minute / 60.0 + t.second / 3600.0;
    if (hour <= kSunrise || hour >= kSunset)
        return 0.0;
    return std::sin(std::numbers::pi * (hour - kSunrise) / (kSunset - kSunrise));
}

bool ecu_uploads_at(const LocalDateTime& t, int night_start_hour, int night_end_hour) {
    if (night_start_hour == night_end_hour)
        return true;
    const bool in_night = night_start_hour > night_end_hour
                              ? (t.hour >= night_start_hour || t.hour < night_end_hour)
                              : (t.hour >= night_start_hour && t.hour < night_end_hour);
    return !in_night;
}

SimulatedEcu::SimulatedEcu(std::string ecu_id, std::vector<SimulatedInverter> inverters,
                           int peak_watts_per_channel, std::uint32_t seed, double lifetime_wh)
    : id_(std::move(ecu_id)), inverters_(std::move(inverters)), peak_watts_(peak_watts_per_channel),
      lifetime_wh_(lifetime_wh) {
    std::mt19937 random(seed);
    std::uniform_real_distribution<double> spread(0.8, 1.0);
    for (const auto& inv : inverters_) {
        channel_factor_.emplace_back();
        for (int c = 0; c < inv.channels; ++c)
            channel_factor_.back().push_back(spread(random));
    }
}

std::string SimulatedEcu::upload_at(const LocalDateTime& t, std::int64_t seconds_since_previous) {
    UploadSpec spec;
    spec.ecu_id = id_;
    spec.timestamp = format_compact(t);
    const double fraction = solar_fraction(t);
    long long total_watts = 0;
    for (std::size_t i = 0; i < inverters_.size(); ++i) {
        InverterSpec inv;
        inv.uid = inverters_[i].uid;
        inv.decihertz = 500;
        inv.celsius = static_cast<int>(15 + 30 * fraction);
        for (int c = 0; c < inverters_[i].channels; ++c) {
            const int watts =
                static_cast<int>(std::lround(peak_watts_ * fraction * channel_factor_[i][c]));
            const int decivolts = watts > 0 ? 300 + static_cast<int>(60 * fraction) : 0;
            const int centiamps =
                decivolts > 0 ? static_cast<int>(std::lround(watts * 1000.0 / decivolts)) : 0;
            const int interval_mwh = static_cast<int>(
                std::min<long long>(99999, watts * seconds_since_previous * 1000 / 3600));
            inv.channels.push_back({decivolts, centiamps, interval_mwh, watts});
            total_watts += watts;
        }
        spec.inverters.push_back(std::move(inv));
    }
    // What the channels report now is taken as their power since the previous upload.
    const double produced_wh =
        static_cast<double>(total_watts) * static_cast<double>(seconds_since_previous) / 3600.0;
    lifetime_wh_ += produced_wh;
    produced_kwh_by_day_[format_iso(date_of(t))] += produced_wh / 1000.0;
    spec.centiwatts = total_watts * 100;
    spec.decikwh = static_cast<long long>(std::floor(lifetime_wh_ / 100.0));
    if (fraction == 0.0)
        spec.inverters.clear(); // at night the ECU reports no inverters
    std::string message = encode_upload(spec);
    history_.emplace_back(t, message);
    if (history_.size() > kHistory)
        history_.pop_front();
    return message;
}

std::vector<std::string> SimulatedEcu::resend_after(const LocalDateTime& acknowledged,
                                                    const LocalDateTime& current) const {
    std::vector<std::string> out;
    for (const auto& [t, message] : history_)
        if (t > acknowledged && t < current)
            out.push_back(message);
    return out;
}

} // namespace ecu2mqtt
