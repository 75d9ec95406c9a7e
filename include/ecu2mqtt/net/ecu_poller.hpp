// Optional polling of ECUs on their local port 8899 for what uploads lack: signal levels,
// firmware, time zone, inverters registered. Read-only, each ECU asked one thing at a time, on
// the service's loop.
#pragma once

#include "ecu2mqtt/core/logger.hpp"
#include "ecu2mqtt/ledger/time_zone.hpp"
#include "ecu2mqtt/net/asio.hpp"
#include "ecu2mqtt/protocol/local_api_facts.hpp"

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace ecu2mqtt {

inline constexpr std::uint16_t kLocalApiPort = 8899;

struct PollTarget {
    std::string host; // an IP address
    std::uint16_t port = kLocalApiPort;
};

struct PollerConfig {
    std::vector<PollTarget> targets; // --poll-ecus ADDR[:PORT],…
    bool from_uploads = false;       // --poll-ecus auto: each ECU's upload peer address
    std::chrono::milliseconds interval{300'000};
    std::chrono::milliseconds timeout{10'000}; // each step: connect, send, the whole reply
    // Connecting, at most (and never more than `timeout`): an ECU on the LAN answers within
    // milliseconds; an address that drops the attempt is given up sooner.
    std::chrono::milliseconds connect_timeout{3'000};
    std::chrono::milliseconds first_poll{5'000};
    std::chrono::milliseconds max_backoff{3'600'000};
    std::size_t max_inverters = 128; // --max-inverters-per-ecu: polled inverters kept per ECU
    // Polls under way at once: a port that hangs holds one for a timeout, delaying no other
    // ECU, while a LAN of dead addresses opens no more connections than this.
    std::size_t max_in_flight = 4;
    // `auto`: an ECU's address is dropped after this long without its uploads (and at least
    // three intervals); it is found again with its next upload.
    std::chrono::milliseconds auto_target_silence{1'200'000};
    std::string zoneinfo_dir = "/usr/share/zoneinfo";
};

// "off" (empty), "auto" or "ADDR[:PORT],…" with IP addresses; throws std::invalid_argument.
PollerConfig parse_poll_ecus(const std::string& text);

// What the status page shows per polled ECU.
struct PollStatus {
    std::string ecu_id; // once known (from its uploads or its ECU info reply)
    std::string address;
    std::int64_t last_success_unix = 0;
    std::optional<std::int64_t> failing_since_unix;
    std::string last_failure;
    int consecutive_failures = 0;
    // It answers ECU info, but this step failed on its last poll ("0002: why"); empty if none.
    std::string step_failing;
};

// The status page's words on one polled address, `at` writing a time: "port 8899 at A answered
// T", "… answers, but 0002 fails: why", "… not answering since T (why)", "… not polled yet".
std::string describe_poll_status(const PollStatus& status,
                                 const std::function<std::string(std::int64_t)>& at);

class EcuPoller {
  public:
    using FactsSink = std::function<void(const std::string& ecu_id, const PolledEcuFacts& facts,
                                         std::shared_ptr<const TimeZone> zone)>;
    // True while an ECU at this address is in the middle of an upload exchange with us.
    using UploadInProgress = std::function<bool(const std::string& address)>;

    EcuPoller(boost::asio::io_context& io, PollerConfig config, Logger& log, FactsSink sink,
              UploadInProgress uploading);
    ~EcuPoller();
    EcuPoller(const EcuPoller&) = delete;
    EcuPoller& operator=(const EcuPoller&) = delete;

    // What the service knows of an ECU's polled facts (nullopt: nothing), asked when a target
    // is tied to it. Set before start().
    using KnownFacts = std::function<std::optional<PolledEcuFacts>(const std::string& ecu_id)>;
    void set_known_facts(KnownFacts known);

    void start();
    void stop();
    // Every upload, with its peer ("address:port"): with `auto`, an ECU is polled at the address
    // its uploads come from.
    void on_upload(const std::string& ecu_id, const std::string& peer);
    // The ECU is no longer tracked (evicted): with `auto`, its address is no longer polled.
    void forget(const std::string& ecu_id);
    std::vector<PollStatus> status() const;

  private:
    struct Impl;
    std::shared_ptr<Impl> impl_;
};

} // namespace ecu2mqtt
