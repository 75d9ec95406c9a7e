// Accepts ECU connections on the upload ports, frames messages and writes back the replies.
#pragma once

#include "ecu2mqtt/core/logger.hpp"
#include "ecu2mqtt/protocol/decoded_message.hpp"

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace boost::asio {
class io_context;
}

namespace ecu2mqtt {

struct InboundMessage {
    InboundMessage() = default;
    InboundMessage(std::string_view raw_bytes, std::uint16_t port, std::string from)
        : raw(raw_bytes), local_port(port), peer(std::move(from)) {}

    std::string_view raw;
    std::uint16_t local_port = 0;
    std::string peer; // "address:port"
    // Full proxy mode: whether the message went to the real EMA, and what came back.
    bool forwarded = false;
    std::optional<std::string> upstream_reply;
    std::string upstream_failure;
    // The message decoded, once: whoever decodes it first leaves the result here.
    mutable std::shared_ptr<const DecodedMessage> decoded;
};

// What the listener calls for every framed message. Runs on the io_context thread; must not block.
class MessageHandler {
  public:
    using ReplyDone = std::function<void(std::optional<std::string>)>;
    virtual ~MessageHandler() = default;
    // `reply` gets the bytes to answer with (nullopt closes the connection without an answer).
    // It runs exactly once, on the io thread, possibly later: once what the message carries is
    // durably kept. `message` stays valid until then.
    virtual void on_message(const InboundMessage& message, ReplyDone reply) = 0;
    // A connection ended holding bytes that never became a whole message.
    virtual void on_incomplete(const InboundMessage& leftover, std::string_view why) = 0;
    // In full proxy mode: whether this message should go to the real EMA before on_message.
    virtual bool wants_upstream(const InboundMessage&) { return false; }
};

class EmaForwarder;

struct ListenerConfig {
    std::string address = "0.0.0.0";
    std::vector<std::uint16_t> ports;
    std::size_t max_message_bytes = 64 * 1024;
    std::chrono::milliseconds idle_timeout{30'000};
    // At the limit, the connection idle the longest is closed to make room: a flood of idle
    // connections cannot lock the ECU out. Memory is bounded by this times max_message_bytes.
    std::size_t max_connections = 64;
    // However active, a connection is closed after this long (slow senders, one byte a minute).
    std::chrono::milliseconds max_connection_age{120'000};
    // Peers accepted, as addresses or CIDR ranges ("192.168.1.0/24"); empty accepts all.
    std::vector<std::string> allowed_peers;
    // After stop(), how long a connection in the middle of a message may take to finish it.
    std::chrono::milliseconds shutdown_grace{500};
};

struct ListenerCounters {
    std::uint64_t accepted = 0;
    std::uint64_t evicted_at_limit = 0;
    std::uint64_t refused_peers = 0;
    std::uint64_t too_old = 0;
    std::uint64_t idle_timeouts = 0;
    std::uint64_t too_large = 0;
};

class Listener {
  public:
    // With a forwarder, messages the handler wants upstream go to the real EMA first.
    Listener(boost::asio::io_context& io, ListenerConfig config, MessageHandler& handler,
             Logger& log, EmaForwarder* forwarder = nullptr);
    ~Listener();
    Listener(const Listener&) = delete;
    Listener& operator=(const Listener&) = delete;

    // Binds every port; throws std::system_error naming the port when one cannot be bound, and
    // std::invalid_argument for an unusable address or allow-list entry.
    void start();
    // Stops accepting; idle connections close now, the others get `shutdown_grace` to finish.
    void stop();

    std::vector<std::uint16_t> bound_ports() const;
    std::size_t open_connections() const;
    // Whether a connection from this address (as the resolver writes it) is open now.
    bool connected_from(const std::string& address) const;
    ListenerCounters counters() const;

  private:
    struct Impl;
    std::shared_ptr<Impl> impl_;
};

} // namespace ecu2mqtt
