#include "ecu2mqtt/store/pvoutput_queue.hpp"

#include "ecu2mqtt/protocol/local_time.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <set>

namespace ecu2mqtt {
namespace {

// Version 3. Parts: each ECU's last reading in a slot; members: the ECUs of a system, each with
// its lifetime when it joined; statuses: what a system's slot sends, and how far it got; outputs:
// the ended days sent with addoutput.
constexpr const char* kSchemaV3 = R"sql(
CREATE TABLE IF NOT EXISTS pvoutput_parts (
  system_id    TEXT NOT NULL,
  slot         TEXT NOT NULL,
  ecu_id       TEXT NOT NULL,
  ecu_time     TEXT NOT NULL,
  power_w      REAL NOT NULL,
  lifetime_wh  REAL NOT NULL,
  PRIMARY KEY (system_id, slot, ecu_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS pvoutput_members (
  system_id    TEXT NOT NULL,
  ecu_id       TEXT NOT NULL,
  base_wh      REAL NOT NULL,
  PRIMARY KEY (system_id, ecu_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS pvoutput_statuses (
  system_id    TEXT NOT NULL,
  slot         TEXT NOT NULL,
  power_w      REAL NOT NULL,
  lifetime_wh  REAL NOT NULL,
  state        TEXT NOT NULL,
  sent_at      INTEGER NOT NULL DEFAULT 0,
  reason       TEXT NOT NULL DEFAULT '',
  PRIMARY KEY (system_id, slot)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS pvoutput_statuses_by_state ON pvoutput_statuses(state, system_id, slot);
CREATE TABLE IF NOT EXISTS pvoutput_outputs (
  system_id     TEXT NOT NULL,
  day           TEXT NOT NULL,
  generated_wh  REAL NOT NULL,
  peak_power_w  REAL NOT NULL,
  peak_time     TEXT NOT NULL,
  sent_at       INTEGER NOT NULL,
  PRIMARY KEY (system_id, day)
) WITHOUT ROWID;
)sql";

std::optional<LocalDateTime> parse_iso_minute(const std::string& text) {
    // "YYYY-MM-DDThh:mm[:ss]"
    if (text.size() < 16 || text[4] != '-' || text[7] != '-' || text[10] != 'T' || text[13] != ':')
        return std::nullopt;
    std::string compact = text.substr(0, 4) + text.substr(5, 2) + text.substr(8, 2) +
                          text.substr(11, 2) + text.substr(14, 2) +
                          (text.size() >= 19 ? text.substr(17, 2) : std::string("00"));
    return parse_compact_timestamp(compact);
}

std::string format_slot(const LocalDateTime& t) {
    return format_iso(t).substr(0, 16);
}

PvoutputRowState state_from(std::string_view name) {
    if (name == "sent")
        return PvoutputRowState::Sent;
    if (name == "rejected")
        return PvoutputRowState::Rejected;
    if (name == "expired")
        return PvoutputRowState::Expired;
    return PvoutputRowState::Pending;
}

PvoutputStatus status_from(Statement& row) {
    PvoutputStatus status;
    status.system_id = std::string(row.column_text(0));
    status.slot = std::string(row.column_text(1));
    status.power_w = row.column_double(2);
    status.lifetime_wh = row.column_double(3);
    status.state = state_from(row.column_text(4));
    status.sent_at_s = row.column_int(5);
    status.reason = std::string(row.column_text(6));
    return status;
}

constexpr const char* kStatusColumns =
    "SELECT system_id, slot, power_w, lifetime_wh, state, sent_at, reason FROM pvoutput_statuses ";

} // namespace

const char* pvoutput_schema() {
    return kSchemaV3;
}

std::optional<std::string> PvoutputMapping::system_for(const std::string& ecu_id) const {
    if (const auto it = system_of.find(ecu_id); it != system_of.end())
        return it->second;
    if (const auto it = system_of.find("*"); it != system_of.end())
        return it->second;
    return std::nullopt;
}

std::vector<std::string> PvoutputMapping::ecus_named_for(const std::string& system_id) const {
    std::vector<std::string> ecus;
    // The default system also takes every ECU not named: naming one ECU for it as well must not
    // narrow it to that one.
    if (const auto every = system_of.find("*");
        every != system_of.end() && every->second == system_id)
        return ecus;
    for (const auto& [ecu, system] : system_of)
        if (system == system_id && ecu != "*")
            ecus.push_back(ecu);
    return ecus;
}

std::optional<std::string> pvoutput_slot_of(const std::string& ecu_time, int interval_min) {
    auto t = parse_iso_minute(ecu_time);
    if (!t || interval_min <= 0)
        return std::nullopt;
    t->minute -= t->minute % interval_min;
    t->second = 0;
    return format_slot(*t);
}

namespace {

// "YYYY-MM-DDThh:mm" shifted by `seconds`.
std::string slot_plus(const std::string& slot, std::int64_t seconds) {
    return format_slot(add_seconds(*parse_iso_minute(slot + ":00"), seconds));
}

std::string newest_slot(Database& db, const std::string& system) {
    auto newest = db.prepare("SELECT max(slot) FROM pvoutput_parts WHERE system_id = ?");
    newest.bind(1, system);
    return newest.step() && !newest.column_is_null(0) ? std::string(newest.column_text(0)) : "";
}

// Makes (or updates) the status of one slot from its parts. `release`: the slot is older than
// the system's newest by the silent time, so it goes with the parts it has.
void write_status(Database& db, const PvoutputMapping& mapping, const std::string& system,
                  const std::string& slot, bool release) {
    // The ECUs the slot needs: those named for the system, or (for "every ECU") those that
    // reported for it within the day before. A sum with one ECU missing would show a dip in
    // power; but an ECU silent for longer than the silent time is not waited for (a dead ECU,
    // a mistyped id), or its system would send nothing.
    auto needed = mapping.ecus_named_for(system);
    if (needed.empty()) {
        auto seen = db.prepare("SELECT DISTINCT ecu_id FROM pvoutput_parts WHERE system_id = ? "
                               "AND slot > ? AND slot <= ?");
        seen.bind(1, system).bind(2, slot_plus(slot, -86400)).bind(3, slot);
        while (seen.step())
            needed.emplace_back(seen.column_text(0));
    }
    // The system's counter (sent with c1=2, so PVOutput takes each day as its difference): the
    // first ECU's lifetime, plus what every later ECU made since it joined, each at its newest
    // reading up to this slot. An ECU that joins adds nothing at once (a sum of lifetimes would
    // book its whole lifetime as today's energy), and one that falls silent, or drops out of the
    // "needed" set below, freezes its part instead of taking it away.
    double counter_wh = 0;
    auto members = db.prepare(
        "SELECT m.base_wh, (SELECT p.lifetime_wh FROM pvoutput_parts p WHERE p.system_id = "
        "m.system_id AND p.ecu_id = m.ecu_id AND p.slot <= ?2 ORDER BY p.slot DESC LIMIT 1) FROM "
        "pvoutput_members m WHERE m.system_id = ?1");
    members.bind(1, system).bind(2, slot);
    while (members.step())
        if (!members.column_is_null(1))
            counter_wh += std::max(0.0, members.column_double(1) - members.column_double(0));

    std::map<std::string, double> power_of;
    auto in_slot =
        db.prepare("SELECT ecu_id, power_w FROM pvoutput_parts WHERE system_id = ? AND slot = ?");
    in_slot.bind(1, system).bind(2, slot);
    while (in_slot.step())
        power_of[std::string(in_slot.column_text(0))] = in_slot.column_double(1);
    if (power_of.empty())
        return;
    const auto silent_before = slot_plus(slot, -kPvoutputSilentMinutes * 60);
    auto last_part = db.prepare("SELECT max(slot) FROM pvoutput_parts WHERE system_id = ? AND "
                                "ecu_id = ?");
    double power_w = 0;
    for (const auto& ecu : needed) {
        if (const auto it = power_of.find(ecu); it != power_of.end()) {
            power_w += it->second;
            continue;
        }
        if (release)
            continue;
        last_part.bind(1, system).bind(2, ecu);
        const bool silent = !last_part.step() || last_part.column_is_null(0) ||
                            std::string(last_part.column_text(0)) < silent_before;
        last_part.reset();
        if (!silent)
            return; // not every ECU of the system has a trustworthy value here yet
    }
    // A changed slot goes again (PVOutput overwrites it); an expired one stays expired.
    db.prepare("INSERT INTO pvoutput_statuses(system_id, slot, power_w, lifetime_wh, state) "
               "VALUES (?, ?, ?, ?, 'pending') ON CONFLICT(system_id, slot) DO UPDATE SET "
               "power_w = excluded.power_w, lifetime_wh = excluded.lifetime_wh, state = "
               "'pending', reason = '' WHERE state != 'expired' AND (power_w != excluded.power_w "
               "OR lifetime_wh != excluded.lifetime_wh)")
        .bind(1, system)
        .bind(2, slot)
        .bind(3, power_w)
        .bind(4, counter_wh)
        .run();
}

} // namespace

void queue_pvoutput_point(Database& db, const PvoutputMapping& mapping, const PowerPoint& point) {
    const auto system = mapping.system_for(point.ecu_id);
    if (!system)
        return;
    const auto slot = pvoutput_slot_of(point.ecu_time, mapping.interval_min);
    if (!slot)
        return;
    // The last reading of the slot wins; an older one sent late leaves it alone.
    db.prepare("INSERT INTO pvoutput_parts(system_id, slot, ecu_id, ecu_time, power_w, "
               "lifetime_wh) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(system_id, slot, ecu_id) DO "
               "UPDATE SET ecu_time = excluded.ecu_time, power_w = excluded.power_w, lifetime_wh "
               "= excluded.lifetime_wh WHERE excluded.ecu_time >= pvoutput_parts.ecu_time")
        .bind(1, *system)
        .bind(2, *slot)
        .bind(3, point.ecu_id)
        .bind(4, point.ecu_time)
        .bind(5, point.power_w)
        .bind(6, point.lifetime_kwh * 1000.0)
        .run();
    if (db.changes() == 0)
        return;
    db.prepare("INSERT OR IGNORE INTO pvoutput_members(system_id, ecu_id, base_wh) SELECT ?1, ?2, "
               "CASE WHEN EXISTS (SELECT 1 FROM pvoutput_members WHERE system_id = ?1) THEN ?3 "
               "ELSE 0 END")
        .bind(1, *system)
        .bind(2, point.ecu_id)
        .bind(3, point.lifetime_kwh * 1000.0)
        .run();

    // Slots the silent time behind the system's newest wait no longer for a missing ECU: they go
    // with the parts they have (within the day, like the "every ECU" set).
    const auto newest = newest_slot(db, *system);
    const auto released = slot_plus(newest, -kPvoutputSilentMinutes * 60);
    write_status(db, mapping, *system, *slot, *slot <= released);
    std::vector<std::string> waiting;
    auto held = db.prepare(
        "SELECT DISTINCT p.slot FROM pvoutput_parts p WHERE p.system_id = ?1 AND p.slot > ?2 AND "
        "p.slot <= ?3 AND NOT EXISTS (SELECT 1 FROM pvoutput_statuses s WHERE s.system_id = ?1 "
        "AND s.slot = p.slot)");
    held.bind(1, *system).bind(2, slot_plus(newest, -86400)).bind(3, released);
    while (held.step())
        waiting.emplace_back(held.column_text(0));
    for (const auto& old : waiting)
        write_status(db, mapping, *system, old, true);
}

std::vector<PvoutputSilentEcu> PvoutputQueue::silent_ecus(const PvoutputMapping& mapping) {
    std::vector<PvoutputSilentEcu> silent;
    for (const auto& [ecu, system] : mapping.system_of) {
        if (ecu == "*")
            continue;
        const auto newest = newest_slot(db_, system);
        if (newest.empty())
            continue;
        const auto silent_before = slot_plus(newest, -kPvoutputSilentMinutes * 60);
        auto query = db_.prepare(
            "SELECT (SELECT max(slot) FROM pvoutput_parts WHERE system_id = ?1 AND ecu_id = ?2), "
            "(SELECT min(slot) FROM pvoutput_parts WHERE system_id = ?1)");
        query.bind(1, system).bind(2, ecu);
        query.step();
        const std::string last = query.column_is_null(0) ? "" : std::string(query.column_text(0));
        const std::string first(query.column_text(1));
        // Silent: its newest part is older than the silent time before the system's newest, or
        // it never reported while the others did for longer than that.
        if (last.empty() ? first > silent_before : last >= silent_before)
            continue;
        // Heard on an earlier day only: ECUs wake at different times each morning, so it is
        // silent once the system has reported for the silent time of this day without it.
        const auto day = newest.substr(0, 10);
        if (!last.empty() && last.substr(0, 10) < day) {
            auto first_today = db_.prepare(
                "SELECT min(slot) FROM pvoutput_parts WHERE system_id = ? AND slot >= ?");
            first_today.bind(1, system).bind(2, day);
            first_today.step();
            if (std::string(first_today.column_text(0)) > silent_before)
                continue;
        }
        auto without =
            db_.prepare("SELECT count(*) FROM pvoutput_statuses WHERE system_id = ? AND slot > ?");
        without.bind(1, system).bind(2, last);
        without.step();
        silent.push_back({ecu, system, last, static_cast<std::size_t>(without.column_int(0))});
    }
    return silent;
}

const char* row_state_name(PvoutputRowState state) {
    switch (state) {
    case PvoutputRowState::Pending:
        return "pending";
    case PvoutputRowState::Sent:
        return "sent";
    case PvoutputRowState::Rejected:
        return "rejected";
    case PvoutputRowState::Expired:
        return "expired";
    }
    return "pending";
}

PvoutputQueue::PvoutputQueue(const std::filesystem::path& database_file)
    : db_(database_file, Database::Mode::ReadOnly) {}

std::vector<PvoutputStatus> PvoutputQueue::pending(const std::string& system_id, std::size_t limit,
                                                   bool leave_newest) {
    std::vector<PvoutputStatus> statuses;
    auto query = db_.prepare(
        std::string(kStatusColumns) +
        "WHERE state = 'pending' AND system_id = ?1 AND (?3 = 0 OR slot < (SELECT max(slot) FROM "
        "pvoutput_statuses WHERE system_id = ?1)) ORDER BY slot LIMIT ?2");
    query.bind(1, system_id)
        .bind(2, static_cast<std::int64_t>(limit))
        .bind(3, static_cast<std::int64_t>(leave_newest ? 1 : 0));
    while (query.step())
        statuses.push_back(status_from(query));
    return statuses;
}

std::optional<PvoutputStatus> PvoutputQueue::newest_pending(const std::string& system_id) {
    auto query = db_.prepare(std::string(kStatusColumns) +
                             "WHERE state = 'pending' AND system_id = ?1 AND slot < (SELECT "
                             "max(slot) FROM pvoutput_statuses WHERE system_id = ?1) ORDER BY "
                             "slot DESC LIMIT 1");
    query.bind(1, system_id);
    if (!query.step())
        return std::nullopt;
    return status_from(query);
}

std::vector<PvoutputStatus> PvoutputQueue::rows(std::size_t limit) {
    std::vector<PvoutputStatus> statuses;
    auto query = db_.prepare(std::string(kStatusColumns) + "ORDER BY slot DESC, system_id LIMIT ?");
    query.bind(1, static_cast<std::int64_t>(limit));
    while (query.step())
        statuses.push_back(status_from(query));
    return statuses;
}

std::vector<PvoutputDayOutput> PvoutputQueue::outputs_sent(std::size_t limit) {
    std::vector<PvoutputDayOutput> outputs;
    auto query = db_.prepare("SELECT system_id, day, generated_wh, peak_power_w, peak_time, "
                             "sent_at FROM pvoutput_outputs ORDER BY day DESC LIMIT ?");
    query.bind(1, static_cast<std::int64_t>(limit));
    while (query.step())
        outputs.push_back({std::string(query.column_text(0)), std::string(query.column_text(1)),
                           query.column_double(2), query.column_double(3),
                           std::string(query.column_text(4)), query.column_int(5)});
    return outputs;
}

PvoutputCounts PvoutputQueue::counts() {
    PvoutputCounts counts;
    auto query = db_.prepare("SELECT state, count(*) FROM pvoutput_statuses GROUP BY state");
    while (query.step()) {
        const auto n = static_cast<std::size_t>(query.column_int(1));
        switch (state_from(query.column_text(0))) {
        case PvoutputRowState::Pending:
            counts.pending += n;
            break;
        case PvoutputRowState::Sent:
            counts.sent += n;
            break;
        case PvoutputRowState::Rejected:
            counts.rejected += n;
            break;
        case PvoutputRowState::Expired:
            counts.expired += n;
            break;
        }
    }
    return counts;
}

std::size_t PvoutputQueue::pending_before(const std::string& oldest_allowed) {
    auto query =
        db_.prepare("SELECT count(*) FROM pvoutput_statuses WHERE state = 'pending' AND slot < ?");
    query.bind(1, oldest_allowed);
    query.step();
    return static_cast<std::size_t>(query.column_int(0));
}

std::string PvoutputQueue::newest_filled_slot() {
    auto query = db_.prepare("SELECT max(slot) FROM pvoutput_parts");
    return query.step() && !query.column_is_null(0) ? std::string(query.column_text(0)) : "";
}

std::optional<PvoutputDayOutput> PvoutputQueue::day_to_close(const std::string& system_id,
                                                             const std::string& oldest_day,
                                                             std::int64_t resend_before_s) {
    auto days = db_.prepare(
        "SELECT d.day, d.generated, o.generated_wh, o.peak_power_w, o.peak_time, o.sent_at FROM "
        "(SELECT substr(slot, 1, 10) AS day, max(lifetime_wh) - min(lifetime_wh) AS generated "
        "FROM pvoutput_statuses WHERE system_id = ?1 AND slot >= ?2 AND substr(slot, 1, 10) < "
        "(SELECT substr(max(slot), 1, 10) FROM pvoutput_statuses WHERE system_id = ?1) GROUP BY "
        "day) d LEFT JOIN pvoutput_outputs o ON o.system_id = ?1 AND o.day = d.day WHERE "
        "o.day IS NULL OR o.sent_at < ?3 ORDER BY d.day");
    days.bind(1, system_id).bind(2, oldest_day).bind(3, resend_before_s);
    // A range on the slot, so that the key finds the day's rows instead of reading them all.
    auto peak = db_.prepare("SELECT power_w, substr(slot, 12, 5) FROM pvoutput_statuses WHERE "
                            "system_id = ?1 AND slot > ?2 || 'T' AND slot < ?2 || 'U' ORDER BY "
                            "power_w DESC, slot LIMIT 1");
    while (days.step()) {
        PvoutputDayOutput output;
        output.system_id = system_id;
        output.day = std::string(days.column_text(0));
        output.generated_wh = days.column_double(1);
        peak.bind(1, system_id).bind(2, output.day);
        if (peak.step()) {
            output.peak_power_w = peak.column_double(0);
            output.peak_time = std::string(peak.column_text(1));
        }
        peak.reset();
        if (days.column_is_null(2))
            return output; // never sent
        // Sent before: again only when its figures changed since (a late status, a backfill).
        if (std::llround(days.column_double(2)) != std::llround(output.generated_wh) ||
            std::llround(days.column_double(3)) != std::llround(output.peak_power_w) ||
            days.column_text(4) != output.peak_time)
            return output;
    }
    return std::nullopt;
}

std::vector<std::string> PvoutputQueue::systems() {
    std::vector<std::string> systems;
    auto query = db_.prepare("SELECT DISTINCT system_id FROM pvoutput_statuses ORDER BY 1");
    while (query.step())
        systems.emplace_back(query.column_text(0));
    return systems;
}

void PvoutputQueue::mark_sent(WriteBatch& batch, std::vector<PvoutputStatus> statuses,
                              std::vector<bool> added, std::int64_t now_s, std::string reason) {
    batch.run([statuses = std::move(statuses), added = std::move(added), now_s,
               reason = std::move(reason)](Database& db) {
        // Only a row still holding what was sent: a reading that changed the slot meanwhile
        // keeps it pending, to go again.
        auto mark = db.prepare("UPDATE pvoutput_statuses SET state = ?, sent_at = ?, reason = ? "
                               "WHERE system_id = ? AND slot = ? AND state = 'pending' AND "
                               "power_w = ? AND lifetime_wh = ?");
        for (std::size_t i = 0; i < statuses.size(); ++i) {
            const bool ok = i < added.size() && added[i];
            mark.bind(1, std::string_view(ok ? "sent" : "rejected"))
                .bind(2, now_s)
                .bind(3, std::string_view(ok ? "" : reason))
                .bind(4, statuses[i].system_id)
                .bind(5, statuses[i].slot)
                .bind(6, statuses[i].power_w)
                .bind(7, statuses[i].lifetime_wh)
                .run();
        }
    });
}

void PvoutputQueue::mark_expired(WriteBatch& batch, std::string oldest_allowed,
                                 std::int64_t now_s) {
    batch.run([oldest_allowed = std::move(oldest_allowed), now_s](Database& db) {
        db.prepare("UPDATE pvoutput_statuses SET state = 'expired', sent_at = ?, reason = "
                   "'older than PVOutput accepts' WHERE state = 'pending' AND slot < ?")
            .bind(1, now_s)
            .bind(2, oldest_allowed)
            .run();
        // Parts of slots that old can no longer change anything sent.
        db.prepare("DELETE FROM pvoutput_parts WHERE slot < ?").bind(1, oldest_allowed).run();
    });
}

void PvoutputQueue::mark_output_sent(WriteBatch& batch, PvoutputDayOutput output) {
    batch.run([output = std::move(output)](Database& db) {
        db.prepare("INSERT OR REPLACE INTO pvoutput_outputs(system_id, day, generated_wh, "
                   "peak_power_w, peak_time, sent_at) VALUES (?, ?, ?, ?, ?, ?)")
            .bind(1, output.system_id)
            .bind(2, output.day)
            .bind(3, output.generated_wh)
            .bind(4, output.peak_power_w)
            .bind(5, output.peak_time)
            .bind(6, output.sent_at_s)
            .run();
    });
}

} // namespace ecu2mqtt
