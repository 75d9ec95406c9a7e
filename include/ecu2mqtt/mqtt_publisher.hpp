// Publishes decoded readings to an MQTT broker, with Home Assistant discovery and availability.
#pragma once

#include "ecu2mqtt/clock.hpp"
#include "ecu2mqtt/logger.hpp"
#include "ecu2mqtt/mqtt_payloads.hpp"
#include "ecu2mqtt/service.hpp"

#include <chrono>
#include <memory>
#include <string>

namespace boost::asio {
class io_context;
}

namespace ecu2mqtt {

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
    std::string state_dir;
    std::string sw_version;
};

// Never blocks the caller on the broker: while disconnected the newest retained state of every
// topic is kept and sent on (re)connection; reconnects with backoff up to 60 s.
// All work runs on the io_context's thread, including what the MQTT client's threads report.
class MqttPublisher final : public ReadingSink {
  public:
    MqttPublisher(boost::asio::io_context& io, PublisherConfig config, const Clock& clock,
                  Logger& log);
    ~MqttPublisher() override;
    MqttPublisher(const MqttPublisher&) = delete;
    MqttPublisher& operator=(const MqttPublisher&) = delete;

    // Loads the state directory, starts connecting and starts the periodic checks
    // (ECU timeout, local midnight). Throws std::runtime_error for an unusable URL.
    void start();
    // Publishes `offline` for the bridge and disconnects, waiting at most `budget`.
    void shutdown(std::chrono::milliseconds budget);

    void on_realtime(const RealtimeUpload& upload,
                     std::chrono::system_clock::time_point received) override;
    void on_raw(const std::string& ecu_id, std::string_view raw) override;

    bool connected() const;

  private:
    struct Impl;
    std::shared_ptr<Impl> impl_;
};

// "mqtt://host[:port]" -> "tcp://host:port", "mqtts://…" -> "ssl://…" (ports default 1883/8883).
// Throws std::invalid_argument for anything else.
std::string paho_server_uri(const std::string& url);

} // namespace ecu2mqtt
