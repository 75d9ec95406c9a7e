// A simulated ECU with its inverters: day curve, night gap, lifetime counter, and the history it
// needs to re-send what the server asks for (backfill). Pure; the simulator binary does the I/O.
#pragma once

#include "ecu2mqtt/protocol/local_time.hpp"

#include <cstdint>
#include <deque>
#include <map>
#include <random>
#include <string>
#include <vector>

namespace ecu2mqtt {

// Share of peak power at wall time `t`: 0 before 06:00 and after 20:00, a sine arch between.
double solar_fraction(const LocalDateTime& t);

// Whether the ECU uploads at `t`: not during the night gap [night_start_hour, night_end_hour).
bool ecu_uploads_at(const LocalDateTime& t, int night_start_hour, int night_end_hour);

struct SimulatedInverter {
    std::string uid;
    int channels = 2;
};

class SimulatedEcu {
  public:
    SimulatedEcu(std::string ecu_id, std::vector<SimulatedInverter> inverters,
                 int peak_watts_per_channel, std::uint32_t seed, double lifetime_wh = 0);

    // Produces from the previous upload up to `t` (each channel at the power it reports now) and
    // returns the upload for `t`. Calls must come in time order.
    std::string upload_at(const LocalDateTime& t, std::int64_t seconds_since_previous);

    // The uploads after `acknowledged` and before `current`, oldest first: what the ECU sends
    // again when the server's reply names an older time than expected.
    std::vector<std::string> resend_after(const LocalDateTime& acknowledged,
                                          const LocalDateTime& current) const;

    const std::string& id() const { return id_; }
    double lifetime_wh() const { return lifetime_wh_; }
    // Energy produced per day (YYYY-MM-DD), in kWh, by the simulation's own bookkeeping.
    const std::map<std::string, double>& produced_kwh_by_day() const {
        return produced_kwh_by_day_;
    }

  private:
    std::string id_;
    std::vector<SimulatedInverter> inverters_;
    std::vector<std::vector<double>> channel_factor_; // per inverter, per channel: 0.8 … 1.0
    int peak_watts_;
    double lifetime_wh_;
    std::map<std::string, double> produced_kwh_by_day_;
    std::deque<std::pair<LocalDateTime, std::string>> history_;
};

} // namespace ecu2mqtt
