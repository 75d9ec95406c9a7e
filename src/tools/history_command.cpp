#include "ecu2mqtt/tools/history_command.hpp"

#include "ecu2mqtt/store/store.hpp"
#include "ecu2mqtt/tools/pvoutput_history.hpp"

#include <cmath>
#include <cstdio>
#include <sqlite3.h>

namespace ecu2mqtt {
namespace {

// The schema is the store's (src/store/store.cpp); these only read it. An empty selection field
// is bound as '' and selects everything.
constexpr const char* kDaysSql =
    "SELECT ecu_id, day, first_lifetime_kwh, last_lifetime_kwh, peak_power_w, readings "
    "FROM daily_energy "
    "WHERE (?1 = '' OR ecu_id = ?1) AND (?2 = '' OR day >= ?2) AND (?3 = '' OR day <= ?3) "
    "ORDER BY ecu_id, day";
// The last reading before a day, whichever earlier day it is on, and whether that day is the
// day before. Power points and daily totals are written and pruned together, so a reading here
// means a day in daily_energy.
constexpr const char* kReadingBeforeSql =
    "SELECT lifetime_kwh, substr(ecu_time, 1, 10) = date(?2, '-1 day') "
    "FROM power_points WHERE ecu_id = ?1 AND ecu_time < ?2 "
    "ORDER BY ecu_time DESC LIMIT 1";
constexpr const char* kCounterOfDaySql =
    "SELECT lifetime_kwh FROM power_points "
    "WHERE ecu_id = ?1 AND substr(ecu_time, 1, 10) = ?2 ORDER BY ecu_time";
// The upper bound compares the date part: `date(?3, '+1 day')` would be NULL for 9999-12-31.
constexpr const char* kCurveSql =
    "SELECT ecu_id, ecu_time, power_w, lifetime_kwh FROM power_points "
    "WHERE (?1 = '' OR ecu_id = ?1) AND (?2 = '' OR ecu_time >= ?2) "
    "AND (?3 = '' OR substr(ecu_time, 1, 10) <= ?3) "
    "ORDER BY ecu_id, ecu_time";

// The counter is kept in 0.1 kWh steps; anything far below that is floating-point noise.
constexpr double kCounterNoiseKwh = 1e-6;

// How long a read waits for a lock the service holds (a checkpoint, WAL recovery).
constexpr int kBusyTimeoutMs = 2000;

Statement& bind_selection(Statement& statement, const HistorySelection& selection) {
    return statement.bind(1, std::string_view(selection.ecu_id))
        .bind(2, std::string_view(selection.from))
        .bind(3, std::string_view(selection.to));
}

// One snapshot for all statements of an export, even while the service commits.
class ReadTransaction {
  public:
    explicit ReadTransaction(Database& db) : db_(db) { db_.exec("BEGIN"); }
    ~ReadTransaction() {
        try {
            db_.exec("COMMIT");
        } catch (const DatabaseError&) {
            // A read-only transaction has nothing to lose.
        }
    }
    ReadTransaction(const ReadTransaction&) = delete;
    ReadTransaction& operator=(const ReadTransaction&) = delete;

