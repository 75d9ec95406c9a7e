// What each upload means for its ECU: live, late, repeat, clock- or counter-suspect; gaps, energy,
// inverters.
#pragma once

#include "ecu2mqtt/ledger/counter_model.hpp"
#include "ecu2mqtt/ledger/daily_energy.hpp"
#include "ecu2mqtt/ledger/time_zone.hpp"
#include "ecu2mqtt/protocol/ecu_message.hpp"
#include "ecu2mqtt/protocol/local_time.hpp"

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

namespace ecu2mqtt {

// Pure: no I/O and no clock reads; host time is always passed in. ECU timestamps are the ECU's own
// wall clock without a zone, so the ledger learns the ECU-minus-host offset from live uploads.
enum class UploadVerdict {
    Live,         // the newest reading: goes on the live state topics
    Late,         // older than the newest live reading (a re-send): history only
    Repeat,       // a reading already kept, sent again: answered, not published again
    ClockSuspect, // stamped too far ahead (or older than any gap): kept raw, used for nothing
    // A lifetime no plant could have reached from the trusted counter: kept raw, used for
    // nothing, until enough uploads in a row agree on it as a new level.
    CounterSuspect,
};

const char* verdict_name(UploadVerdict verdict);

struct LedgerConfig {
    // An upload stamped further ahead than this of host time + learned offset is clock-suspect.
    // Two hours lets a one-hour DST jump through as live (the new offset is then adopted), while
    // an RTC glitch or a foreign host is caught.
    std::chrono::seconds suspect_ahead{2 * 3600};
    int adopt_after = 3; // uploads in a row agreeing on a new offset, or a new counter level
    std::chrono::hours gap_expiry{48};       // a gap not re-sent by then is given up
    std::chrono::seconds offline_after{900}; // silence this long: offline
    std::chrono::days forget_inverter_after{30};
    std::size_t max_inverters = 999; // what the upload's three-digit inverter count allows
};

enum class EventLevel { Info, Warn };

// Something worth a log line; the caller logs it with the ECU id.
struct LedgerEvent {
    EventLevel level = EventLevel::Info;
    std::string name;
    std::vector<std::pair<std::string, std::string>> fields;
};

struct LedgerInverter {
    std::string uid;
    std::string model_code;
    std::string model;
    int channels = 0;
    std::int64_t last_seen_s = 0; // host time (seconds since the Unix epoch) of its last reading
};

// A reading that could not be kept leaves a hole: everything after `after` and before `before`
// (open-ended while no later reading was kept) must be asked for again.
struct LedgerGap {
    LocalDateTime after;                 // the last kept reading before the hole
    std::optional<LocalDateTime> before; // the first kept reading after it
    std::set<LocalDateTime> missing;     // readings known to have been lost in it
    std::int64_t opened_at_s = 0;        // host time the first loss was seen
    // Missing readings the ECU sent again and that were lost again: it has them, so a later
    // re-send kept does not give them up.
    std::set<LocalDateTime> lost_again;
};

// The newest trustworthy reading, as the live state shows it.
struct LiveReading {
    LocalDateTime timestamp;
    double power_w = 0;
    double lifetime_kwh = 0;  // the trusted counter: never below any value shown before, but
                              // once for a new level that uploads in a row agreed on
    int inverters_online = 0; // as the ECU counts them
    std::int64_t received_s = 0;
};

// A reading kept, remembered to tell a repeat from a new reading.
struct KeptReading {
    LocalDateTime timestamp;       // the ECU's
    std::uint64_t fingerprint = 0; // of the content
};

// Everything the ledger knows about one ECU; what to_json() persists.
struct EcuLedgerState {
    std::string ecu_model;
    std::optional<LiveReading> live;
    DailyEnergy daily;
    // Recent kept readings, sorted by ECU timestamp (a flat vector: the state is copied for every
    // decision, and a thousand tree nodes would make that the cost of an upload).
    std::vector<KeptReading> kept;
    std::vector<LedgerGap> gaps; // oldest `after` first
    std::map<std::string, LedgerInverter> inverters;
    std::vector<std::int64_t> offset_samples;      // recent agreeing ECU-minus-host samples (s)
    std::vector<std::int64_t> candidate_offset;    // uploads in a row agreeing on another offset
    std::vector<std::uint64_t> candidate_readings; // their fingerprints: each counts once
    std::optional<std::int64_t> offset_s;          // the learned ECU-minus-host offset
    std::vector<CounterSample> candidate_counter;  // uploads in a row off the trusted counter
    bool online = false;
    std::int64_t last_heard_s = 0;
    std::uint64_t revision = 0; // counts changes, to tell when a decision was made on older state
};

struct UploadDecision {
    UploadVerdict verdict = UploadVerdict::Live;
    // Set while a gap is open: the reply asks the ECU to re-send what follows this time.
    std::optional<LocalDateTime> resend_from;
    double state_lifetime_kwh = 0;   // for the live state: the trusted counter; 0 before any
    double counter_kwh = 0;          // this reading's lifetime as kept in the history (if kept)
    std::optional<double> today_kwh; // ECU-day energy with this reading
    LocalDate ecu_day;
    std::optional<std::chrono::seconds> clock_offset; // ECU minus host UTC
    bool came_online = false;
    std::vector<std::string> new_inverters;     // learned with this reading
    std::vector<std::string> refused_inverters; // beyond max_inverters
    std::vector<std::string> absent_inverters;  // known but not in this live upload: 0 W
    std::optional<KeptReading> remembered;      // added to the kept readings, if kept
    std::vector<LedgerEvent> events;            // to log once committed

