// Publishes decoded readings to an MQTT broker, with Home Assistant discovery and availability.
#pragma once

#include "ecu2mqtt/core/clock.hpp"
#include "ecu2mqtt/core/logger.hpp"
#include "ecu2mqtt/core/reading_sink.hpp"
#include "ecu2mqtt/ledger/time_zone.hpp"
#include "ecu2mqtt/ledger/weak_panels.hpp"
#include "ecu2mqtt/mqtt/mqtt_payloads.hpp"
#include "ecu2mqtt/mqtt/polled_facts.hpp"

#include <chrono>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

namespace boost::asio {
class io_context;
}

namespace ecu2mqtt {

class Store;

struct PublisherConfig {
    std::string url = "mqtt://localhost:1883";
    std::string user;
    std::string password;
    std::string client_id = "ecu2mqtt";
    std::string ca_file;
    TopicScheme topics;
    bool discovery = true;
    bool publish_raw = false;
    std::chrono::seconds ecu_timeout{15 * 60};
    // Readings waiting for the broker, at most (bytes of their messages); past it the oldest go.
    std::uintmax_t spool_max_bytes = 64 * 1024 * 1024;
    // Power points and daily energy older than this many days leave the history.
    int history_days = 400;
    std::string sw_version;
    // Bounds against a flood of made-up ids from the LAN: uploads of ECUs beyond `max_ecus` are
    // answered but not tracked or published; inverters beyond `max_inverters_per_ecu` are
    // left out of their ECU's readings.
    std::size_t max_ecus = 16;
    std::size_t max_inverters_per_ecu = 128;
    // An inverter not reported for this long is forgotten: its discovery config, state and
    // availability topics are cleared.
    std::chrono::seconds forget_inverter_after{30 * 24 * 3600};
    // A gap the ECU has not sent again by then is given up, with a warning.
    std::chrono::hours gap_expiry{48};
    // Messages published but not yet acknowledged by the broker, at most.
    std::size_t max_in_flight = 64;
    // How long to collect our retained discovery configs from the broker at start before
    // clearing the ones no longer wanted.
    std::chrono::milliseconds discovery_audit_wait{2000};
    // A reading that answers no upload (the midnight reset of today's energy) and could not be
    // written is tried again after this long, until written or superseded by an upload.
    std::chrono::milliseconds store_retry{30000};
    // --poll-interval: polled inverter values older than kPolledFreshIntervals of it are
    // published as unknown.
    std::chrono::seconds poll_interval{300};
    // --poll-ecus is on: the last polled facts of each ECU are loaded with its state, so that
    // its polled entities stay across a restart (with unknown values once old).
    bool polling = false;
};

struct PublisherStatus {
    bool connected = false;
    std::size_t spooled = 0;   // readings waiting for the broker
    std::uint64_t dropped = 0; // readings dropped because the spool was full
    std::size_t in_flight = 0; // messages sent and not yet acknowledged
    std::uint64_t published = 0;
    std::uint64_t publish_failures = 0;
    std::string last_error;
    std::uintmax_t spool_bytes = 0;
    std::optional<std::int64_t> oldest_pending_unix; // when the oldest waiting reading was kept
};

// What the ledger says of one ECU, for the status page.
struct EcuView {
    std::string ecu_id;
    std::optional<double> today_kwh;
    std::optional<std::int64_t> clock_offset_s;
    bool online = false;
    std::string model;
    // The newest trustworthy reading, known also right after a restart; unset before any.
    struct Live {
        std::string ecu_timestamp; // ISO, the ECU's clock
        std::int64_t received_unix = 0;
        double power_w = 0;
        double lifetime_kwh = 0;
    };
    std::optional<Live> live;
    std::vector<WeakChannel> weak_channels; // the weak-panel hint over its recent uploads
    // The time zone that gives its day (from polling it); empty: the learned clock offset.
    std::string time_zone;
};

// Never blocks the caller on the broker. Every reading (the state messages of one upload) is
// first committed to the store, then published in order, QoS 1; it leaves the store when the
// broker has acknowledged all its messages. Discovery (one device config per ECU and inverter)
// and availability are kept as latest values and re-sent on (re)connection. At most
// `max_in_flight` messages are unacknowledged at once (see Outbox); a refused publish is retried.
// One reconnect loop, with backoff up to 60 s.
// All work runs on the io_context's thread, including what the MQTT client's threads report.
class MqttPublisher final : public ReadingSink {
  public:
    // With a store, readings, each ECU's ledger and the history survive restarts; an upload is
    // answered once its batch is committed there. Without one, nothing is kept.
    MqttPublisher(boost::asio::io_context& io, PublisherConfig config, const Clock& clock,
                  Logger& log, Store* store);
    ~MqttPublisher() override;
    MqttPublisher(const MqttPublisher&) = delete;
    MqttPublisher& operator=(const MqttPublisher&) = delete;

    // Loads the state directory, starts connecting and starts the periodic checks
    // (ECU timeout, local midnight). Throws std::runtime_error for an unusable URL.
    void start();
    // Publishes `offline` for the bridge and disconnects, waiting at most `budget`.
    void shutdown(std::chrono::milliseconds budget);

    void on_realtime(const RealtimeUpload& upload, std::chrono::system_clock::time_point received,
                     HandlingDone done) override;
    void on_raw(const std::string& ecu_id, std::string_view raw) override;
    // What a poll of the ECU's port 8899 found (see net/ecu_poller): the whole of what is known,
    // and its time zone when the host has it. Call on the io_context's thread.
    void on_polled(const std::string& ecu_id, const PolledEcuFacts& facts,
                   std::shared_ptr<const TimeZone> zone);

    // The bridge's facts (see bridge_facts): from now on `<base>/bridge/info` is kept retained,
    // with the ECUs and inverters tracked, and published again whenever any of it changes.
    void set_bridge_facts(nlohmann::json facts);

    bool connected() const;
    PublisherStatus status() const;
    std::vector<EcuView> ecus() const;

  private:
    struct Impl;
    std::shared_ptr<Impl> impl_;
};

// "mqtt://host[:port]" -> "tcp://host:port", "mqtts://…" -> "ssl://…" (ports default 1883/8883).
// Throws std::invalid_argument for anything else.
std::string paho_server_uri(const std::string& url);

} // namespace ecu2mqtt
