// Checks that the name the ECU uploads to resolves to this host, as the status page shows it.
#pragma once

#include "ecu2mqtt/core/telemetry.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace ecu2mqtt {

struct DnsCheckInput {
    std::string name;
    std::vector<std::string> resolved; // what the name resolved to
    std::string resolve_error;
    std::vector<std::string> host_addresses; // of the interfaces this process sees
    std::string listen_address;              // "0.0.0.0" and "::" stand for all of them
    // Where ECUs reach this service (--advertised-address, or the add-on's host addresses from
    // the Supervisor). Inside a container the interfaces are the container's, not the host's.
    std::vector<std::string> advertised_addresses;
    bool in_container = false;
};

// The verdict: "ok" when the name resolves to an address ECUs reach us at, "wrong" (with the
// fix) when it certainly does not, "unknown" inside a container that was not told the host's
// address: a red line there would give the wrong fix. Pure.
DnsCheckSnapshot judge_dns(const DnsCheckInput& input);
// The same for a process on the host itself, with no advertised addresses.
DnsCheckSnapshot judge_dns(const std::string& name, const std::vector<std::string>& resolved,
                           const std::string& resolve_error,
                           const std::vector<std::string>& host_addresses,
                           const std::string& listen_address);

// Whether this process runs in a container (Docker, Podman, the Home Assistant Supervisor).
bool running_in_container();

// This host's own addresses (every interface, loopback included).
std::vector<std::string> host_addresses();

struct DnsCheckConfig {
    std::string name = "ecu.apsystemsema.com";
    std::string listen_address = "0.0.0.0";
    std::vector<std::string> advertised_addresses;
    bool in_container = false;
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
