// `ecu2mqtt history`: the history the service keeps (energy per ECU day, the five-minute power
// curve) as CSV, for PVOutput, spreadsheets or Grafana. It reads the state directory's database
// through a read-only connection of its own, so it runs beside the service: WAL lets a reader
// see the last commit while the service writes the next. All of its SQL is in this module.
#pragma once

#include "ecu2mqtt/app/options.hpp"
#include "ecu2mqtt/store/database.hpp"
#include "ecu2mqtt/store/store.hpp"

#include <cstdint>
#include <filesystem>
#include <functional>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

namespace ecu2mqtt {

// How a day's energy was counted from the ECU's lifetime counter.
enum class EnergyBasis {
    PreviousDay,  // the day's highest reading minus the last reading of the day before
    EarlierDay,   // the same, from the latest earlier day with data: days without data lie between
    FirstReading, // no earlier day is kept: the day's highest reading minus its lowest
    CounterReset, // the counter went down (ECU reset or replaced): only its rises are counted
};

std::string_view energy_basis_name(EnergyBasis basis);

struct EnergyDay {
    std::string ecu_id;
    std::string day; // YYYY-MM-DD, the ECU's own calendar day
    double energy_kwh = 0;
    double peak_power_w = 0;
    std::int64_t readings = 0;
    double first_lifetime_kwh = 0; // the day's lowest reading (its first while the counter rises)
    double last_lifetime_kwh = 0;  // the day's highest reading
    EnergyBasis basis = EnergyBasis::PreviousDay;
};

class HistoryReader {
  public:
    // Throws DatabaseError naming the file when it is missing, is not a database, or was
    // written by a newer ecu2mqtt.
    explicit HistoryReader(const std::filesystem::path& database_file);

    // Ordered by ECU, then day. A day's energy counts from the previous day with data even when
    // that day is before `selection.from`.
    std::vector<EnergyDay> daily_energy(const HistorySelection& selection);
    // The store's power points, ordered by ECU, then time; streamed, as a year of them is some
    // 100,000 rows per ECU.
    void power_curve(const HistorySelection& selection,
                     const std::function<void(const PowerPoint&)>& visit);

  private:
    double rises_of_day(const std::string& ecu_id, const std::string& day, double from_kwh);

    Database db_;
};

// RFC 4180: a field with a comma, a quote or a line break is quoted, its quotes doubled.
std::string csv_field(std::string_view text);

// Header and rows, each line ended by CRLF as RFC 4180 has it; energy in kWh with 3 decimals,
// power in W with 1.
void write_daily_energy_csv(std::ostream& out, const std::vector<EnergyDay>& days);
void write_curve_csv_header(std::ostream& out);
void write_curve_csv_row(std::ostream& out, const PowerPoint& point);

// The whole command: CSV on `out`, errors on `err`. Returns the exit status (1 when the
// database cannot be read or the CSV cannot be written).
int run_history(const std::filesystem::path& state_dir, const HistoryOptions& options,
                std::ostream& out, std::ostream& err);

} // namespace ecu2mqtt