    // What not_kept() would answer instead, and what to log then.
    std::optional<LocalDateTime> resend_from_if_not_kept;
    std::vector<LedgerEvent> events_if_not_kept;

    // For the ledger: the two states it may move to, and what to decide again from when the
    // ledger changed in between.
    std::shared_ptr<const EcuLedgerState> if_kept;
    std::shared_ptr<const EcuLedgerState> if_not_kept;
    std::shared_ptr<const RealtimeUpload> upload;
    std::chrono::system_clock::time_point received;
    std::uint64_t revision = 0;
};

class EcuLedger {
  public:
    using TimePoint = std::chrono::system_clock::time_point;
    // Kept readings remembered per ECU: more than gap_expiry's 48 h of five-minute uploads.
    static constexpr std::size_t kKeptMemory = 1000;

    EcuLedger(std::string ecu_id, LedgerConfig config);

    // Decides without changing anything: the caller keeps the reading, then calls exactly one of
    // commit() or not_kept() with the decision. If the ledger changed in between (a tick, another
    // upload), the upload is decided again on what is now, so that nothing in between is undone.
    UploadDecision decide(const RealtimeUpload& upload, TimePoint received) const;
    // The reading (or, for a repeat or a clock-suspect upload, the raw bytes) was durably kept.
    void commit(const UploadDecision& decision);
    // It could not be kept: a gap opens or grows, and the reply must ask for a re-send.
    void not_kept(const UploadDecision& decision);

    struct Tick {
        bool went_offline = false;
        std::optional<double> today_reset_to; // the ECU's midnight passed
        std::vector<std::string> forgotten_inverters;
        std::vector<LedgerEvent> events;
    };
    // ECU midnight (by its time zone when it agrees with the learned offset, else host time +
    // learned offset, else the upload dates alone), offline
    // deadline, inverter and gap expiry.
    Tick tick(TimePoint now);

    nlohmann::json to_json() const;
    // What to_json() would give once `state` is the ledger's (a decision's if_kept, say);
    // without the kept readings when `with_kept` is false (a store keeps them row by row).
    static nlohmann::json to_json(const std::string& ecu_id, const EcuLedgerState& state,
                                  bool with_kept = true);
    // Throws nlohmann::json::exception on a malformed object; lists it lacks start empty. The
    // offline timer starts at load.
    static EcuLedger from_json(const nlohmann::json& j, LedgerConfig config, TimePoint loaded_at);

    const std::string& ecu_id() const { return ecu_id_; }
    const EcuLedgerState& state() const { return state_; }
    bool online() const { return state_.online; }
    std::optional<std::chrono::seconds> clock_offset() const;
    std::optional<LocalDateTime> resend_from() const;
    // The ECU's own time zone (from polling it) gives its day instead of the learned offset,
    // while that offset agrees with it (see zone_giving_day).
    void set_time_zone(std::shared_ptr<const TimeZone> zone);
    // The zone while it gives the ECU's day (as of the last tick), else none.
    const TimeZone* time_zone() const { return zone_gives_day_ ? time_zone_.get() : nullptr; }

  private:
    std::string ecu_id_;
    LedgerConfig config_;
    EcuLedgerState state_;
    std::shared_ptr<const TimeZone> time_zone_;
    bool zone_gives_day_ = false;
};

} // namespace ecu2mqtt
