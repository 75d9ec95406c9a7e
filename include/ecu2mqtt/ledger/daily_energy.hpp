// Today's energy for one ECU, derived from its lifetime counter; resets once at local midnight.
#pragma once

#include "ecu2mqtt/protocol/local_time.hpp"

#include <nlohmann/json.hpp>
#include <optional>

namespace ecu2mqtt {

// Pure bookkeeping: the caller says which day an upload belongs to (the ECU's own date) and when
// the service's clock has passed midnight. Rules:
//  - today = highest lifetime seen today − the highest lifetime seen before today;
//  - a new day starts at the first of: an upload dated later, or the clock passing midnight;
//  - an upload dated before the current day never changes today's value (no re-inflation);
//  - the very first upload ever starts the count at zero: earlier production is not known.
class DailyEnergy {
  public:
    void record(const LocalDate& upload_day, double lifetime_kwh);
    void roll_to(const LocalDate& today);
    // The counter restarted at another level (a reset, a new ECU): today goes on from
    // `carried_kwh`, counting what the counter adds from `first_kwh`, its first reading there.
    void restart_counter(double first_kwh, double carried_kwh);

    // nullopt until anything was recorded; never negative.
    std::optional<double> today_kwh() const;
    std::optional<LocalDate> day() const { return day_; }

    nlohmann::json to_json() const;
    // Throws nlohmann::json::exception on a malformed object.
    static DailyEnergy from_json(const nlohmann::json& j);

  private:
    std::optional<LocalDate> day_;
    std::optional<double> baseline_kwh_; // lifetime at the end of the previous day
    std::optional<double> latest_kwh_;   // highest lifetime seen today
};

} // namespace ecu2mqtt
