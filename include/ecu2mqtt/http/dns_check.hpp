// Checks that the name the ECU uploads to resolves to this host, as the status page shows it.
#pragma once

#include "ecu2mqtt/app/telemetry.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace ecu2mqtt {

// The verdict for `name` resolving to `resolved`, given this host's addresses and the address
// the listener is bound to ("0.0.0.0" and "::" stand for all of the host's addresses). Pure.
DnsCheckSnapshot judge_dns(const std::string& name, const std::vector<std::string>& resolved,
                           const std::string& resolve_error,
                           const std::vector<std::string>& host_addresses,
                           const std::string& listen_address);

// This host's own addresses (every interface, loopback included).
std::vector<std::string> host_addresses();

struct DnsCheckConfig {
    std::string name = "ecu.apsystemsema.com";
    std::string listen_address = "0.0.0.0";
    std::chrono::milliseconds timeout{3000};
    std::chrono::seconds cache_for{60};
};

// Resolves asynchronously on the io_context (Asio runs getaddrinfo on its own thread), never
// longer than `timeout`, at most once per `cache_for`; each verdict goes to `on_result`.
class DnsSelfCheck {
  public:
    DnsSelfCheck(boost::asio::any_io_executor executor, DnsCheckConfig config,
                 std::function<void(DnsCheckSnapshot)> on_result);
    ~DnsSelfCheck();
    DnsSelfCheck(const DnsSelfCheck&) = delete;
    DnsSelfCheck& operator=(const DnsSelfCheck&) = delete;

    // Starts a lookup unless one is running or the last verdict is still fresh.
    void refresh();

  private:
    struct Impl;
    std::shared_ptr<Impl> impl_;
};

} // namespace ecu2mqtt
