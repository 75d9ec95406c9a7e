#include "schema.hpp"

#include "ecu2mqtt/store/pvoutput_queue.hpp"
#include "ecu2mqtt/store/store.hpp"

#include <random>
#include <sqlite3.h>

namespace ecu2mqtt {
namespace {

// Version 1. A later version adds its steps after these and raises kSchemaVersion; each step
// leaves what is there alone, so that every version's file opens.
constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS meta (
  key   TEXT PRIMARY KEY,
  value TEXT NOT NULL
);
-- Readings kept for the broker and not acknowledged yet; one row per upload (or midnight reset),
-- its messages encoded by the publisher.
CREATE TABLE IF NOT EXISTS pending_readings (
  sequence  INTEGER PRIMARY KEY AUTOINCREMENT,
  ecu_id    TEXT NOT NULL,
  kept_at   INTEGER NOT NULL,
  messages  BLOB NOT NULL
);
-- Each ECU's ledger (what it decided so far), as JSON.
CREATE TABLE IF NOT EXISTS ecu_state (
  ecu_id   TEXT PRIMARY KEY,
  state    TEXT NOT NULL
);
-- Each ECU's recent kept readings (timestamp and content fingerprint), to tell a repeat from a
-- new reading; one row per upload rather than the whole list in the state each time.
CREATE TABLE IF NOT EXISTS kept_readings (
  ecu_id       TEXT NOT NULL,
  ecu_time     TEXT NOT NULL,
  fingerprint  TEXT NOT NULL,
  PRIMARY KEY (ecu_id, ecu_time, fingerprint)
) WITHOUT ROWID;
-- Messages not fully used: undecodable, inverter blocks left out, clock-suspect.
CREATE TABLE IF NOT EXISTS raw_messages (
  id           INTEGER PRIMARY KEY AUTOINCREMENT,
  ecu_id       TEXT NOT NULL,
  received_at  INTEGER NOT NULL,
  why          TEXT NOT NULL,
  line         TEXT NOT NULL
);
-- The power curve, by the ECU's own clock (local time, "YYYY-MM-DDThh:mm:ss").
CREATE TABLE IF NOT EXISTS power_points (
  ecu_id        TEXT NOT NULL,
  ecu_time      TEXT NOT NULL,
  power_w       REAL NOT NULL,
  lifetime_kwh  REAL NOT NULL,
  PRIMARY KEY (ecu_id, ecu_time)
) WITHOUT ROWID;
-- Per ECU day: the lifetime counter's lowest and highest reading, the peak power.
CREATE TABLE IF NOT EXISTS daily_energy (
  ecu_id              TEXT NOT NULL,
  day                 TEXT NOT NULL,
  first_lifetime_kwh  REAL NOT NULL,
  last_lifetime_kwh   REAL NOT NULL,
  peak_power_w        REAL NOT NULL,
  readings            INTEGER NOT NULL,
  PRIMARY KEY (ecu_id, day)
) WITHOUT ROWID;
)sql";

// Version 2: what was announced to Home Assistant, and the clears of it not yet at the broker,
// so that cleaning up needs no read-back. A version 1 file gains them empty: the devices still
// known are recorded as they are announced again at start.
constexpr const char* kSchemaV2 = R"sql(
CREATE TABLE IF NOT EXISTS announced_devices (
  device_id           TEXT PRIMARY KEY,
  ecu_id              TEXT NOT NULL,
  config_topic        TEXT NOT NULL,
  state_topic         TEXT NOT NULL,
  availability_topic  TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS pending_clears (
  topic           TEXT PRIMARY KEY,
  ecu_id          TEXT NOT NULL,
  readings_up_to  INTEGER NOT NULL
) WITHOUT ROWID;
)sql";

// Version 4: each channel's power of the newest day of live uploads, so that the weak-panel hint
// goes on after a restart from where it was. A version 3 file gains it empty.
constexpr const char* kSchemaV4 = R"sql(
CREATE TABLE IF NOT EXISTS channel_powers (
  ecu_id    TEXT NOT NULL,
  ecu_time  TEXT NOT NULL,
  powers    TEXT NOT NULL,
  PRIMARY KEY (ecu_id, ecu_time)
) WITHOUT ROWID;
)sql";

std::string random_id() {
    std::random_device device;
    std::mt19937_64 generator((std::uint64_t(device()) << 32) ^ device());
    static constexpr char kDigits[] = "0123456789abcdef";
    std::string id;
    for (int i = 0; i < 16; ++i)
        id += kDigits[generator() % 16];
    return id;
}

} // namespace

void configure_connection(Database& db, std::chrono::milliseconds busy_timeout) {
    sqlite3_busy_timeout(db.handle(), static_cast<int>(busy_timeout.count()));
    db.exec("PRAGMA synchronous = FULL");
    // The working set is small (recent readings, a few ECU states); SQLite's default 2 MiB page
    // cache per connection would be most of the service's idle memory.
    db.exec("PRAGMA cache_size = -256");
    // A reader that held a snapshot for long (a sqlite3 session, a paged export) lets the log
    // grow; once it is checkpointed again, the file shrinks back to this.
    db.exec("PRAGMA journal_size_limit = 8388608");
    db.exec("PRAGMA foreign_keys = OFF");
}

void create_or_check_schema(Database& db, const std::filesystem::path& file,
                            std::chrono::milliseconds busy) {
    configure_connection(db, busy);
    auto version = db.prepare("PRAGMA user_version");
    version.step();
    const auto found = version.column_int(0);
    version.reset();
    if (found > Store::kSchemaVersion)
        throw DatabaseError("database \"" + file.string() + "\" has schema version " +
                                std::to_string(found) + ", written by a newer ecu2mqtt; this one " +
                                "reads version " + std::to_string(Store::kSchemaVersion),
                            SQLITE_MISMATCH);
    // WAL is a property of the file: set once, kept by every later connection.
    auto mode = db.prepare("PRAGMA journal_mode = WAL");
    mode.step();
    const std::string journal(mode.column_text(0));
    mode.reset();
    if (journal != "wal")
        throw DatabaseError("database \"" + file.string() + "\": cannot use a write-ahead log " +
                                "(journal mode stays " + journal + ")",
                            SQLITE_CANTOPEN);
    db.exec("BEGIN IMMEDIATE");
    try {
        db.exec(kSchema);
        db.exec(kSchemaV2);
        db.exec(kSchemaV4);
        db.exec(pvoutput_schema());
        auto insert = db.prepare("INSERT OR IGNORE INTO meta(key, value) VALUES (?, ?)");
        insert.bind(1, std::string_view("database_id")).bind(2, random_id()).run();
        db.exec("PRAGMA user_version = " + std::to_string(Store::kSchemaVersion));
        db.exec("COMMIT");
    } catch (...) {
        db.exec("ROLLBACK");
        throw;
    }
}

} // namespace ecu2mqtt
