// Publishes committed readings to an MQTT broker, with Home Assistant discovery and availability.
#pragma once

#include "ecu2mqtt/core/logger.hpp"
#include "ecu2mqtt/mqtt/reading_publisher.hpp"

#include <chrono>
#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
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
    // Readings waiting for the broker, at most (bytes of their messages); past it the oldest go.
    std::uintmax_t spool_max_bytes = 64 * 1024 * 1024;
    std::string sw_version;
    // Messages published but not yet acknowledged by the broker, at most.
    std::size_t max_in_flight = 64;
    // How long to collect our retained discovery configs from the broker at start before
    // clearing the ones no longer wanted.
    std::chrono::milliseconds discovery_audit_wait{2000};
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

// Never blocks the caller on the broker. Every reading (the state messages of one upload) is
// committed to the store before it gets here, then published in order, QoS 1; it leaves the
// store when the broker has acknowledged all its messages. Discovery (one device config per ECU
// and inverter) and availability are kept as latest values and re-sent on (re)connection. At most
// `max_in_flight` messages are unacknowledged at once (see Outbox); a refused publish is retried.
// One reconnect loop, with backoff up to 60 s. It decides nothing about an ECU: what it announces
// is what it is told (describe).
// All work runs on the io_context's thread, including what the MQTT client's threads report.
class MqttPublisher final : public ReadingPublisher {
  public:
    // With a store, readings waiting for the broker and what was announced survive restarts.
    MqttPublisher(boost::asio::io_context& io, PublisherConfig config, Logger& log, Store* store);
    ~MqttPublisher() override;
    MqttPublisher(const MqttPublisher&) = delete;
    MqttPublisher& operator=(const MqttPublisher&) = delete;

    // Loads the readings waiting in the store and what was announced, and starts connecting;
    // the ECUs loaded at start are described before. Throws std::runtime_error for an unusable
    // URL.
    void start() override;
    // Publishes `offline` for the bridge and disconnects, waiting at most `budget`.
    void shutdown(std::chrono::milliseconds budget) override;
    const TopicScheme& topics() const override;
    bool discovery() const override;
    const std::string& sw_version() const override;

    std::uint64_t next_sequence() override;
    void reading_committed(std::uint64_t sequence, std::size_t bytes, std::int64_t kept_at_s,
                           std::vector<OutgoingMessage> messages) override;
    void describe(const std::string& ecu_id, EcuDevices devices) override;
    void announce(const std::string& ecu_id) override;
    void set_online(const std::string& ecu_id, bool online) override;
    void forget_inverter(const std::string& ecu_id, const std::string& uid,
                         WriteBatch& write) override;
    void forget_ecu(const std::string& ecu_id, WriteBatch& write) override;
    void put_latest(OutgoingMessage message, bool keep = true) override;
    void refresh_bridge_info() override;
    void publish_queued() override;
    void on_raw(const std::string& ecu_id, std::string_view raw) override;

    // The bridge's facts (see bridge_facts): from now on `<base>/bridge/info` is kept retained,
    // with the ECUs and inverters tracked, and published again whenever any of it changes.
    void set_bridge_facts(nlohmann::json facts);

    bool connected() const;
    PublisherStatus status() const;

  private:
    struct Impl;
    std::shared_ptr<Impl> impl_;
};

// "mqtt://host[:port]" -> "tcp://host:port", "mqtts://…" -> "ssl://…" (ports default 1883/8883).
// Throws std::invalid_argument for anything else.
std::string paho_server_uri(const std::string& url);

} // namespace ecu2mqtt
