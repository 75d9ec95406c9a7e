#include "ecu2mqtt/ledger/daily_energy.hpp"

#include <algorithm>
#include <cmath>

namespace ecu2mqtt {

void DailyEnergy::record(const LocalDate& upload_day, double lifetime_kwh) {
    if (!day_) {
        day_ = upload_day;
        baseline_kwh_ = lifetime_kwh;
        latest_kwh_ = lifetime_kwh;
        return;
    }
    if (upload_day > *day_) {
        roll_to(upload_day);
        latest_kwh_ = lifetime_kwh;
        if (!baseline_kwh_)
            baseline_kwh_ = lifetime_kwh;
        return;
    }
    if (upload_day == *day_) {
        latest_kwh_ = std::max(latest_kwh_.value_or(lifetime_kwh), lifetime_kwh);
        if (!baseline_kwh_)
            baseline_kwh_ = lifetime_kwh;
        return;
    }
    // A late upload from before today: it may still raise where today starts, but only while
    // today has no reading of its own, so today's value never goes down.
    if (!latest_kwh_ && baseline_kwh_ && lifetime_kwh > *baseline_kwh_)
        baseline_kwh_ = lifetime_kwh;
}

void DailyEnergy::roll_to(const LocalDate& today) {
    if (day_ && today <= *day_)
        return;
    if (latest_kwh_)
        baseline_kwh_ = std::max(baseline_kwh_.value_or(*latest_kwh_), *latest_kwh_);
    latest_kwh_.reset();
    day_ = today;
}

void DailyEnergy::restart_counter(double first_kwh, double carried_kwh) {
    if (!day_)
        return;
    baseline_kwh_ = first_kwh - carried_kwh;
    latest_kwh_ = first_kwh;
}

std::optional<double> DailyEnergy::today_kwh() const {
    if (!day_ || !baseline_kwh_)
        return std::nullopt;
    if (!latest_kwh_)
        return 0.0;
    const double delta = std::max(0.0, *latest_kwh_ - *baseline_kwh_);
    return std::round(delta * 1000.0) / 1000.0; // lifetime has 0.1 kWh steps: drop float noise
}

nlohmann::json DailyEnergy::to_json() const {
    nlohmann::json j = nlohmann::json::object();
    if (day_)
        j["day"] = format_iso(*day_);
    if (baseline_kwh_)
        j["baseline_kwh"] = *baseline_kwh_;
    if (latest_kwh_)
        j["latest_kwh"] = *latest_kwh_;
    return j;
}

DailyEnergy DailyEnergy::from_json(const nlohmann::json& j) {
    DailyEnergy d;
    if (j.contains("day")) {
        d.day_ = parse_iso_date(j.at("day").get<std::string>());
        if (!d.day_)
            throw nlohmann::json::type_error::create(302, "day is not YYYY-MM-DD", &j);
    }
    if (j.contains("baseline_kwh"))
        d.baseline_kwh_ = j.at("baseline_kwh").get<double>();
    if (j.contains("latest_kwh"))
        d.latest_kwh_ = j.at("latest_kwh").get<double>();
    return d;
}

} // namespace ecu2mqtt
