// PVOutput statuses kept in the store until PVOutput took them (the durable upload queue).
//
// Every power point kept for an ECU mapped to a PVOutput system fills that ECU's part of its slot
// on the system's interval grid (the ECU's own local time, rounded down to 5, 10 or 15 minutes;
// the last reading of the slot wins, a late re-send fills its own slot). Once every ECU of the
// system has a part in the slot (or a missing one has been silent for kPvoutputSilentMinutes),
// the slot's status (sum of power, the system's lifetime counter) is pending. The uploader reads
// the oldest pending statuses and marks them from PVOutput's reply.
#pragma once

#include "ecu2mqtt/core/telemetry.hpp"
#include "ecu2mqtt/store/database.hpp"
#include "ecu2mqtt/store/store.hpp"

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace ecu2mqtt {

// Schema step 3 of the store: the PVOutput tables (empty in an older file).
const char* pvoutput_schema();

// Which ECU feeds which PVOutput system, and the systems' status interval.
struct PvoutputMapping {
    // ECU id -> system id; the key "*" maps every ECU not named (--pvoutput-system-id).
    std::map<std::string, std::string> system_of;
    int interval_min = 5;

    std::optional<std::string> system_for(const std::string& ecu_id) const;
    // The ECUs named for the system; empty when it takes every ECU not named (it is "*"'s).
    std::vector<std::string> ecus_named_for(const std::string& system_id) const;
    bool empty() const { return system_of.empty(); }
};

// "YYYY-MM-DDThh:mm" of the slot an ECU time ("YYYY-MM-DDThh:mm:ss") falls in; none when the
// time is malformed.
std::optional<std::string> pvoutput_slot_of(const std::string& ecu_time, int interval_min);

// How long (of the system's slots, so of its ECUs' clocks) a slot waits for a missing ECU: an ECU
// silent that long is not waited for, and the slot goes with the others' sum.
inline constexpr int kPvoutputSilentMinutes = 30;

// The store's power point hook (runs on the store's thread, inside the point's transaction).
void queue_pvoutput_point(Database& db, const PvoutputMapping& mapping, const PowerPoint& point);

enum class PvoutputRowState { Pending, Sent, Rejected, Expired };
const char* row_state_name(PvoutputRowState state);

struct PvoutputStatus {
    std::string system_id;
    std::string slot; // "YYYY-MM-DDThh:mm", the system's local time
    double power_w = 0;
    double lifetime_wh = 0;
    PvoutputRowState state = PvoutputRowState::Pending;
    std::int64_t sent_at_s = 0; // host time it was sent (or rejected, expired)
    std::string reason;         // why rejected or expired
};

// One ended day of a system, for addoutput.
struct PvoutputDayOutput {
    std::string system_id;
    std::string day; // "YYYY-MM-DD"
    double generated_wh = 0;
    double peak_power_w = 0;
    std::string peak_time; // "hh:mm"
    std::int64_t sent_at_s = 0;
};

struct PvoutputCounts {
    std::size_t pending = 0;
    std::size_t sent = 0;
    std::size_t rejected = 0;
    std::size_t expired = 0;
};

// Reads through a connection of its own (WAL: never waits for the store's writer); changes are
// WriteBatch steps, so that they are written on the store's thread like everything else.
class PvoutputQueue {
  public:
    explicit PvoutputQueue(const std::filesystem::path& database_file);

    // Oldest first. `leave_newest`: not the system's newest slot, which a later reading of the
    // same interval may still change (it goes once the next slot has begun).
    std::vector<PvoutputStatus> pending(const std::string& system_id, std::size_t limit,
                                        bool leave_newest = false);
    // The newest pending status but the system's newest slot (see `leave_newest`).
    std::optional<PvoutputStatus> newest_pending(const std::string& system_id);
    // Every row (any state), newest first, at most `limit`: for `history --pvoutput`.
    std::vector<PvoutputStatus> rows(std::size_t limit);
    std::vector<PvoutputDayOutput> outputs_sent(std::size_t limit);
    PvoutputCounts counts();
    // Pending rows older than the slot `oldest_allowed` ("YYYY-MM-DDThh:mm").
    std::size_t pending_before(const std::string& oldest_allowed);
    // The newest slot any ECU has filled, of any system; empty before any.
    std::string newest_filled_slot();
    // The oldest day of the system that has ended (a status of a later day exists), is not
    // before `oldest_day` and whose output was not sent yet, or was sent before
    // `resend_before_s` with figures its statuses no longer give (a late status, a backfill).
    std::optional<PvoutputDayOutput> day_to_close(const std::string& system_id,
                                                  const std::string& oldest_day,
                                                  std::int64_t resend_before_s);
    std::vector<std::string> systems();
    // ECUs named for a system (--pvoutput-systems) silent for kPvoutputSilentMinutes or more of
    // their system's slots, or never heard while the others reported that long.
    std::vector<PvoutputSilentEcu> silent_ecus(const PvoutputMapping& mapping);

    // What PVOutput answered for each status sent ("1" added): rows added are sent, the others
    // rejected with `reason`.
    static void mark_sent(WriteBatch& batch, std::vector<PvoutputStatus> statuses,
                          std::vector<bool> added, std::int64_t now_s, std::string reason);
    static void mark_expired(WriteBatch& batch, std::string oldest_allowed, std::int64_t now_s);
    static void mark_output_sent(WriteBatch& batch, PvoutputDayOutput output);

  private:
    Database db_;
};

} // namespace ecu2mqtt
