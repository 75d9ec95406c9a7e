// The read-only web server: status page, /metrics and /api/status, on the service's io_context.
#pragma once

#include "ecu2mqtt/core/logger.hpp"
#include "ecu2mqtt/core/telemetry.hpp"

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace boost::asio {
class io_context;
}

namespace ecu2mqtt {

struct HttpServerConfig {
    std::string address = "127.0.0.1";
    std::uint16_t port = 8099; // 0 picks a free port
    // Peers admitted, as exact addresses; empty admits all. The add-on admits only the
    // Supervisor's ingress proxy.
    std::vector<std::string> allowed_peers;
    // Every limit below keeps a misbehaving client from costing the ECU path anything.
    // At most three quarters of them (all but max(1, max_connections / 4)) may still be waiting
    // for their request; past that, or at the limit, the one waiting longest is closed to make
    // room. Only when every connection is being answered is a new one closed at once.
    std::size_t max_connections = 16;
    std::chrono::milliseconds header_timeout{3'000};   // for the request to arrive whole
    std::chrono::milliseconds request_timeout{10'000}; // the same, when shorter; the response
    std::size_t max_header_bytes = 8 * 1024;
    std::size_t max_header_fields = 64;
    std::size_t max_response_bytes = 8 * 1024 * 1024;
};

struct HttpCounters {
    std::uint64_t requests = 0;
    std::uint64_t refused_peers = 0;
    std::uint64_t refused_at_limit = 0;
    std::uint64_t evicted_waiting = 0; // closed at the limit before their request was whole
    std::uint64_t bad_requests = 0;    // too large, malformed, too slow
};

// Only GET and HEAD; one request per connection. `status` is called on the io thread for each
// request that needs the data.
class HttpServer {
  public:
    HttpServer(boost::asio::io_context& io, HttpServerConfig config,
               std::function<StatusSnapshot()> status, Logger& log);
    ~HttpServer();
    HttpServer(const HttpServer&) = delete;
    HttpServer& operator=(const HttpServer&) = delete;

    // Binds; throws std::system_error (port in use) or std::invalid_argument (bad address).
    void start();
    void stop();

    std::uint16_t bound_port() const;
    HttpCounters counters() const;

  private:
    struct Impl;
    std::shared_ptr<Impl> impl_;
};

// "ADDR:PORT" or "[IPv6]:PORT" -> address and port. Throws std::invalid_argument.
std::pair<std::string, std::uint16_t> parse_listen_endpoint(const std::string& text);

// The X-Ingress-Path header when it is a plain path ("/api/hassio_ingress/<token>"), without a
// trailing slash; "" for anything else.
std::string checked_ingress_path(std::string_view header);

} // namespace ecu2mqtt
