// What the service has seen and done, kept in memory for the status page and the metrics.
#pragma once

#include "ecu2mqtt/core/logger.hpp"
#include "ecu2mqtt/ledger/ecu_ledger.hpp"
#include "ecu2mqtt/ledger/weak_panels.hpp"
#include "ecu2mqtt/protocol/ecu_message.hpp"

#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace ecu2mqtt {

struct ChannelSnapshot {
    int channel = 0;
    double voltage_v = 0;
    double current_a = 0;
    double power_w = 0;
};

struct InverterSnapshot {
    std::string uid;
    std::string model;
    double temperature_c = 0;
    double frequency_hz = 0;
    double power_w = 0;
    std::vector<ChannelSnapshot> channels;
    UnknownFields unknown; // shown escaped: these are bytes the ECU sent
    // False for an inverter the ECU tracks that the last upload did not list (at night, or
    // after a restart before the first upload): its values are unknown.
    bool reporting = true;
};

struct CurvePoint {
    int second_of_day = 0; // on the ECU's own clock: its day is the plant's day
    double power_w = 0;
};

struct EcuSnapshot {
    std::string id;
    std::string model;
    std::string peer_address; // of the last upload
    std::uint16_t peer_port = 0;
    std::uint16_t local_port = 0;
    std::int64_t received_unix = 0; // host clock
    std::string ecu_timestamp;      // the ECU's own clock, ISO local time
    std::optional<double> clock_offset_s;
    // What gives the ECU day: "time zone Asia/Shanghai" or "learned clock offset".
    std::string ecu_day_rule = "learned clock offset";
    // With polling on: "answering" or "port 8899 not answering since …"; empty when off.
    std::string poll_state;
    std::string reply_rule; // the reply sent to the last message, by rule
    std::string reply;      // its bytes
    double power_w = 0;
    std::optional<double> today_energy_kwh;
    double lifetime_energy_kwh = 0;
    std::string availability = "online"; // "online" or "offline"
    std::vector<CurvePoint> power_curve; // today's points, in time order
    std::vector<InverterSnapshot> inverters;
    UnknownFields unknown;
    std::vector<WeakChannel> weak_channels; // the weak-panel hint
};

struct MqttSnapshot {
    std::string broker; // URL without credentials
    bool connected = false;
    std::string last_error;
    std::size_t spooled = 0; // readings waiting for the broker
    std::uint64_t spool_dropped = 0;
    std::optional<std::uintmax_t> spool_bytes;
    std::size_t pending_readings = 0;
    std::optional<std::int64_t> oldest_pending_unix;
};

// The database that keeps readings before they are answered.
struct StoreSnapshot {
    std::string file;
    std::uint64_t commits = 0;
    std::uint64_t failed_writes = 0;
    bool writable = true; // false while writes fail: uploads are answered "send again"
    std::string last_error;
    std::optional<std::uintmax_t> free_bytes; // on the state directory's file system
    std::uintmax_t low_space_bytes = 0;       // below this free, the status page warns
    bool low_space() const { return free_bytes && *free_bytes < low_space_bytes; }
};

// An ECU named for a PVOutput system that stopped reporting: its system's statuses go without it.
struct PvoutputSilentEcu {
    std::string ecu_id;
    std::string system_id;
    std::string last_slot;         // its newest part ("YYYY-MM-DDThh:mm"); empty: never reported
    std::size_t slots_without = 0; // statuses of the system made without it
};

// The PVOutput uploader (net/pvoutput_client): what the status page, /api/status and /metrics show.
struct PvoutputSnapshot {
    bool enabled = false;
    std::string state = "off"; // current, sending backlog, rate-limited, backing off, stopped
    bool stopped = false;      // every system refused by PVOutput (401/403): a red line
    std::map<std::string, std::string> refused_systems; // id -> PVOutput's 401/403: red lines
    std::vector<PvoutputSilentEcu> silent_ecus;
    std::size_t backlog = 0;
    std::size_t sent = 0;
    std::size_t rejected = 0;
    std::size_t expired = 0;
    std::int64_t last_upload_unix = 0; // 0: none yet
    std::optional<int> requests_left;
    std::optional<int> request_limit;
    std::int64_t waiting_until_unix = 0; // rate limit or backoff; 0: not waiting
    std::string last_error;
    std::uint64_t requests = 0;
};

// Every upload received counts once, by ECU, port and what became of it: `live`, `late`,
// `repeat`, `clock_suspect`, `counter_suspect` or `not_kept`.
struct UploadKey {
    std::string ecu;
    std::uint16_t port = 0;
    std::string verdict = "live";
    auto operator<=>(const UploadKey&) const = default;
};

struct BridgeCounters {
    std::map<UploadKey, std::uint64_t> uploads;
    std::map<std::string, std::uint64_t> replies; // by rule
    std::uint64_t decode_errors = 0;
    std::uint64_t publishes = 0;
    std::uint64_t publish_failures = 0;
    std::uint64_t connections_opened = 0;
    std::uint64_t connections_refused = 0;
    std::uint64_t connections_evicted = 0;
    std::uint64_t ema_relayed = 0;
    std::uint64_t ema_fallbacks = 0;
};

struct LogEntry {
    std::string level; // "warn" or "error"
    std::string line;  // the whole log line, as written
};

