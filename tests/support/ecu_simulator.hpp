// A pure simulated ECU for ledger tests: its own time zone with DST, an RTC that can be wrong,
// a lifetime counter, and its own account of the energy produced per day of its clock.
#pragma once

#include "ecu2mqtt/protocol/ecu_message.hpp"
#include "ecu2mqtt/protocol/local_time.hpp"
#include "ecu2mqtt/tools/solar_simulation.hpp"

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace test {

using ecu2mqtt::LocalDate;
using ecu2mqtt::LocalDateTime;
using ecu2mqtt::RealtimeUpload;

// Seconds from UTC to a zone's wall clock at a UTC instant.
using ZoneRule = std::function<std::int64_t(std::int64_t utc_s)>;

inline std::int64_t utc_seconds(const LocalDateTime& utc) {
    return ecu2mqtt::to_epoch_seconds(utc);
}

// Day of the month of the n-th (1-based) Sunday, or the last one with n = 0.
inline int sunday_of(int year, int month, int n) {
    const auto first = utc_seconds({year, month, 1, 0, 0, 0}) / 86400;
    const int first_weekday = static_cast<int>((first + 4) % 7); // 1970-01-01 was a Thursday
    const int first_sunday = 1 + (7 - first_weekday) % 7;
    if (n > 0)
        return first_sunday + 7 * (n - 1);
    const int days_in_month = static_cast<int>(
        (utc_seconds({month == 12 ? year + 1 : year, month == 12 ? 1 : month + 1, 1, 0, 0, 0}) /
         86400) -
        first);
    int last = first_sunday;
    while (last + 7 <= days_in_month)
        last += 7;
    return last;
}

inline ZoneRule fixed_zone(std::int64_t offset_s) {
    return [offset_s](std::int64_t) { return offset_s; };
}

// America/Los_Angeles: UTC−8, UTC−7 from the second Sunday of March 02:00 local to the first
// Sunday of November 02:00 local.
inline ZoneRule los_angeles() {
    return [](std::int64_t utc_s) -> std::int64_t {
        const int year = ecu2mqtt::from_epoch_seconds(utc_s).year;
        const auto starts = utc_seconds({year, 3, sunday_of(year, 3, 2), 10, 0, 0});
        const auto ends = utc_seconds({year, 11, sunday_of(year, 11, 1), 9, 0, 0});
        return (utc_s >= starts && utc_s < ends) ? -7 * 3600 : -8 * 3600;
    };
}

// Europe/Berlin: UTC+1, UTC+2 from the last Sunday of March to the last Sunday of October,
// switching at 01:00 UTC.
inline ZoneRule berlin() {
    return [](std::int64_t utc_s) -> std::int64_t {
        const int year = ecu2mqtt::from_epoch_seconds(utc_s).year;
        const auto starts = utc_seconds({year, 3, sunday_of(year, 3, 0), 1, 0, 0});
        const auto ends = utc_seconds({year, 10, sunday_of(year, 10, 0), 1, 0, 0});
        return (utc_s >= starts && utc_s < ends) ? 2 * 3600 : 3600;
    };
}

inline ZoneRule shanghai() {
    return fixed_zone(8 * 3600);
}

struct SimulatedReading {
    std::size_t index = 0; // order of production
    RealtimeUpload upload;
    std::int64_t utc_s = 0; // when it was produced (host UTC)
    double energy_kwh = 0;  // produced since the previous reading
    LocalDate day;          // the ECU's day it belongs to: its clock's date, glitches aside
    bool glitch = false;    // stamped by a broken RTC
};

class EcuSimulator {
  public:
    // `sun` is where the ECU really is (it drives the production); its clock shows `sun`'s time
    // plus `clock_shift_s` (a wrongly set zone) unless a glitch overrides it.
    EcuSimulator(std::string ecu_id, ZoneRule sun, int inverters, double watts_per_inverter,
                 double lifetime_kwh = 2100.0)
        : id_(std::move(ecu_id)), sun_(std::move(sun)), inverters_(inverters),
          watts_per_inverter_(watts_per_inverter), lifetime_kwh_(lifetime_kwh) {}

    void set_clock_shift(std::int64_t seconds) { clock_shift_s_ = seconds; }
    // The RTC shows this instead of the time, until cleared.
    void set_glitch(std::optional<LocalDateTime> shown) { glitch_ = shown; }
    void set_uploads_at_night(bool yes) { uploads_at_night_ = yes; }

    LocalDateTime sun_time(std::int64_t utc_s) const {
        return ecu2mqtt::from_epoch_seconds(utc_s + sun_(utc_s));
    }
    LocalDateTime clock_time(std::int64_t utc_s) const {
        return ecu2mqtt::from_epoch_seconds(utc_s + sun_(utc_s) + clock_shift_s_);
    }
    bool uploads_at(std::int64_t utc_s) const {
        return uploads_at_night_ || ecu2mqtt::ecu_uploads_at(sun_time(utc_s), 21, 5);
    }

    // Produces from the previous reading to `utc_s` and returns the reading stamped then.
    const SimulatedReading& produce(std::int64_t utc_s) {
        const double fraction = ecu2mqtt::solar_fraction(sun_time(utc_s));
        const double watts = watts_per_inverter_ * fraction;
        const std::int64_t since = previous_utc_s_ ? utc_s - *previous_utc_s_ : 0;
        previous_utc_s_ = utc_s;
        const double energy = watts * inverters_ * static_cast<double>(since) / 3.6e6;
        lifetime_kwh_ += energy;

        SimulatedReading r;
        r.index = readings_.size();
        r.utc_s = utc_s;
        r.energy_kwh = energy;
        r.day = ecu2mqtt::date_of(clock_time(utc_s));
        r.glitch = glitch_.has_value();
        RealtimeUpload& u = r.upload;
        u.signature = "APS18";
        u.ecu_id = id_;
        u.ecu_model = "ECU-R";
        u.timestamp = glitch_ ? *glitch_ : clock_time(utc_s);
        u.lifetime_energy_kwh = lifetime_kwh_;
        if (fraction > 0) {
            for (int i = 0; i < inverters_; ++i) {
                ecu2mqtt::InverterReading inv;
                inv.uid = uid_of(i);
                inv.model_code = "01";
                inv.model = "YC600";
                inv.frequency_hz = 50.0;
                inv.temperature_c = 20 + 20 * fraction;
                for (int c = 1; c <= 2; ++c)
                    inv.channels.push_back({c, 32.0, watts / 2 / 32.0, watts / 2, {}});
                inv.power_w = watts;
                u.inverters.push_back(std::move(inv));
            }
        }
        u.power_w = watts * static_cast<double>(u.inverters.size());
        u.inverters_online = static_cast<int>(u.inverters.size());
        readings_.push_back(std::move(r));
        return readings_.back();
    }

    std::string uid_of(int i) const {
        std::string digits = std::to_string(408000000000LL + i);
        return digits;
    }
    const std::vector<SimulatedReading>& readings() const { return readings_; }
    const std::string& id() const { return id_; }

  private:
    std::string id_;
    ZoneRule sun_;
    int inverters_;
    double watts_per_inverter_;
    double lifetime_kwh_;
    std::int64_t clock_shift_s_ = 0;
    std::optional<LocalDateTime> glitch_;
    bool uploads_at_night_ = false;
    std::optional<std::int64_t> previous_utc_s_;
    std::vector<SimulatedReading> readings_;
};

} // namespace test