  private:
    Database& db_;
};

Database open_read_only(const std::filesystem::path& file) {
    std::error_code ec;
    if (!std::filesystem::is_regular_file(file, ec))
        throw DatabaseError("no database at \"" + file.string() +
                                "\" (has the service run with this --state-dir?)",
                            SQLITE_CANTOPEN);
    return Database(file, Database::Mode::ReadOnly);
}

void check_schema(Database& db) {
    auto version = db.prepare("PRAGMA user_version");
    version.step();
    const auto found = version.column_int(0);
    if (found == 0)
        throw DatabaseError("\"" + db.path().string() + "\" is not an ecu2mqtt database",
                            SQLITE_NOTADB);
    if (found > Store::kSchemaVersion)
        throw DatabaseError("\"" + db.path().string() + "\" has schema version " +
                                std::to_string(found) + ", written by a newer ecu2mqtt; this one " +
                                "reads version " + std::to_string(Store::kSchemaVersion),
                            SQLITE_MISMATCH);
}

// Fixed decimals, and never "-0.000" for a value that rounds to zero.
std::string fixed(double value, int decimals) {
    if (std::fabs(value) < 0.5 * std::pow(10.0, -decimals))
        value = 0.0;
    char text[64];
    std::snprintf(text, sizeof text, "%.*f", decimals, value);
    return text;
}

constexpr const char* kLineEnd = "\r\n";

} // namespace

std::string_view energy_basis_name(EnergyBasis basis) {
    switch (basis) {
    case EnergyBasis::PreviousDay:
        return "previous_day";
    case EnergyBasis::EarlierDay:
        return "earlier_day";
    case EnergyBasis::FirstReading:
        return "first_reading";
    case EnergyBasis::CounterReset:
        return "counter_reset";
    }
    return "?";
}

HistoryReader::HistoryReader(const std::filesystem::path& database_file)
    : db_(open_read_only(database_file)) {
    sqlite3_busy_timeout(db_.handle(), kBusyTimeoutMs);
    try {
        check_schema(db_);
    } catch (const DatabaseError& e) {
        const std::string what = e.what();
        if (what.find(database_file.string()) != std::string::npos)
            throw;
        throw DatabaseError("cannot read \"" + database_file.string() + "\": " + what, e.code());
    }
}

std::vector<EnergyDay> HistoryReader::daily_energy(const HistorySelection& selection) {
    ReadTransaction snapshot(db_);
    std::vector<EnergyDay> days;
    auto query = db_.prepare(kDaysSql);
    bind_selection(query, selection);
    auto reading_before = db_.prepare(kReadingBeforeSql);
    while (query.step()) {
        EnergyDay d;
        d.ecu_id = std::string(query.column_text(0));
        d.day = std::string(query.column_text(1));
        d.first_lifetime_kwh = query.column_double(2);
        d.last_lifetime_kwh = query.column_double(3);
        d.peak_power_w = query.column_double(4);
        d.readings = query.column_int(5);

        reading_before.bind(1, std::string_view(d.ecu_id)).bind(2, std::string_view(d.day));
        if (!reading_before.step()) {
            d.basis = EnergyBasis::FirstReading;
            d.energy_kwh = d.last_lifetime_kwh - d.first_lifetime_kwh;
        } else {
            const double before_kwh = reading_before.column_double(0);
            const bool day_before = reading_before.column_int(1) != 0;
            // A lowest reading below the one before the day: the counter went down at some point
            // (a reset ECU). The day's highest reading may then be from before the drop, so its
            // rises are counted one by one instead.
            if (d.first_lifetime_kwh < before_kwh - kCounterNoiseKwh) {
                d.basis = EnergyBasis::CounterReset;
                d.energy_kwh = rises_of_day(d.ecu_id, d.day, before_kwh);
            } else {
                d.basis = day_before ? EnergyBasis::PreviousDay : EnergyBasis::EarlierDay;
                d.energy_kwh = d.last_lifetime_kwh - before_kwh;
            }
        }
        reading_before.reset();
        days.push_back(std::move(d));
    }
    return days;
}

// What the counter rose by over the day, from `from_kwh`, its drops left out. Only used when it
// dropped: over a normal day this equals highest minus `from_kwh`, but readings of a clock set
// back interleave in time order, where a rise-by-rise sum would count the same energy again.
double HistoryReader::rises_of_day(const std::string& ecu_id, const std::string& day,
                                   double from_kwh) {
    auto counter = db_.prepare(kCounterOfDaySql);
    counter.bind(1, std::string_view(ecu_id)).bind(2, std::string_view(day));
    double rises = 0;
    double previous = from_kwh;
    while (counter.step()) {
        const double now = counter.column_double(0);
        if (now > previous)
            rises += now - previous;
        previous = now;
    }
    return rises;
}

void HistoryReader::power_curve(const HistorySelection& selection,
                                const std::function<void(const PowerPoint&)>& visit) {
    auto query = db_.prepare(kCurveSql);
    bind_selection(query, selection);
    PowerPoint point;
    while (query.step()) {
        point.ecu_id.assign(query.column_text(0));
        point.ecu_time.assign(query.column_text(1));
        point.power_w = query.column_double(2);
        point.lifetime_kwh = query.column_double(3);
        visit(point);
    }
}

std::string csv_field(std::string_view text) {
    if (text.find_first_of(",\"\r\n") == std::string_view::npos)
        return std::string(text);
    std::string quoted = "\"";
    for (const char c : text) {
        if (c == '"')
            quoted += '"';
        quoted += c;
    }
    quoted += '"';
    return quoted;
}

void write_daily_energy_csv(std::ostream& out, const std::vector<EnergyDay>& days) {
    out << "ecu_id,date,energy_kwh,peak_power_w,readings,first_lifetime_kwh,last_lifetime_kwh,"
           "energy_basis"
        << kLineEnd;
    for (const auto& d : days)
        out << csv_field(d.ecu_id) << ',' << csv_field(d.day) << ',' << fixed(d.energy_kwh, 3)
            << ',' << fixed(d.peak_power_w, 1) << ',' << d.readings << ','
            << fixed(d.first_lifetime_kwh, 3) << ',' << fixed(d.last_lifetime_kwh, 3) << ','
            << energy_basis_name(d.basis) << kLineEnd;
}

void write_curve_csv_header(std::ostream& out) {
    out << "ecu_id,time,power_w,lifetime_kwh" << kLineEnd;
}

void write_curve_csv_row(std::ostream& out, const PowerPoint& point) {
    out << csv_field(point.ecu_id) << ',' << csv_field(point.ecu_time) << ','
        << fixed(point.power_w, 1) << ',' << fixed(point.lifetime_kwh, 3) << kLineEnd;
}

int run_history(const std::filesystem::path& state_dir, const HistoryOptions& options,
                std::ostream& out, std::ostream& err) {
    try {
        HistoryReader reader(Store::file_in(state_dir));
        if (options.pvoutput) {
            write_pvoutput_csv(out, Store::file_in(state_dir));
        } else if (options.curve) {
            write_curve_csv_header(out);
            reader.power_curve(options.selection, [&out](const PowerPoint& point) {
                write_curve_csv_row(out, point);
            });
        } else {
            write_daily_energy_csv(out, reader.daily_energy(options.selection));
        }
    } catch (const std::exception& e) {
        err << "ecu2mqtt: history: " << e.what() << '\n';
        return 1;
    }
    out.flush();
    if (!out) {
        err << "ecu2mqtt: history: cannot write the CSV to standard output\n";
        return 1;
    }
    return 0;
}

} // namespace ecu2mqtt