struct DnsCheckSnapshot {
    std::string name;                   // the name the ECU looks up
    bool checked = false;               // false until the first answer (or timeout)
    bool points_here = false;           // resolves to an address of this host
    std::string verdict;                // "ok", "wrong", or "unknown" (in a container, untold)
    std::vector<std::string> addresses; // what it resolved to
    std::vector<std::string> host_addresses;
    std::string message; // one line for the user, with the fix when it is wrong
};

struct StatusSnapshot {
    std::string version;
    std::int64_t now_unix = 0;
    std::int64_t started_unix = 0;
    MqttSnapshot mqtt;
    StoreSnapshot store;
    BridgeCounters counters;
    DnsCheckSnapshot dns;
    PvoutputSnapshot pvoutput;
    std::vector<EcuSnapshot> ecus;         // by id
    std::vector<LogEntry> recent_problems; // oldest first
};

// Fed on the io thread by the service, listener and publisher; read as a snapshot by the HTTP
// layer. The problem log alone is fed from any thread (through the Logger) and locks.
class Telemetry {
  public:
    static constexpr std::size_t kMaxEcus = 256;
    static constexpr std::size_t kMaxInvertersShown = 128; // per ECU, as --max-inverters-per-ecu
    static constexpr std::size_t kMaxCurvePoints = 24 * 60;
    static constexpr std::size_t kMaxProblems = 50;
    static constexpr std::string_view kOtherEcus = "other"; // uploads of ECUs beyond kMaxEcus

    Telemetry(std::string version, std::chrono::system_clock::time_point started)
        : version_(std::move(version)), started_(started) {}

    // A decoded real-time upload, from `peer` ("address:port") on `local_port`: the newest
    // reading, shown and counted as `live`.
    void on_upload(const RealtimeUpload& upload, const std::string& peer, std::uint16_t local_port,
                   std::chrono::system_clock::time_point received);
    // An upload that is not the newest reading: only counted, under its verdict.
    void on_upload_set_aside(const std::string& ecu_id, std::uint16_t local_port,
                             const std::string& verdict);
    // The reply sent to a message of `ecu_id` (may be empty), by rule name.
    void on_reply(const std::string& ecu_id, const std::string& rule, const std::string& bytes);
    void on_decode_error() { ++counters_.decode_errors; }
    void on_ema_relayed() { ++counters_.ema_relayed; }
    void on_ema_fallback() { ++counters_.ema_fallbacks; }
    void on_publish(bool delivered) {
        ++(delivered ? counters_.publishes : counters_.publish_failures);
    }
    // The publisher's own totals, which it counts as acknowledgements arrive.
    void set_publish_totals(std::uint64_t delivered, std::uint64_t failed) {
        counters_.publishes = delivered;
        counters_.publish_failures = failed;
    }
    void set_connections(std::uint64_t opened, std::uint64_t refused, std::uint64_t evicted);
    void set_mqtt(MqttSnapshot mqtt) { mqtt_ = std::move(mqtt); }
    void set_store(StoreSnapshot store) { store_ = std::move(store); }
    void set_dns(DnsCheckSnapshot dns) { dns_ = std::move(dns); }
    void set_pvoutput(PvoutputSnapshot pvoutput) { pvoutput_ = std::move(pvoutput); }
    // From later bookkeeping: today's energy, the ECU's clock offset, availability.
    void set_today_energy(const std::string& ecu_id, double kwh);
    void set_clock_offset(const std::string& ecu_id, double seconds);
    void set_polling(const std::string& ecu_id, std::string ecu_day_rule, std::string poll_state);
    void set_availability(const std::string& ecu_id, bool online);
    void set_weak_channels(const std::string& ecu_id, std::vector<WeakChannel> weak);
    // Every inverter the ECU's ledger tracks: those the last upload did not list are shown as
    // not reporting, so that the panel map keeps them.
    void set_tracked_inverters(const std::string& ecu_id,
                               const std::vector<LedgerInverter>& tracked);
    // The ledger's newest trustworthy reading: its lifetime is the one the state topic shows
    // (an upload's own counter may be set aside), and after a restart it stands in for the
    // upload not yet received.
    void set_live_reading(const std::string& ecu_id, const std::string& model,
                          const std::string& ecu_timestamp, std::int64_t received_unix,
                          double power_w, double lifetime_kwh);
    // Any thread: keeps warnings and errors, the last kMaxProblems of them.
    void on_log(LogLevel level, std::string_view line);

    StatusSnapshot snapshot(std::chrono::system_clock::time_point now) const;

  private:
    EcuSnapshot* find_or_add(const std::string& ecu_id);
    // The id an upload is counted under: its own for the first kMaxEcus ids, else kOtherEcus.
    std::string counted_id(const std::string& ecu_id);

    std::string version_;
    std::chrono::system_clock::time_point started_;
    BridgeCounters counters_;
    MqttSnapshot mqtt_;
    StoreSnapshot store_;
    DnsCheckSnapshot dns_;
    PvoutputSnapshot pvoutput_;
    std::map<std::string, EcuSnapshot> ecus_;
    std::set<std::string> counted_ids_;
    mutable std::mutex problems_mutex_;
    std::deque<LogEntry> problems_;
};

} // namespace ecu2mqtt
