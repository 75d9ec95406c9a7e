// Full proxy: sends an ECU message to the real EMA on the same port and brings back its reply,
// within a time limit, so the ECU never waits longer than that.
#pragma once

#include "ecu2mqtt/core/logger.hpp"

#include "ecu2mqtt/net/asio.hpp"
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace ecu2mqtt {

struct ForwarderConfig {
    std::string host;                  // EMA's address or name
    std::optional<std::uint16_t> port; // nullopt: the port the ECU used
    // "IP[:PORT]" of a DNS server to resolve `host` with (the local DNS points EMA's name at us);
    // empty: the system resolver, fine when `host` is an address.
    std::string resolver;
    std::chrono::milliseconds timeout{5000};
    // After EMA's first bytes, the reply counts as complete once EMA is quiet this long.
    std::chrono::milliseconds quiet{150};
    // Where this service itself listens: a resolved address that reaches it on one of these
    // ports (the local DNS rewrite points EMA's name at us) is never forwarded to, even when
    // the DNS changed after the start-up check.
    std::string listen_address = "0.0.0.0";
    std::vector<std::uint16_t> listen_ports;
};

struct UpstreamReply {
    std::optional<std::string> bytes; // EMA's reply as received; nullopt when there was none
    std::string failure;              // why not: "unreachable: …", "timed out", "closed early"
};

// Parses "HOST[:PORT]" for --forward-to-ema (see parse_host_port); throws std::invalid_argument.
ForwarderConfig parse_forward_target(const std::string& text);

class EmaForwarder {
  public:
    EmaForwarder(boost::asio::any_io_executor executor, ForwarderConfig config, Logger& log)
        : executor_(std::move(executor)), config_(std::move(config)), log_(log) {}

    // Never takes longer than the timeout, DNS included; failures come back in the reply.
    boost::asio::awaitable<UpstreamReply> exchange(std::uint16_t local_port, std::string message);

    const ForwarderConfig& config() const { return config_; }

  private:
    using Steady = std::chrono::steady_clock;
    // EMA's address, or nullopt with the reason in `why`.
    boost::asio::awaitable<std::optional<boost::asio::ip::address>>
    resolve_with_system(std::uint16_t port, Steady::time_point deadline, std::string& why);
    boost::asio::awaitable<std::optional<boost::asio::ip::address>>
    resolve_with_server(Steady::time_point deadline, std::string& why);

    boost::asio::any_io_executor executor_;
    ForwarderConfig config_;
    Logger& log_;
};

} // namespace ecu2mqtt
